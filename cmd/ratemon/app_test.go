package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"

	"github.com/ratemon/ratemon/internal/testenv"
	"github.com/ratemon/ratemon/limiter"
)

// run runs the ratemon command line in-process.
func run(ctx context.Context, stdin string, args ...string) (stdout, stderr string, err error) {
	var out, errw bytes.Buffer
	app := newApp(strings.NewReader(stdin), &out, &errw)
	err = app.RunContext(ctx, interspersed(app, append([]string{"ratemon"}, args...)))
	return out.String(), errw.String(), err
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	return 1
}

func TestConfigValidate(t *testing.T) {
	out, _, err := run(t.Context(), "", "config", "validate", "../../configs/ratemon.yaml")
	require.NoError(t, err)
	require.Contains(t, out, "../../configs/ratemon.yaml: ok (")

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("nats:\n  stremm: X\nrules:\n  - name: r\n    limit: -5\n    window: 1m\n"), 0o600))
	_, _, err = run(t.Context(), "", "config", "validate", bad)
	require.Error(t, err)
	require.Equal(t, 1, exitCode(err))
	require.Contains(t, err.Error(), bad+":2:3: nats.stremm: unknown field")
	require.Contains(t, err.Error(), bad+":5:12: rules[0].limit: must be between 1 and")

	_, _, err = run(t.Context(), "", "config", "validate")
	require.Equal(t, exitUsage, exitCode(err))
}

func TestVersion(t *testing.T) {
	out, _, err := run(t.Context(), "", "version")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(out, "ratemon "), out)
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// TestServePublishCheck runs serve, publish and check as a user would, and
// stops serve as SIGTERM does (by cancelling its context).
func TestServePublishCheck(t *testing.T) {
	n := testenv.StartNATS(t)
	rdb := testenv.Redis(t)
	prefix := testenv.Prefix(t, rdb)
	name := testenv.Name(t)
	cfgPath := filepath.Join(t.TempDir(), "ratemon.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(`
rules:
  - name: per-client-minute
    match: {service: stocks}
    key: [client]
    limit: 5
    window: 1m
`), 0o600))
	httpAddr := freePort(t)
	t.Setenv("RATEMON_REDIS_PREFIX", prefix) // environment variables override the file
	common := []string{"--config", cfgPath, "--nats-url", n.URL(), "--redis-url", "redis://" + testenv.RedisAddr() + "/0",
		"--nats-stream", "EV" + name, "--nats-deadletter-stream", "DL" + name, "--nats-subject-prefix", "rm" + name}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, _, err := run(ctx, "", append([]string{"serve", "--http-addr", httpAddr, "--workers-block", "50ms"}, common...)...)
		done <- err
	}()
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 15*time.Second, 20*time.Millisecond)

	var events strings.Builder
	for i := range 7 {
		fmt.Fprintf(&events, `{"client":"acme","route":"GET /stocks/{symbol}/history","id":"r%d"}`+"\n", i)
	}
	out, _, err := run(t.Context(), events.String(), append([]string{"publish", "--service", "stocks", "--stdin"}, common...)...)
	require.NoError(t, err)
	require.Equal(t, "published 7 events in 1 messages\n", out)

	var res limiter.CheckResult
	require.Eventually(t, func() bool {
		out, _, err := run(t.Context(), "", append([]string{"check", "--client", "acme", "--service", "stocks"}, common...)...)
		if exitCode(err) != exitDenied {
			return false
		}
		return json.Unmarshal([]byte(out), &res) == nil
	}, 5*time.Second, 20*time.Millisecond)
	require.False(t, res.Allowed)
	require.Equal(t, int64(7), res.Rules[0].Count)
	require.Greater(t, res.RetryAfterMS, int64(50_000))

	out, _, err = run(t.Context(), "", append([]string{"check", "--client", "calm", "--service", "stocks"}, common...)...)
	require.NoError(t, err, "an allowed client exits 0")
	require.Contains(t, out, `"allowed": true`)

	_, _, err = run(t.Context(), "", append([]string{"check"}, common...)...)
	require.Equal(t, exitUsage, exitCode(err))

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err, "serve exits cleanly on SIGTERM")
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop")
	}
}
