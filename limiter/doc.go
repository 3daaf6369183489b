// Package limiter holds ratemon's rules and the Redis window store that
// enforces them.
//
// A Rule counts the events it matches per limit key (the values of its key
// fields) over a sliding window in event time. Rules with the same key shape
// form a Group and are evaluated together, in one Lua script call per limit
// key, because they share the limit key's hash tag and its deny flag.
//
// The store keeps, per rule and limit key, an exact window log: a Redis
// Stream whose entry ids are event times (events of one batch coalesced per
// millisecond), plus a sorted set for the rare entries that arrive behind the
// newest one. A running count per rule makes an evaluation cost the entries
// that left the window since the last one, not the whole window. See
// docs/ARCHITECTURE.md for the layout and its invariants, and Model for the
// reference semantics every algorithm is tested against.
package limiter
