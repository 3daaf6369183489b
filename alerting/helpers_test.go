package alerting_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/alerting"
	"github.com/ratemon/ratemon/internal/keyspace"
	"github.com/ratemon/ratemon/internal/testenv"
	"github.com/ratemon/ratemon/limiter"
)

// fastConfig is an alerting config with short times, for tests.
func fastConfig(sinks ...alerting.SinkConfig) alerting.Config {
	return alerting.Config{
		ResolveAfter:   300 * time.Millisecond,
		RepeatInterval: time.Hour,
		GroupWait:      50 * time.Millisecond,
		GroupInterval:  100 * time.Millisecond,
		CheckInterval:  20 * time.Millisecond,
		LeaderLease:    600 * time.Millisecond,
		Sinks:          sinks,
	}
}

func testRules(t testing.TB, rules ...limiter.Rule) func() *limiter.Ruleset {
	t.Helper()
	if len(rules) == 0 {
		rules = []limiter.Rule{{Name: "per-client", Key: []limiter.Field{limiter.FieldClient}, Limit: 10,
			Window: time.Second, Action: limiter.ActionDeny, WarnAt: 0.8, Match: limiter.Match{Service: "stocks"}}}
	}
	rs, err := limiter.NewRuleset(rules)
	require.NoError(t, err)
	return func() *limiter.Ruleset { return rs }
}

// instance is one running Alerting, as one daemon replica has.
type instance struct {
	*alerting.Alerting
	reg     *prometheus.Registry
	metrics *alerting.Metrics
	cancel  context.CancelFunc
	done    chan error
}

type instanceOpts struct {
	prefix  string
	cfg     alerting.Config
	rules   func() *limiter.Ruleset
	replica string
	env     map[string]string
	nats    alerting.Publisher
	logger  *slog.Logger
}

func start(t testing.TB, o instanceOpts) *instance {
	t.Helper()
	keys, err := keyspace.NewRedis(o.prefix)
	require.NoError(t, err)
	subjects, err := keyspace.NewSubjects("rm" + strings.ReplaceAll(o.prefix, ":", "_"))
	require.NoError(t, err)
	if o.replica == "" {
		o.replica = "r1"
	}
	reg := prometheus.NewPedanticRegistry()
	metrics := alerting.NewMetrics(reg)
	log := o.logger
	if log == nil {
		log = testLogger(t)
	}
	a, err := alerting.New(alerting.Options{
		Config: o.cfg, Redis: testenv.Redis(t), Keys: keys, Rules: o.rules, Replica: o.replica,
		Subjects: subjects, NATS: o.nats, Getenv: func(k string) string { return o.env[k] },
		Logger: log.With("replica", o.replica), Metrics: metrics, HandoffGrace: 300 * time.Millisecond,
		FlushTimeout: 2 * time.Second,
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{Alerting: a, reg: reg, metrics: metrics, cancel: cancel, done: make(chan error, 1)}
	go func() { in.done <- a.Run(ctx) }()
	t.Cleanup(func() { in.stop(t) })
	return in
}

func (in *instance) stop(t testing.TB) {
	if in.cancel == nil {
		return
	}
	in.cancel()
	in.cancel = nil
	select {
	case err := <-in.done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("alerting did not stop within 10s")
	}
}

// result is one rule result as a worker sees it.
func result(key string, count, limit int64, until int64) limiter.Evaluation {
	now := time.Now().UnixMilli()
	return limiter.Evaluation{Key: limiter.LimitKey(key), Rules: []limiter.RuleState{{
		Rule: "per-client", Count: count, Limit: limit, Over: until > 0, Until: until, Newest: now,
	}}}
}

// receiver is a webhook endpoint that records what it receives.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	posts    []posted
	handle   func(n int, r *http.Request, body []byte) int // status for the n-th request (from 0); default 200
	requests int
}

type posted struct {
	path   string
	header http.Header
	raw    []byte
	body   alerting.WebhookBody
	status int
}

func newReceiver(t testing.TB, handle func(n int, r *http.Request, body []byte) int) *receiver {
	rc := &receiver{handle: handle}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		n := rc.requests
		rc.requests++
		rc.mu.Unlock()
		status := http.StatusOK
		if rc.handle != nil {
			status = rc.handle(n, r, raw)
		}
		p := posted{path: r.URL.Path, header: r.Header.Clone(), raw: raw, status: status}
		_ = json.Unmarshal(raw, &p.body)
		rc.mu.Lock()
		rc.posts = append(rc.posts, p)
		rc.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.Close)
	return rc
}

// delivered returns the alerts of the requests answered 2xx, in order.
func (rc *receiver) delivered() []alerting.Alert {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []alerting.Alert
	for _, p := range rc.posts {
		if p.status < 300 {
			out = append(out, p.body.Alerts...)
		}
	}
	return out
}

func (rc *receiver) all() []posted {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]posted(nil), rc.posts...)
}

func webhook(name, url string) alerting.SinkConfig {
	return alerting.SinkConfig{Name: name, Type: alerting.SinkWebhook, URL: url}
}

// states lists "<key> <state>" of alerts, in order.
func states(as []alerting.Alert) []string {
	out := make([]string, 0, len(as))
	for _, a := range as {
		out = append(out, string(a.Key)+" "+string(a.State))
	}
	return out
}

// testLogger logs through t.Log, so a failing test shows what happened.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testKeys(t testing.TB) keyspace.Redis {
	t.Helper()
	keys, err := keyspace.NewRedis(testenv.Prefix(t, testenv.Redis(t)))
	require.NoError(t, err)
	return keys
}

func redisZ(score float64, member string) redis.Z { return redis.Z{Score: score, Member: member} }
