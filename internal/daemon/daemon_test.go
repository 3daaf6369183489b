package daemon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/internal/config"
	"github.com/ratemon/ratemon/internal/daemon"
	"github.com/ratemon/ratemon/internal/keyspace"
	"github.com/ratemon/ratemon/internal/testenv"
	"github.com/ratemon/ratemon/limiter"
)

type running struct {
	base     string
	cfg      *config.Config
	keys     keyspace.Redis
	subjects keyspace.Subjects
	done     chan error
	cancel   context.CancelFunc
}

func startDaemon(t *testing.T, natsURL string, rules []limiter.Rule) *running {
	t.Helper()
	return startDaemonWith(t, natsURL, rules, nil)
}

// daemonOption changes the daemon's options in a test.
type daemonOption func(*daemon.Options)

func withLoad(load func() (*config.Config, error)) daemonOption {
	return func(o *daemon.Options) { o.Load = load }
}

func withWatch(d time.Duration) daemonOption {
	return func(o *daemon.Options) { o.WatchInterval = d }
}

// startDaemonWith runs a daemon on in-process NATS and the shared Redis with
// names private to the test; edit changes the config before it starts.
func startDaemonWith(t *testing.T, natsURL string, rules []limiter.Rule, edit func(*config.Config), opts ...daemonOption) *running {
	t.Helper()
	rdb := testenv.Redis(t)
	name := testenv.Name(t)
	cfg := &config.Config{Rules: rules}
	cfg.SetDefaults()
	cfg.Redis.URL = "redis://" + testenv.RedisAddr() + "/0"
	cfg.Redis.Prefix = testenv.Prefix(t, rdb)
	cfg.NATS.URL = natsURL
	cfg.NATS.Stream = "EV" + name
	cfg.NATS.DeadLetterStream = "DL" + name
	cfg.NATS.SubjectPrefix = "rm" + name
	cfg.Workers.Block = 50 * time.Millisecond
	if edit != nil {
		edit(cfg)
		cfg.SetDefaults()
	}
	require.NoError(t, cfg.Validate())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	o := daemon.Options{Config: cfg, Listener: ln, Logger: testLogger(t)}
	for _, opt := range opts {
		opt(&o)
	}
	d, err := daemon.New(o)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{base: "http://" + ln.Addr().String(), cfg: cfg, done: make(chan error, 1), cancel: cancel}
	r.keys, _ = keyspace.NewRedis(cfg.Redis.Prefix)
	r.subjects, _ = keyspace.NewSubjects(cfg.NATS.SubjectPrefix)
	go func() { r.done <- d.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	require.Eventually(t, func() bool {
		code, _ := get(t, r.base+"/readyz")
		return code == http.StatusOK
	}, 15*time.Second, 20*time.Millisecond, "daemon never became ready")
	return r
}

func (r *running) stop(t *testing.T) {
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("daemon did not stop within 20s")
	}
}

func get(t *testing.T, u string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func checkURL(base, client string) string {
	q := url.Values{"client": {client}, "service": {"stocks"}, "route": {"GET /stocks/{symbol}/history"}}
	return base + "/v1/check?" + q.Encode()
}

func TestDaemon_endToEnd(t *testing.T) {
	n := testenv.StartNATS(t)
	r := startDaemon(t, n.URL(), []limiter.Rule{{
		Name: "per-client", Match: limiter.Match{Service: "stocks"}, Key: []limiter.Field{limiter.FieldClient},
		Limit: 10, Window: 3 * time.Second, Action: limiter.ActionDeny,
	}})
	rdb := testenv.Redis(t)
	nc := n.Connect(t)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	decisions, err := nc.SubscribeSync(r.subjects.Decisions())
	require.NoError(t, err)

	publish := func(client string, count int) {
		var buf []byte
		for range count {
			buf = append(buf, fmt.Sprintf(`{"client":%q,"route":"GET /stocks/{symbol}/history","ts":%d}`+"\n", client, time.Now().UnixMilli())...)
		}
		_, err := js.Publish(t.Context(), r.subjects.Events("stocks"), buf)
		require.NoError(t, err)
	}
	publish("calm", 9)
	publish("abuser", 12)

	denyKey := r.keys.Deny("client=abuser")
	require.Eventually(t, func() bool { return rdb.Exists(t.Context(), denyKey).Val() == 1 }, 5*time.Second, 5*time.Millisecond)
	pttl := rdb.PTTL(t.Context(), denyKey).Val()
	require.Greater(t, pttl, time.Duration(0))
	require.LessOrEqual(t, pttl, 3*time.Second)
	val := rdb.Get(t.Context(), denyKey).Val()
	flag, err := limiter.ParseFlag([]byte(val))
	require.NoError(t, err)
	require.Equal(t, "per-client", flag.Rule)

	m, err := decisions.NextMsg(5 * time.Second)
	require.NoError(t, err)
	var dec limiter.Decision
	require.NoError(t, json.Unmarshal(m.Data, &dec))
	require.Equal(t, limiter.LimitKey("client=abuser"), dec.Key)
	require.False(t, dec.Allowed)
	require.Equal(t, flag.Until, dec.Until)

	code, body := get(t, checkURL(r.base, "abuser"))
	require.Equal(t, http.StatusOK, code)
	var res limiter.CheckResult
	require.NoError(t, json.Unmarshal(body, &res))
	require.False(t, res.Allowed)
	require.Positive(t, res.RetryAfterMS)
	require.Len(t, res.Rules, 1)
	require.Equal(t, int64(12), res.Rules[0].Count)
	require.Equal(t, int64(0), res.Rules[0].Remaining)

	// calm's 9 events, far from its limit, may wait up to ingest.hold
	// (a quarter of the 3 s window) before they are counted.
	require.Eventually(t, func() bool {
		code, body = get(t, checkURL(r.base, "calm"))
		res = limiter.CheckResult{}
		return code == http.StatusOK && json.Unmarshal(body, &res) == nil && len(res.Rules) == 1 && res.Rules[0].Remaining == 1
	}, 2*time.Second, 5*time.Millisecond, "calm: %d %s", code, body)
	require.True(t, res.Allowed)
	require.Zero(t, rdb.Exists(t.Context(), r.keys.Deny("client=calm")).Val(), "a client under its limit is never flagged")

	// Once the window frees up the abuser is allowed again.
	var last string
	require.Eventually(t, func() bool {
		code, body := get(t, checkURL(r.base, "abuser"))
		last = string(body)
		var res limiter.CheckResult
		return code == http.StatusOK && json.Unmarshal(body, &res) == nil && res.Allowed
	}, 6*time.Second, 20*time.Millisecond, "the abuser stays denied")
	t.Log("last answer:", last)
	require.Zero(t, rdb.Exists(t.Context(), denyKey).Val())

	// Bad requests get a 4xx with a message.
	code, body = get(t, r.base+"/v1/check")
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, string(body), "client or ip is required")
	code, _ = get(t, r.base+"/v1/check?client=a&bogus=1")
	require.Equal(t, http.StatusBadRequest, code)

	code, body = get(t, r.base+"/metrics")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, string(body), `ratemon_ingest_events_total{result="accepted",service="stocks"} 21`)
	require.Contains(t, string(body), `ratemon_limiter_denies_total{rule="per-client"}`)

	r.stop(t)
}

func TestDaemon_notReadyWithoutNATS(t *testing.T) {
	n := testenv.StartNATS(t)
	url := n.URL()
	n.Shutdown()
	rdb := testenv.Redis(t)
	cfg := &config.Config{Rules: []limiter.Rule{{Name: "r", Limit: 1, Window: time.Second}}}
	cfg.SetDefaults()
	cfg.Redis.URL = "redis://" + testenv.RedisAddr() + "/0"
	cfg.Redis.Prefix = testenv.Prefix(t, rdb)
	cfg.NATS.URL = url
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	d, err := daemon.New(daemon.Options{Config: cfg, Listener: ln})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	base := "http://" + ln.Addr().String()
	require.Eventually(t, func() bool {
		code, body := get(t, base+"/readyz")
		return code == http.StatusServiceUnavailable && json.Valid(body) && strings.Contains(string(body), "nats")
	}, 10*time.Second, 20*time.Millisecond)
	code, _ := get(t, base+"/healthz")
	require.Equal(t, http.StatusOK, code, "the daemon stays up while NATS is down")
	n.Restart()
	require.Eventually(t, func() bool {
		code, _ := get(t, base+"/readyz")
		return code == http.StatusOK
	}, 15*time.Second, 20*time.Millisecond, "the daemon resumes by itself")
	cancel()
	require.NoError(t, <-done)
}

// testLogger logs through t.Log, so a failing test shows what the daemon said.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
