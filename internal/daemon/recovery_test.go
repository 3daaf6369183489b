package daemon_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/internal/testenv"
	"github.com/ratemon/ratemon/limiter"
)

// TestDaemon_rebuildsWindowsAfterRedisLoss: Redis loses everything (here:
// every key of the daemon's prefix, marker included); the daemon notices the
// missing marker, replays the events JetStream retains, and the windows,
// counts and flags come back exactly.
func TestDaemon_rebuildsWindowsAfterRedisLoss(t *testing.T) {
	n := testenv.StartNATS(t)
	r := startDaemon(t, n.URL(), []limiter.Rule{
		{Name: "per-client", Key: []limiter.Field{limiter.FieldClient}, Limit: 10, Window: time.Minute},
		{Name: "burst", Key: []limiter.Field{limiter.FieldClient}, Limit: 4, Window: 10 * time.Second, DenyFor: 10 * time.Minute},
	})
	rdb := testenv.Redis(t)
	nc := n.Connect(t)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	now := time.Now().UnixMilli()
	var buf strings.Builder
	for i := range 14 {
		// abuser: 14 events over the last 50 s, the last 5 within 2 s
		ts := now - 50_000 + int64(i)*3_000
		if i >= 9 {
			ts = now - 2_000 + int64(i-9)*400
		}
		fmt.Fprintf(&buf, `{"client":"abuser","ts":%d,"id":"a%d"}`+"\n", ts, i)
	}
	for i := range 3 {
		fmt.Fprintf(&buf, `{"client":"calm","ts":%d}`+"\n", now-int64(i)*1000)
	}
	_, err = js.Publish(t.Context(), r.subjects.Events("api"), []byte(buf.String()))
	require.NoError(t, err)
	deny := r.keys.Deny("client=abuser")
	require.Eventually(t, func() bool { return rdb.Exists(t.Context(), deny).Val() == 1 }, 10*time.Second, 10*time.Millisecond)
	before, err := limiter.ParseFlag([]byte(rdb.Get(t.Context(), deny).Val()))
	require.NoError(t, err)
	require.Equal(t, "burst", before.Rule, "deny_for 10m outlasts the window rule")

	testenv.DeletePrefix(rdb, r.cfg.Redis.Prefix)
	require.Zero(t, rdb.Exists(t.Context(), deny).Val())

	require.Eventually(t, func() bool { return rdb.Exists(t.Context(), r.keys.Marker()).Val() == 1 }, 15*time.Second, 20*time.Millisecond,
		"the daemon never rebuilt its state")
	require.Equal(t, int64(1), rdb.Exists(t.Context(), deny).Val(), "the flag is back")
	after, err := limiter.ParseFlag([]byte(rdb.Get(t.Context(), deny).Val()))
	require.NoError(t, err)
	require.Equal(t, before.Until, after.Until)
	require.Equal(t, before.Rule, after.Rule)
	_, body := get(t, r.base+"/v1/check?client=abuser")
	var res limiter.CheckResult
	require.NoError(t, json.Unmarshal(body, &res))
	require.Equal(t, int64(14), res.Rules[0].Count)
	// calm's events, far from its limit, may still be held (up to
	// ingest.hold, a quarter of the 10 s window) when the rebuild ends:
	// they are counted once they go, and once only.
	require.Eventually(t, func() bool {
		_, body = get(t, r.base+"/v1/check?client=calm")
		res = limiter.CheckResult{}
		return json.Unmarshal(body, &res) == nil && len(res.Rules) > 0 && res.Rules[0].Count == 3
	}, 10*time.Second, 10*time.Millisecond, "calm: %s", body)
	require.True(t, res.Allowed)
	require.Eventually(t, func() bool {
		_, m := get(t, r.base+"/metrics")
		return strings.Contains(string(m), "\nratemon_ingest_held_events 0\n")
	}, 10*time.Second, 10*time.Millisecond, "nothing held any more")
	_, body = get(t, r.base+"/v1/check?client=calm")
	require.NoError(t, json.Unmarshal(body, &res))
	require.Equal(t, int64(3), res.Rules[0].Count, "counted once")
	_, metrics := get(t, r.base+"/metrics")
	require.Contains(t, string(metrics), `ratemon_recovery_rebuilds_total{result="ok"}`)
}
