// Package event is the event model of ratemon: the Event type, the decoder of
// the JSON that API servers publish on NATS, and the reasons for which input
// is rejected. Every other package imports it, so it imports only the
// standard library, and its decoder never panics, whatever the input.
//
// # The event
//
// An event is a JSON object describing one request:
//
//	{"client":"acme","ts":1718000000123,"service":"billing","route":"POST /invoices",
//	 "method":"POST","ip":"10.1.2.3","status":201,"weight":1,"id":"req-7f3a","refused":false}
//
//	field    type                                      when absent or null
//	client   string, required, not ""                  rejected: missing_client
//	ts       integer Unix milliseconds, or RFC 3339     no timestamp: the time JetStream
//	         string                                     stored the message is used
//	service  string                                    ""
//	route    string                                    ""
//	method   string                                    ""
//	ip       string                                    ""
//	id       string (for de-duplication)               ""
//	status   integer 0..999                            0
//	weight   integer 1..1000000                        1
//	refused  boolean                                   false
//
// An integer ts is a JSON number without fraction or exponent, from 1 to
// 253402300799999 (the end of year 9999). A string ts is parsed with
// time.RFC3339Nano, so it may carry an offset and any fraction of a second;
// it is converted to Unix milliseconds, truncating what is below the
// millisecond, and must land in the same range. 1.5, 1e3, true, an object or
// "yesterday" are all bad_ts. status and weight accept only JSON integers:
// 200.0 and 2e2 are rejected.
//
// Unknown fields are ignored, whatever their type and depth. Keys match
// exactly and are case-sensitive ("Client" is an unknown field); they are
// compared after unescaping, so "cl\u0069ent" is client. When a key appears
// twice, the last value wins. Invalid UTF-8 inside a string is not an error:
// each invalid byte, and each lone surrogate escape, becomes U+FFFD, as
// encoding/json does.
//
// Every string field is at most Limits.MaxFieldBytes bytes (default 1024)
// after decoding; a longer one is field_too_long, naming the field.
//
// # Payloads
//
// One NATS message, a payload, holds one JSON object, a JSON array of
// objects, or NDJSON. If its first non-space byte is '[', the payload is an
// array. Otherwise it is a sequence of JSON values, one after the other:
// NDJSON lines (blank lines and \r\n endings are fine), a single object, or
// pretty-printed objects that span several lines.
//
// Input is judged element by element, an element being an array element or
// a top-level value of a sequence. A bad element is rejected alone, with its
// index and a reason, and the others are still decoded:
//
//   - A value of a sequence that does not parse is rejected from its start to
//     the end of the line on which the error is, and decoding resumes on the
//     next line. When the error is a '{' opening a later line (an NDJSON line
//     that lacks its closing brace, followed by the next event), the reject
//     stops before that line and decoding resumes at the '{'. So one broken
//     NDJSON line costs that line only; a broken pretty-printed object may
//     cost a reject for its head and one for each line left after the error.
//     Either way, decoding takes time linear in the size of the payload.
//   - An array whose own structure is broken (an unterminated element, a
//     missing comma, text after the closing bracket) is rejected as a whole:
//     one reject with index 0. An element of a sound array that is itself
//     malformed is rejected alone.
//   - A payload longer than Limits.MaxPayloadBytes (default 1 MiB) is
//     rejected as a whole, too_large, before anything is parsed.
//   - An element nesting objects and arrays deeper than Limits.MaxDepth
//     (default 32, the element's own braces counting 1) is too_deep. The
//     limit is enforced while scanning, so a deep element costs no more than
//     its bytes.
//
// # Reasons
//
// The reasons are a fixed set, usable as metric labels (see Reasons):
// invalid_json, not_object, missing_client, bad_ts, bad_weight, bad_status,
// bad_field (a known field of the wrong JSON type: client, service, route,
// method, ip, id or refused; ts, status and weight always use their own
// reason), field_too_long, too_large and too_deep. When an object has several
// problems, the first in field order wins: client, ts, service, route,
// method, ip, id, status, weight, refused.
//
// # Cost
//
// Decode is the hot path of ingestion. It is a hand-written scanner: no
// reflection, no maps. The strings one event keeps are decoded into a stack
// buffer and converted with a single allocation, which all of the event's
// string fields share. AppendJSON writes an event back without allocating.
package event
