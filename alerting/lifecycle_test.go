package alerting_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/alerting"
	"github.com/ratemon/ratemon/internal/testenv"
	"github.com/ratemon/ratemon/limiter"
)

// TestLifecycle_nearExceededResolved drives one key through near, exceeded
// and back: three notifications, nothing in between.
func TestLifecycle_nearExceededResolved(t *testing.T) {
	rc := newReceiver(t, nil)
	cfg := fastConfig(webhook("hook", rc.URL))
	cfg.LinkTemplate = "https://grafana.example/d/ratemon?var-key={{.Key | urlquery}}&var-rule={{.Rule}}"
	in := start(t, instanceOpts{prefix: testenv.Prefix(t, testenv.Redis(t)), cfg: cfg, rules: testRules(t)})
	ctx := t.Context()

	in.Observe(ctx, []limiter.Evaluation{result("client=acme", 5, 10, 0)}) // under warn_at: nothing
	in.Observe(ctx, []limiter.Evaluation{result("client=acme", 8, 10, 0)})
	require.Eventually(t, func() bool { return len(rc.delivered()) == 1 }, 5*time.Second, 5*time.Millisecond)
	near := rc.delivered()[0]
	require.Equal(t, alerting.StateNear, near.State)
	require.Equal(t, limiter.SeverityWarning, near.Severity)
	require.Equal(t, "https://grafana.example/d/ratemon?var-key=client%3Dacme&var-rule=per-client", near.Link)

	active, err := in.Active(ctx)
	require.NoError(t, err)
	require.Len(t, active, 1)
	require.Equal(t, alerting.StateNear, active[0].State)

	// Over the limit, again and again: one exceeded notification.
	var until time.Time
	for range 5 {
		until = time.Now().Add(400 * time.Millisecond)
		in.Observe(ctx, []limiter.Evaluation{result("client=acme", 12, 10, until.UnixMilli())})
	}
	require.Eventually(t, func() bool { return len(rc.delivered()) == 2 }, 5*time.Second, 5*time.Millisecond)
	ex := rc.delivered()[1]
	require.Equal(t, alerting.StateExceeded, ex.State)
	require.Equal(t, alerting.StateNear, ex.Previous)
	require.Equal(t, limiter.SeverityCritical, ex.Severity)
	require.Equal(t, "stocks", ex.Service)
	require.Equal(t, int64(12), ex.Count)
	require.Equal(t, int64(10), ex.Limit)
	require.Equal(t, alerting.Duration(time.Second), ex.Window)
	require.Equal(t, near.Since, ex.Since, "first seen is when the alert opened")
	require.Equal(t, "deny", ex.Flag.Kind)
	require.Equal(t, "rmtest", ex.Flag.Key[:6])
	require.False(t, ex.Flag.Until.IsZero())

	active, err = in.Active(ctx)
	require.NoError(t, err)
	require.Len(t, active, 1)
	require.Equal(t, alerting.StateExceeded, active[0].State)

	// No more events: the flag ends, and resolve_after later the alert resolves.
	require.Eventually(t, func() bool { return len(rc.delivered()) == 3 }, 5*time.Second, 5*time.Millisecond)
	res := rc.delivered()[2]
	require.Equal(t, alerting.StateResolved, res.State)
	require.Equal(t, alerting.StateExceeded, res.Previous)
	require.Equal(t, limiter.SeverityCritical, res.Severity, "a resolution carries the severity of what it resolves")
	require.False(t, res.At.Before(until.Add(300*time.Millisecond).Truncate(time.Millisecond)), "resolved before the hold-down ended")
	require.Equal(t, int64(12), res.Peak)
	require.Equal(t, []string{near.ID, ex.ID, res.ID}, []string{
		"per-client:client=acme:1", "per-client:client=acme:2", "per-client:client=acme:3"})

	active, err = in.Active(ctx)
	require.NoError(t, err)
	require.Empty(t, active)
	require.InDelta(t, 1.0, testutil.ToFloat64(in.metrics.Transitions.WithLabelValues("per-client", "resolved")), 0)

	// Nothing else comes, and a new excess opens a new alert.
	in.Observe(ctx, []limiter.Evaluation{result("client=acme", 11, 10, time.Now().Add(time.Second).UnixMilli())})
	require.Eventually(t, func() bool { return len(rc.delivered()) == 4 }, 5*time.Second, 5*time.Millisecond)
	again := rc.delivered()[3]
	require.Equal(t, alerting.StateExceeded, again.State)
	require.Empty(t, again.Previous)
	require.True(t, again.Since.After(near.Since))
}

// TestLifecycle_underThresholdResolvesSooner: a near alert whose key keeps
// sending, but under warn_at, resolves resolve_after later, not a window
// later.
func TestLifecycle_underThresholdResolvesSooner(t *testing.T) {
	rc := newReceiver(t, nil)
	rules := testRules(t, limiter.Rule{Name: "per-client", Key: []limiter.Field{limiter.FieldClient}, Limit: 10,
		Window: time.Hour, WarnAt: 0.5, Action: limiter.ActionShadow})
	in := start(t, instanceOpts{prefix: testenv.Prefix(t, testenv.Redis(t)), cfg: fastConfig(webhook("hook", rc.URL)), rules: rules})
	in.Observe(t.Context(), []limiter.Evaluation{result("client=a", 6, 10, 0)})
	require.Eventually(t, func() bool { return len(rc.delivered()) == 1 }, 5*time.Second, 5*time.Millisecond)
	// The active set refreshes every check_interval; then results under
	// warn_at are passed on.
	require.Eventually(t, func() bool {
		in.Observe(t.Context(), []limiter.Evaluation{result("client=a", 2, 10, 0)})
		return len(rc.delivered()) == 2
	}, 5*time.Second, 20*time.Millisecond)
	require.Equal(t, []string{"client=a near", "client=a resolved"}, states(rc.delivered()))
	require.Equal(t, "shadow", rc.delivered()[0].Flag.Kind)
}

// TestLifecycle_repeat reminds of an alert still active after
// repeat_interval.
func TestLifecycle_repeat(t *testing.T) {
	rc := newReceiver(t, nil)
	cfg := fastConfig(webhook("hook", rc.URL))
	cfg.RepeatInterval = time.Second
	in := start(t, instanceOpts{prefix: testenv.Prefix(t, testenv.Redis(t)), cfg: cfg, rules: testRules(t)})
	// A client over its limit for 1.2s, evaluated every 50ms: a reminder at
	// 1s, resolved at about 1.2s + 0.2s (flag) + 0.3s (resolve_after).
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for stop := time.Now().Add(1200 * time.Millisecond); time.Now().Before(stop); <-tick.C {
		in.Observe(t.Context(), []limiter.Evaluation{result("client=a", 15, 10, time.Now().Add(200*time.Millisecond).UnixMilli())})
	}
	require.Eventually(t, func() bool { return len(rc.delivered()) == 3 }, 5*time.Second, 5*time.Millisecond)
	got := rc.delivered()
	require.Equal(t, []string{"client=a exceeded", "client=a exceeded", "client=a resolved"}, states(got))
	require.Equal(t, 1, got[1].Repeat)
	require.Equal(t, alerting.StateExceeded, got[1].Previous)
}
