package deploytest

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/alerting"
	"github.com/ratemon/ratemon/internal/config"
	"github.com/ratemon/ratemon/internal/daemon"
	"github.com/ratemon/ratemon/internal/keyspace"
	"github.com/ratemon/ratemon/internal/testenv"
	"github.com/ratemon/ratemon/limiter"
)

// adminToken guards the test daemon's admin API.
const adminToken = "deploytest-token"

// running is a daemon started by startDaemon.
type running struct {
	d        *daemon.Daemon
	reg      *prometheus.Registry // what its /metrics serves
	addr     string               // host:port of its HTTP server
	base     string               // http://addr
	cfg      *config.Config
	subjects keyspace.Subjects
}

// startDaemon runs a daemon in-process on the given NATS and the shared
// Redis, with names private to the test, and waits until it is ready. load
// is the daemon's Options.Load (for Reload); nil disables reloading. The
// daemon stops when the test ends.
func startDaemon(t *testing.T, natsURL string, rules []limiter.Rule, load func() (*config.Config, error)) *running {
	t.Helper()
	rdb := testenv.Redis(t)
	name := testenv.Name(t)
	cfg := &config.Config{Rules: rules}
	// A log sink, so that the daemon runs alerting and exposes its metrics
	// (the dashboard's alerts-by-sink panel, RatemonAlertSinkFailing).
	cfg.Alerting.Sinks = []alerting.SinkConfig{{Name: "log", Type: alerting.SinkLog}}
	cfg.SetDefaults()
	cfg.Redis.URL = "redis://" + testenv.RedisAddr() + "/0"
	cfg.Redis.Prefix = testenv.Prefix(t, rdb)
	cfg.NATS.URL = natsURL
	cfg.NATS.Stream = "EV" + name
	cfg.NATS.DeadLetterStream = "DL" + name
	cfg.NATS.SubjectPrefix = "rm" + name
	cfg.Workers.Block = 50 * time.Millisecond
	cfg.HTTP.AdminToken = adminToken
	require.NoError(t, cfg.Validate())

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	// The registry the daemon would make itself, held here so that tests
	// can gather from it directly.
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	d, err := daemon.New(daemon.Options{
		Config: cfg, Registry: reg, Listener: ln, Logger: testLogger(t), Load: load, WatchInterval: -1,
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(20 * time.Second):
			t.Error("daemon did not stop within 20s")
		}
	})
	r := &running{d: d, reg: reg, addr: ln.Addr().String(), base: "http://" + ln.Addr().String(), cfg: cfg}
	r.subjects, err = keyspace.NewSubjects(cfg.NATS.SubjectPrefix)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		code, _ := get(r.base + "/readyz")
		return code == http.StatusOK
	}, 15*time.Second, 20*time.Millisecond, "daemon never became ready")
	return r
}

// get fetches u and returns the status and body; 0 when nothing answered.
func get(u string) (int, []byte) {
	resp, err := http.Get(u)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// testLogger logs through t.Log, so a failing test shows what the daemon said.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
