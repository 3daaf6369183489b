package alerting_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/alerting"
	"github.com/ratemon/ratemon/internal/keyspace"
	"github.com/ratemon/ratemon/internal/testenv"
	"github.com/ratemon/ratemon/limiter"
)

// TestReplicas_onePerTransition runs three replicas that all see the same
// evaluations (any replica may evaluate any key), against one webhook that
// fails now and then, and stops the delivering replica half way: every
// transition arrives exactly once.
func TestReplicas_onePerTransition(t *testing.T) {
	rc := newReceiver(t, func(n int, _ *http.Request, _ []byte) int {
		if n%3 == 1 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	prefix := testenv.Prefix(t, testenv.Redis(t))
	rules := testRules(t)
	var reps []*instance
	for i := range 3 {
		reps = append(reps, start(t, instanceOpts{prefix: prefix, cfg: fastConfig(webhook("hook", rc.URL)), rules: rules,
			replica: fmt.Sprintf("r%d", i)}))
	}
	const keys = 10
	until := time.Now().Add(700 * time.Millisecond).UnixMilli()
	for round := range 3 {
		for _, r := range reps {
			for k := range keys {
				r.Observe(t.Context(), []limiter.Evaluation{result(fmt.Sprintf("client=k%d", k), int64(11+round), 10, until)})
			}
		}
	}
	require.Eventually(t, func() bool { return len(rc.delivered()) == keys }, 10*time.Second, 10*time.Millisecond)

	// Stop the replica that delivers; another takes over for the resolutions.
	leader := -1
	for i, r := range reps {
		if testutil.ToFloat64(r.metrics.Leader) == 1 {
			leader = i
		}
	}
	require.GreaterOrEqual(t, leader, 0, "one replica delivers")
	reps[leader].stop(t)

	require.Eventually(t, func() bool { return len(rc.delivered()) == 2*keys }, 15*time.Second, 10*time.Millisecond)
	require.Never(t, func() bool { return len(rc.delivered()) > 2*keys }, time.Second, 50*time.Millisecond)
	seen := map[string]int{}
	for _, a := range rc.delivered() {
		seen[a.ID]++
	}
	for k := range keys {
		for seq, want := range map[int]alerting.State{1: alerting.StateExceeded, 2: alerting.StateResolved} {
			id := fmt.Sprintf("per-client:client=k%d:%d", k, seq)
			require.Equal(t, 1, seen[id], "%s (%s) delivered %d times", id, want, seen[id])
		}
	}
	var transitions float64
	for _, r := range reps {
		transitions += testutil.ToFloat64(r.metrics.Transitions.WithLabelValues("per-client", "exceeded"))
	}
	require.InDelta(t, keys, transitions, 0, "each transition decided once, by one replica")
}

// TestHandoff_againAfterCrash plays a replica that died between deciding a
// notification and handing it off (or delivering it): the next look at the
// alert hands it off again, and it is delivered once. A notification handed
// off twice is delivered once.
func TestHandoff_againAfterCrash(t *testing.T) {
	rc := newReceiver(t, nil)
	rdb := testenv.Redis(t)
	prefix := testenv.Prefix(t, rdb)
	keys, err := keyspace.NewRedis(prefix)
	require.NoError(t, err)
	in := start(t, instanceOpts{prefix: prefix, cfg: fastConfig(webhook("hook", rc.URL)), rules: testRules(t)})
	in.Observe(t.Context(), []limiter.Evaluation{result("client=a", 12, 10, time.Now().Add(time.Minute).UnixMilli())})
	require.Eventually(t, func() bool { return len(rc.delivered()) == 1 }, 5*time.Second, 5*time.Millisecond)

	state := keys.AlertState("client=a", "per-client")
	member := keyspace.AlertMember("per-client", "client=a")
	ctx := t.Context()
	waitHanded := func() {
		require.Eventually(t, func() bool { return rdb.HGet(ctx, state, "ho").Val() == "1" }, 5*time.Second, 5*time.Millisecond)
	}

	// Handed off twice: the second outbox entry finds the notification owned.
	require.NoError(t, rdb.HSet(ctx, state, "ho", 0, "pat", 0).Err())
	require.NoError(t, rdb.ZAdd(ctx, keys.AlertIndex(), redisZ(0, member)).Err())
	waitHanded()
	require.Never(t, func() bool { return len(rc.delivered()) > 1 }, 500*time.Millisecond, 20*time.Millisecond)

	// Decided, never handed off nor delivered: delivered once now.
	require.NoError(t, rdb.HDel(ctx, state, "n1:own", "n1:ok").Err())
	require.NoError(t, rdb.HSet(ctx, state, "ho", 0, "pat", 0).Err())
	require.NoError(t, rdb.ZAdd(ctx, keys.AlertIndex(), redisZ(0, member)).Err())
	require.Eventually(t, func() bool { return len(rc.delivered()) == 2 }, 5*time.Second, 5*time.Millisecond)
	waitHanded()
	require.Never(t, func() bool { return len(rc.delivered()) > 2 }, 500*time.Millisecond, 20*time.Millisecond)
	require.Equal(t, rc.delivered()[0].ID, rc.delivered()[1].ID)
}
