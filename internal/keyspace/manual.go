package keyspace

// Block is the manual block entry of a limit key.
func (r Redis) Block(limitKey string) string { return r.tagged("block", limitKey, "") }

// Allow is the allow-list entry of a limit key.
func (r Redis) Allow(limitKey string) string { return r.tagged("allow", limitKey, "") }

// Overrides is the hash of runtime limit overrides of a limit key.
func (r Redis) Overrides(limitKey string) string { return r.tagged("ovr", limitKey, "") }

// BlockPattern is the SCAN pattern matching every manual block.
func (r Redis) BlockPattern() string { return r.prefix + ":block:{*}" }

// AllowPattern is the SCAN pattern matching every allow-list entry.
func (r Redis) AllowPattern() string { return r.prefix + ":allow:{*}" }

// OverridesPattern is the SCAN pattern matching every override hash.
func (r Redis) OverridesPattern() string { return r.prefix + ":ovr:{*}" }

// Top is the sorted set of one rule's busiest limit keys seen by one work
// shard. Shards keep their own set so that the writes spread over cluster
// slots; readers merge them.
func (r Redis) Top(rule string, shard int) string {
	return r.prefix + ":top:" + rule + ":" + itoa(shard)
}
