// ratemon.mjs: check ratemon's deny flag with one Redis call and report
// requests over NATS, from a Node server. The contract is ratemon's README
// ("The deny flag" and "Events"); this file is what its "Other languages"
// section shows, tested by test.mjs against a real daemon.

// escapeValue percent-encodes what a limit key value must not hold:
// { } | = % and the control characters, as %XX with upper-case hex. All of
// them are ASCII, so working on the string's characters is exact.
export function escapeValue(v) {
  return v.replace(/[{}|=%\x00-\x1f\x7f]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0"));
}

// limitKey builds a rule's limit key from its key fields, in the rule's
// order: limitKey([["client", "acme"], ["route", "POST /login"]]).
export function limitKey(pairs) {
  return pairs.map(([field, value]) => `${field}=${escapeValue(value)}`).join("|");
}

// retryAfter asks Redis once (PTTL of the deny flag) and returns null when
// the key is allowed, else the seconds to put in Retry-After.
export async function retryAfter(redis, key, prefix = "ratemon") {
  const ms = await redis.pTTL(`${prefix}:deny:{${key}}`);
  if (ms === -2) return null; // no flag: allowed
  if (ms === -1) return 3600; // a flag without TTL: denied until removed
  return Math.max(1, Math.ceil(ms / 1000));
}

// report publishes one request event on <prefix>.events.<service>; core
// NATS is enough, the daemon's stream stores it.
export function report(nc, service, event, prefix = "ratemon") {
  nc.publish(`${prefix}.events.${service}`, new TextEncoder().encode(JSON.stringify({ service, ts: Date.now(), ...event })));
}
