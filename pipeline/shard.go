package pipeline

import (
	"github.com/ratemon/ratemon/limiter"
)

// ShardOf maps a limit key to a work shard. Every replica must use the same
// number of shards so that they agree.
func ShardOf(k limiter.LimitKey, shards int) int { return limiter.ShardOf(k, shards) }
