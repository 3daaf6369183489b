package alerting_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/alerting"
	"github.com/ratemon/ratemon/internal/testenv"
	"github.com/ratemon/ratemon/limiter"
)

// verify is what a receiver does with the signature headers, written out
// as docs/ALERTING.md tells.
func verify(secret string, h http.Header, body []byte) bool {
	ts := h.Get("X-Ratemon-Timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		return false
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts + "." + string(body)))
	want := "v1=" + hex.EncodeToString(m.Sum(nil))
	return hmac.Equal([]byte(want), []byte(h.Get("X-Ratemon-Signature")))
}

// TestWebhook_signedBodyRetriedAfter500s: the body is signed; two 500s are
// retried with the same delivery id and body; the third attempt lands.
func TestWebhook_signedBodyRetriedAfter500s(t *testing.T) {
	rc := newReceiver(t, func(n int, _ *http.Request, _ []byte) int {
		if n < 2 {
			return http.StatusInternalServerError
		}
		return http.StatusNoContent
	})
	sink := webhook("ops", rc.URL)
	sink.SecretEnv = "RATEMON_HOOK_SECRET"
	in := start(t, instanceOpts{prefix: testenv.Prefix(t, testenv.Redis(t)), cfg: fastConfig(sink), rules: testRules(t),
		env: map[string]string{"RATEMON_HOOK_SECRET": "s3cr3t"}})
	in.Observe(t.Context(), []limiter.Evaluation{result("client=acme", 12, 10, time.Now().Add(time.Minute).UnixMilli())})

	require.Eventually(t, func() bool { return len(rc.delivered()) == 1 }, 10*time.Second, 10*time.Millisecond)
	posts := rc.all()
	require.Len(t, posts, 3)
	for _, p := range posts {
		require.True(t, verify("s3cr3t", p.header, p.raw), "bad signature on %s", p.raw)
		require.False(t, verify("other", p.header, p.raw))
		require.Equal(t, posts[0].header.Get("X-Ratemon-Delivery"), p.header.Get("X-Ratemon-Delivery"))
		require.Equal(t, string(posts[0].raw), string(p.raw), "every attempt sends the same body")
		require.Equal(t, "application/json", p.header.Get("Content-Type"))
	}
	b := posts[2].body
	require.Equal(t, "1", b.Version)
	require.Equal(t, "ops", b.Receiver)
	require.Equal(t, "per-client", b.Rule)
	require.Equal(t, alerting.StateExceeded, b.State)
	require.Len(t, b.Alerts, 1)
	require.Equal(t, "per-client:client=acme:1", b.Alerts[0].ID)
	require.NotContains(t, string(posts[2].raw), "s3cr3t")

	m := in.metrics
	require.Eventually(t, func() bool { return testutil.ToFloat64(m.Notifications.WithLabelValues("ops", "sent")) == 1 }, time.Second, 5*time.Millisecond)
	require.InDelta(t, 2.0, testutil.ToFloat64(m.Retries.WithLabelValues("ops")), 0)
	require.InDelta(t, 2.0, testutil.ToFloat64(m.Notifications.WithLabelValues("ops", "failed")), 0)
	require.InDelta(t, 0.0, testutil.ToFloat64(m.Dead.WithLabelValues("ops")), 0)
	require.Equal(t, uint64(3), sendCount(t, in, "ops"), "one latency sample per attempt")
}

// TestWebhook_missingSecret refuses to start a signed webhook without its
// secret, and never prints the secret.
func TestWebhook_missingSecret(t *testing.T) {
	sink := webhook("ops", "http://127.0.0.1:1/")
	sink.SecretEnv = "RATEMON_NOPE"
	keys := testKeys(t)
	_, err := alerting.New(alerting.Options{Config: fastConfig(sink), Redis: testenv.Redis(t), Keys: keys, Rules: testRules(t),
		Replica: "r", Getenv: func(string) string { return "" }})
	require.EqualError(t, err, "alerting: alerting.sinks[0] (ops): secret_env: environment variable RATEMON_NOPE is not set or empty")

	s := alerting.Secret("hunter2")
	require.Equal(t, "<secret>", s.String())
	require.Equal(t, "<secret>", fmt.Sprintf("%v %s", s, s)[:8])
	require.Equal(t, "<secret> <secret> <secret>", fmt.Sprintf("%v %s %#v", s, s, s))
	b, err := s.MarshalJSON()
	require.NoError(t, err)
	require.JSONEq(t, `"<secret>"`, string(b))
}

// TestSinks_permanentErrorAndFilters: a 400 is not retried; a sink only
// gets the rules, severities and states it asked for.
func TestSinks_permanentErrorAndFilters(t *testing.T) {
	bad := newReceiver(t, func(int, *http.Request, []byte) int { return http.StatusBadRequest })
	all := newReceiver(t, nil)
	pager := newReceiver(t, nil)
	pagerSink := webhook("pager", pager.URL)
	pagerSink.States = []alerting.State{alerting.StateExceeded, alerting.StateResolved}
	pagerSink.Severities = []limiter.Severity{limiter.SeverityCritical}
	pagerSink.Rules = []string{"per-client"}
	in := start(t, instanceOpts{prefix: testenv.Prefix(t, testenv.Redis(t)),
		cfg: fastConfig(webhook("bad", bad.URL), webhook("all", all.URL), pagerSink), rules: testRules(t)})

	in.Observe(t.Context(), []limiter.Evaluation{result("client=calm", 9, 10, 0)}) // near, then resolved
	in.Observe(t.Context(), []limiter.Evaluation{result("client=bad", 20, 10, time.Now().Add(200*time.Millisecond).UnixMilli())})
	require.Eventually(t, func() bool { return len(all.delivered()) == 4 }, 10*time.Second, 10*time.Millisecond)
	require.ElementsMatch(t, []string{"client=calm near", "client=bad exceeded", "client=calm resolved", "client=bad resolved"}, states(all.delivered()))
	require.Eventually(t, func() bool { return len(pager.delivered()) == 2 }, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, []string{"client=bad exceeded", "client=bad resolved"}, states(pager.delivered()))

	m := in.metrics
	require.Eventually(t, func() bool { return testutil.ToFloat64(m.Dead.WithLabelValues("bad")) == 4 }, 5*time.Second, 10*time.Millisecond)
	require.Len(t, bad.all(), 4, "a permanent error is not retried")
	require.InDelta(t, 0.0, testutil.ToFloat64(m.Retries.WithLabelValues("bad")), 0)
}

// TestGrouping: 300 clients tripping one rule at once make one message.
func TestGrouping(t *testing.T) {
	rc := newReceiver(t, nil)
	cfg := fastConfig(webhook("hook", rc.URL))
	cfg.GroupWait = 300 * time.Millisecond
	in := start(t, instanceOpts{prefix: testenv.Prefix(t, testenv.Redis(t)), cfg: cfg, rules: testRules(t)})
	until := time.Now().Add(time.Minute).UnixMilli()
	for i := range 300 {
		in.Observe(t.Context(), []limiter.Evaluation{result(fmt.Sprintf("client=c%03d", i), 11, 10, until)})
	}
	require.Eventually(t, func() bool { return len(rc.delivered()) == 300 }, 10*time.Second, 10*time.Millisecond)
	posts := rc.all()
	require.Len(t, posts, 1, "one grouped message, not 300")
	require.Equal(t, alerting.StateExceeded, posts[0].body.State)

	// A latecomer of the same group waits for group_interval after that send.
	in.Observe(t.Context(), []limiter.Evaluation{result("client=late", 11, 10, until)})
	require.Eventually(t, func() bool { return len(rc.delivered()) == 301 }, 5*time.Second, 10*time.Millisecond)
	require.Len(t, rc.all(), 2)
}

// sendCount is the number of send latency samples of a sink.
func sendCount(t *testing.T, in *instance, sink string) uint64 {
	mfs, err := in.reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "ratemon_alerting_send_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "sink" && l.GetValue() == sink {
					return m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return 0
}

// TestSinks_hangingSinkHoldsUpNothing: a sink that never answers fills its
// own queue and loses messages (counted dead); the other sink delivers as
// usual, and Observe never waits.
func TestSinks_hangingSinkHoldsUpNothing(t *testing.T) {
	stop := make(chan struct{})
	hang := newReceiver(t, func(_ int, r *http.Request, _ []byte) int {
		select {
		case <-r.Context().Done():
		case <-stop:
		}
		return http.StatusOK
	})
	defer close(stop)
	ok := newReceiver(t, nil)
	hangSink := webhook("hang", hang.URL)
	hangSink.QueueSize, hangSink.Timeout, hangSink.MaxRetries = 1, 5*time.Second, 1
	okSink := webhook("ok", ok.URL)
	okSink.RateLimit = 100000
	cfg := fastConfig(hangSink, okSink)
	cfg.GroupWait, cfg.GroupInterval = time.Millisecond, time.Millisecond
	cfg.QueueSize = 8
	in := start(t, instanceOpts{prefix: testenv.Prefix(t, testenv.Redis(t)), cfg: cfg, rules: testRules(t)})

	until := time.Now().Add(time.Minute).UnixMilli()
	m := in.metrics
	sent := 0
	for wave := range 4 { // each wave is a message to each sink
		for i := range 50 {
			in.Observe(t.Context(), []limiter.Evaluation{result(fmt.Sprintf("client=w%dc%d", wave, i), 11, 10, until)})
			sent++
		}
		tracked := testutil.ToFloat64(m.Observations.WithLabelValues("tracked"))
		dropped := testutil.ToFloat64(m.Observations.WithLabelValues("dropped"))
		require.InDelta(t, float64(sent), tracked+dropped, 0, "every result is tracked or dropped, none waited for")
		require.Positive(t, tracked)
		require.Eventually(t, func() bool { return len(ok.delivered()) == int(tracked) }, 10*time.Second, 10*time.Millisecond,
			"the working sink gets every alert while the other hangs")
	}
	require.Eventually(t, func() bool { return testutil.ToFloat64(m.Notifications.WithLabelValues("hang", "dropped")) > 0 },
		5*time.Second, 10*time.Millisecond)
	require.Positive(t, testutil.ToFloat64(m.Dead.WithLabelValues("hang")))
}
