// Package daemontest runs a real ratemon daemon inside a test: on the
// test's NATS server and the shared test Redis, under private key, stream
// and subject names, stopped when the test ends. Tests of code that talks
// to the daemon (inline checkers, examples, clients in other languages)
// use it; it is for tests only.
package daemontest

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ratemon/ratemon/internal/config"
	"github.com/ratemon/ratemon/internal/daemon"
	"github.com/ratemon/ratemon/internal/keyspace"
	"github.com/ratemon/ratemon/internal/testenv"
	"github.com/ratemon/ratemon/limiter"
)

// AdminToken is the test daemons' admin API token.
const AdminToken = "test-admin-token"

// Daemon is a daemon running in the test's process.
type Daemon struct {
	Base     string // http://host:port
	Config   *config.Config
	Keys     keyspace.Redis
	Subjects keyspace.Subjects
}

// Start runs a daemon with rules until the test ends and waits until it is
// ready. Workers and ingestion are tuned for short waits.
func Start(t testing.TB, natsURL string, rules []limiter.Rule) *Daemon {
	t.Helper()
	return StartWith(t, natsURL, rules, nil)
}

// StartWith is Start with a last change to the configuration, when mutate
// is not nil.
func StartWith(t testing.TB, natsURL string, rules []limiter.Rule, mutate func(*config.Config)) *Daemon {
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
	cfg.Workers.Block = 20 * time.Millisecond
	cfg.Ingest.Linger = time.Millisecond
	cfg.HTTP.AdminToken = AdminToken
	if mutate != nil {
		mutate(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("daemontest: config: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("daemontest: listen: %v", err)
	}
	d, err := daemon.New(daemon.Options{Config: cfg, Listener: ln, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("daemontest: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("daemontest: daemon stopped with %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("daemontest: daemon did not stop within 20s")
		}
	})
	r := &Daemon{Base: "http://" + ln.Addr().String(), Config: cfg}
	r.Keys, _ = keyspace.NewRedis(cfg.Redis.Prefix)
	r.Subjects, _ = keyspace.NewSubjects(cfg.NATS.SubjectPrefix)
	deadline := time.Now().Add(15 * time.Second)
	for r.status("/readyz") != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("daemontest: daemon never became ready")
		}
		time.Sleep(10 * time.Millisecond) // polling the daemon's own readiness, with a deadline
	}
	return r
}

func (r *Daemon) status(path string) int {
	resp, err := http.Get(r.Base + path)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// Admin calls the daemon's admin API with the token and returns the status.
func (r *Daemon) Admin(t testing.TB, method, path, body string) int {
	t.Helper()
	req, err := http.NewRequest(method, r.Base+path, strings.NewReader(body))
	if err != nil {
		t.Fatalf("daemontest: %v", err)
	}
	req.Header.Set("Authorization", "Bearer "+AdminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("daemontest: %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}
