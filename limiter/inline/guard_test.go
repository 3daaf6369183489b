package inline_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/internal/testenv"
	"github.com/ratemon/ratemon/limiter/inline"
)

func TestNew_validates(t *testing.T) {
	_, err := inline.New(inline.Options{Service: "stocks", RulesURL: "http://127.0.0.1:1"})
	require.ErrorContains(t, err, "nats connection is required")
	require.ErrorContains(t, err, "redis client is required")
	n := testenv.StartNATS(t)
	_, err = inline.New(inline.Options{NATS: n.Connect(t), Redis: testenv.Redis(t), Service: "stocks"})
	require.ErrorContains(t, err, "give rules or rules url")
	_, err = inline.New(inline.Options{NATS: n.Connect(t), Redis: testenv.Redis(t), Service: "a.b", RulesURL: "http://x", Policy: "maybe"})
	require.ErrorContains(t, err, "policy: must be fail-open or fail-closed")
}

func TestGuard_servesReportsAndStops(t *testing.T) {
	n := testenv.StartNATS(t)
	d := startDaemon(t, n.URL(), perClient(100, time.Minute))
	nc := n.Connect(t)
	reg := prometheus.NewPedanticRegistry()
	g, err := inline.New(inline.Options{NATS: nc, Redis: testenv.Redis(t), Service: "stocks", RulesURL: d.Base,
		RedisPrefix: d.Config.Redis.Prefix, SubjectPrefix: d.Config.NATS.SubjectPrefix, Registerer: reg,
		HTTP: inline.MiddlewareOptions{SkipPaths: []string{"/healthz"}}})
	require.NoError(t, err)
	c := collect(t, n.Connect(t), d.Subjects.Events("stocks"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	require.Eventually(t, g.Checker().FeedUp, 5*time.Second, 5*time.Millisecond)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /stocks/{symbol}/history", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	h := g.Handler(mux)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/stocks/A/history", nil))
	require.Equal(t, http.StatusTeapot, w.Code)

	cancel()
	require.NoError(t, <-done)
	require.Eventually(t, func() bool { return c.count() == 1 }, 5*time.Second, 5*time.Millisecond, "Run flushes on the way out")
	c.mu.Lock()
	require.Equal(t, 418, c.events[0].Status)
	c.mu.Unlock()
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP ratemon_inline_events_published_total Request events sent to NATS by inline publishers.
# TYPE ratemon_inline_events_published_total counter
ratemon_inline_events_published_total 1
`), "ratemon_inline_events_published_total"))
	count, err := testutil.GatherAndCount(reg, "ratemon_inline_feed_up", "ratemon_inline_checks_total")
	require.NoError(t, err)
	require.Equal(t, 7, count)
}
