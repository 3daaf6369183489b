// Package keyspace names every Redis key and NATS subject ratemon uses.
//
// Nothing else in ratemon builds a key or a subject by hand: a change of
// layout is a change of this package and of its golden test.
//
// Every Redis key that belongs to one limit key carries that limit key in a
// single Redis Cluster hash tag, `{...}`, so that one Lua script touching all
// of them addresses one cluster slot. Values inside a limit key are
// percent-encoded by Escape, so a client id can never close the tag early,
// open a second one, or forge the `|` and `=` separators of another client's
// limit key.
//
// Layout, for the prefix "ratemon" and the limit key "client=acme":
//
//	ratemon:deny:{client=acme}            deny flag (public contract, see README)
//	ratemon:shadow:{client=acme}          shadow flag (public contract)
//	ratemon:st:{client=acme}              per-rule running state (hash)
//	ratemon:log:{client=acme}:<rule>      window log (stream, ids are event time)
//	ratemon:late:{client=acme}:<rule>     out-of-order entries (sorted set)
//	ratemon:seen:{client=acme}            NATS sequences already applied (sorted set)
//	ratemon:ids:{client=acme}             event ids already counted (sorted set)
//	ratemon:block:{client=acme}           manual block entry (string, JSON)
//	ratemon:allow:{client=acme}           allow-list entry (string, JSON)
//	ratemon:ovr:{client=acme}             runtime limit overrides (hash)
//	ratemon:work:<shard>                  work notices (stream, one per shard)
//	ratemon:top:<rule>:<shard>            busiest limit keys of a rule (sorted set)
//	ratemon:marker                        "state present" marker
//
// Subjects, for the subject prefix "ratemon":
//
//	ratemon.events.<service>   events in
//	ratemon.decisions          flag changes out
//	ratemon.alerts             alerts out
//	ratemon.deadletter         rejected input out
package keyspace
