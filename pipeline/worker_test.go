package pipeline_test

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/limiter"
	"github.com/ratemon/ratemon/pipeline"
)

// TestWorker_reclaimsNoticesOfDeadConsumer: a replica read a notice and died
// before evaluating it; another replica takes the notice over after
// claim_idle and writes the flag.
func TestWorker_reclaimsNoticesOfDeadConsumer(t *testing.T) {
	now := time.Now().UnixMilli()
	h := newHarness(t, []limiter.Rule{{Name: "r", Limit: 3, Window: time.Minute}}, limiter.FixedClock(time.UnixMilli(now)))
	ctx := t.Context()
	k := limiter.LimitKey("client=acme")
	_, err := h.store.Append(ctx, 0, []limiter.KeyAppend{{Key: k, Group: &h.rules.Groups()[0], Messages: []limiter.Message{{Seq: 1, Events: []limiter.Event{
		{TS: now - 3000, Weight: 1, Mask: 1}, {TS: now - 2000, Weight: 1, Mask: 1}, {TS: now - 1000, Weight: 1, Mask: 1},
	}}}}})
	require.NoError(t, err)
	shard := pipeline.ShardOf(k, 4)
	stream := h.keys.Work(shard)
	require.NoError(t, h.rdb.XGroupCreateMkStream(ctx, stream, "ratemon", "0").Err())
	require.NoError(t, h.rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []any{"k", string(k)}}).Err())
	got, err := h.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "ratemon", Consumer: "dead-replica", Streams: []string{stream, ">"}, Count: 10}).Result()
	require.NoError(t, err)
	require.Len(t, got[0].Messages, 1, "the dead replica holds the notice")

	h.start(nil)
	require.Eventually(t, func() bool {
		return h.rdb.Exists(ctx, h.keys.Deny(string(k))).Val() == 1
	}, 10*time.Second, 20*time.Millisecond, "the notice was never reclaimed")
	require.Eventually(t, func() bool {
		p, err := h.rdb.XPending(ctx, stream, "ratemon").Result()
		return err == nil && p.Count == 0
	}, 5*time.Second, 20*time.Millisecond, "the reclaimed notice is acknowledged")
}
