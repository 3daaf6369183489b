package capacity_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/internal/keyspace"
	"github.com/ratemon/ratemon/internal/testenv"
	"github.com/ratemon/ratemon/limiter"
)

// Bounds documented in docs/SCALING.md; the measured figures are below
// them (the test logs them), with room for allocator noise.
const (
	maxBytesPerKey      = 5200 // a tracked limit key, one rule, one event (stream-node-max-bytes 4096)
	maxBytesPerSmallKey = 1300 // the same with stream-node-max-bytes 512
	maxBytesPerEvent    = 20   // one more event in a window log, its own millisecond
	maxBytesPerID       = 160  // the de-duplication record of an event id
	maxBytesPerFlag     = 500  // a deny flag and its state fields
)

// rig is a store on a private Redis, with one rule keyed by client.
type rig struct {
	rdb   *redis.Client
	st    *limiter.Store
	rs    *limiter.Ruleset
	clock *clock
}

type clock struct{ ms int64 }

func (c *clock) Now() time.Time { return time.UnixMilli(c.ms) }

func newRig(t testing.TB, rdb *redis.Client, limit int64) *rig {
	t.Helper()
	rules := []limiter.Rule{{Name: "r", Limit: limit, Window: 10 * time.Minute}}
	rules[0].SetDefaults()
	rs, err := limiter.NewRuleset(rules)
	require.NoError(t, err)
	keys, err := keyspace.NewRedis("cap")
	require.NoError(t, err)
	c := &clock{ms: time.Now().UnixMilli()}
	st, err := limiter.NewStore(limiter.StoreOptions{Client: rdb, Keys: keys, Clock: c})
	require.NoError(t, err)
	require.NoError(t, rdb.FlushAll(context.Background()).Err())
	require.NoError(t, st.Load(context.Background()))
	return &rig{rdb: rdb, st: st, rs: rs, clock: c}
}

// round appends per events to each of n keys, at ts, ts+1... (each its
// own stream entry), in one message seq per key (pruning the redelivery
// records of earlier ones), and evaluates them, as inline ingestion does,
// in batches of 500 keys.
func (r *rig) round(t testing.TB, n, per int, ts int64, seq uint64, withID bool) {
	t.Helper()
	g := &r.rs.Groups()[0]
	for start := 0; start < n; start += 500 {
		batch := make([]limiter.KeyAppend, 0, 500)
		for i := start; i < min(start+500, n); i++ {
			evs := make([]limiter.Event, per)
			for j := range evs {
				evs[j] = limiter.Event{TS: ts + int64(j), Weight: 1, Mask: 1}
				if withID {
					evs[j].ID = fmt.Sprintf("req-%d-%d-%d", seq, i, j)
				}
			}
			batch = append(batch, limiter.KeyAppend{
				Key: limiter.LimitKey(fmt.Sprintf("client=c%07d", i)), Group: g,
				Messages: []limiter.Message{{Seq: seq, Events: evs}},
			})
		}
		_, _, err := r.st.AppendEvaluate(t.Context(), seq-1, batch)
		require.NoError(t, err)
	}
}

// usedMemory reads INFO memory used_memory.
func usedMemory(t testing.TB, rdb *redis.Client) int64 {
	t.Helper()
	info, err := rdb.Info(t.Context(), "memory").Result()
	require.NoError(t, err)
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			require.NoError(t, err)
			return n
		}
	}
	t.Fatal("INFO memory has no used_memory")
	return 0
}

// TestRedisMemory measures, on a private redis-server, what ratemon keeps
// in Redis: per tracked limit key (with the default stream-node-max-bytes
// and with 512), per event in a window, per event id and per deny flag.
func TestRedisMemory(t *testing.T) {
	srv := testenv.StartPrivateRedis(t)
	rdb := srv.Client(t)
	perKey := func(t *testing.T, nodeBytes string) float64 {
		const keys = 10000
		r := newRig(t, rdb, 1_000_000)
		require.NoError(t, rdb.ConfigSet(t.Context(), "stream-node-max-bytes", nodeBytes).Err())
		t.Cleanup(func() { rdb.ConfigSet(context.Background(), "stream-node-max-bytes", "4096") })
		before := usedMemory(t, rdb)
		r.round(t, keys, 1, r.clock.ms, 1, false)
		per := float64(usedMemory(t, rdb)-before) / keys
		t.Logf("%.0f bytes per tracked limit key (one rule, one event; %d keys; stream-node-max-bytes %s)", per, keys, nodeBytes)
		return per
	}
	t.Run("per key", func(t *testing.T) {
		require.Less(t, perKey(t, "4096"), float64(maxBytesPerKey))
	})
	t.Run("per key with small stream nodes", func(t *testing.T) {
		require.Less(t, perKey(t, "512"), float64(maxBytesPerSmallKey))
	})
	// Steady state: each key's log spans many stream nodes (100 entries
	// each), so the figure includes the nodes' own cost.
	perEvent := func(t *testing.T, withID bool, nodeBytes string) float64 {
		const n, rounds, per = 100, 10, 100
		r := newRig(t, rdb, 1_000_000)
		require.NoError(t, rdb.ConfigSet(t.Context(), "stream-node-max-bytes", nodeBytes).Err())
		t.Cleanup(func() { rdb.ConfigSet(context.Background(), "stream-node-max-bytes", "4096") })
		ts := r.clock.ms - 5*60_000
		r.round(t, n, per, ts, 1, withID)
		before := usedMemory(t, rdb)
		for i := 2; i <= rounds; i++ {
			r.round(t, n, per, ts+int64(i*per), uint64(i), withID)
		}
		return float64(usedMemory(t, rdb)-before) / float64(n*per*(rounds-1))
	}
	var entry float64
	t.Run("per event in the window", func(t *testing.T) {
		entry = perEvent(t, false, "4096")
		t.Logf("%.1f bytes per in-window event (one stream entry each)", entry)
		require.Less(t, entry, float64(maxBytesPerEvent))
	})
	t.Run("per event in the window with small stream nodes", func(t *testing.T) {
		small := perEvent(t, false, "512")
		t.Logf("%.1f bytes per in-window event (stream-node-max-bytes 512)", small)
		require.Less(t, small, float64(maxBytesPerEvent))
	})
	t.Run("per event id", func(t *testing.T) {
		withIDs := perEvent(t, true, "4096")
		t.Logf("%.1f bytes per in-window event with an id (%.1f for the de-duplication record)", withIDs, withIDs-entry)
		require.Less(t, withIDs-entry, float64(maxBytesPerID))
	})
	t.Run("per deny flag", func(t *testing.T) {
		const n = 5000
		free := newRig(t, rdb, 1_000_000)
		before := usedMemory(t, rdb)
		free.round(t, n, 2, free.clock.ms, 1, false)
		notDenied := usedMemory(t, rdb) - before
		denied := newRig(t, rdb, 1)
		before = usedMemory(t, rdb)
		denied.round(t, n, 2, denied.clock.ms, 1, false)
		per := float64(usedMemory(t, rdb)-before-notDenied) / n
		t.Logf("%.0f bytes per deny flag (the flag key and its state fields)", per)
		require.Less(t, per, float64(maxBytesPerFlag))
	})
}
