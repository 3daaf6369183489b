// Package inline enforces ratemon's decisions inside an API server written
// in Go, and reports the server's requests to ratemon.
//
// Three parts, usable alone or together through Guard:
//
//   - Checker answers "is this request's client denied, and until when?"
//     from a local set of the deny flags. The set is loaded from Redis when
//     Run starts (a SCAN of the flag keys of the README's contract), kept
//     current by the decisions the daemon publishes on
//     <prefix>.decisions, and each entry ends on its own at its until (Run
//     deletes it then, within about a millisecond: a check reads no clock). A
//     check computes the request's limit keys exactly as the daemon does
//     (the same rules, read from the config or from GET /v1/rules), so one
//     check covers every key shape: client, ip, client|route... In the
//     steady state it is a few lookups in a hash table read without a
//     lock, and allocates nothing. When the feed is lost, checks read Redis (one pipelined
//     round trip, short timeout, small cache) until the feed is back and
//     the set reloaded; when Redis does not answer either, the Policy
//     decides: fail open by default, fail closed by option.
//   - Publisher reports one event per request on <prefix>.events.<service>
//     without blocking the request: events are appended to a batch in
//     memory (one NATS message of NDJSON per batch), sent when the batch
//     is full or every few milliseconds, over core NATS or JetStream, with
//     a message id so that a retried batch counts once. Memory is bounded;
//     what cannot be buffered or sent is dropped, counted and logged.
//   - Middleware does both for net/http: it identifies the client (API key
//     header, verified bearer subject, or client IP behind trusted
//     proxies), refuses denied clients with 429, Retry-After, the
//     RateLimit and RateLimit-Policy fields of
//     draft-ietf-httpapi-ratelimit-headers-10 and a problem+json body, and
//     publishes each request after its response with its status and
//     latency, refused ones marked refused.
//
// The package imports limiter (rules, keys, the flag contract),
// internal/keyspace (key and subject names) and pipeline/event; never the
// daemon.
package inline
