package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/internal/testenv"
	"github.com/ratemon/ratemon/limiter"
)

// TestOperatorCommands runs a daemon and drives it as an operator would:
// block, list, check, unblock, override, top, list --shadow, and a SIGHUP
// reload of a changed rules file.
func TestOperatorCommands(t *testing.T) {
	n := testenv.StartNATS(t)
	rdb := testenv.Redis(t)
	prefix := testenv.Prefix(t, rdb)
	name := testenv.Name(t)
	cfgPath := filepath.Join(t.TempDir(), "ratemon.yaml")
	writeRules := func(limit int) {
		require.NoError(t, os.WriteFile(cfgPath, []byte(fmt.Sprintf(`
tiers: {gold: 10}
rules:
  - name: per-client
    key: [client]
    limit: %d
    window: 1m
  - name: watch
    key: [client]
    limit: 2
    window: 1m
    action: shadow
`, limit)), 0o600))
	}
	writeRules(5)
	httpAddr := freePort(t)
	common := []string{"--config", cfgPath, "--nats-url", n.URL(), "--redis-url", "redis://" + testenv.RedisAddr() + "/0",
		"--redis-prefix", prefix, "--nats-stream", "EV" + name, "--nats-deadletter-stream", "DL" + name, "--nats-subject-prefix", "rm" + name}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, _, err := run(ctx, "", append([]string{"serve", "--http-addr", httpAddr, "--workers-block", "50ms", "--reload-interval", "0"}, common...)...)
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
	cmd := func(args ...string) (string, error) {
		out, _, err := run(t.Context(), "", append(args, common...)...)
		return out, err
	}

	out, err := cmd("block", "client=mallory", "--for", "2h", "--reason", "scraping", "--author", "alice")
	require.NoError(t, err)
	require.Contains(t, out, "block client=mallory until ")
	out, err = cmd("list")
	require.NoError(t, err)
	require.Contains(t, out, "block   client=mallory")
	require.Contains(t, out, "alice")
	_, err = cmd("check", "--client", "mallory")
	require.Equal(t, exitDenied, exitCode(err))
	_, err = cmd("unblock", "client=mallory")
	require.NoError(t, err)
	_, err = cmd("check", "--client", "mallory")
	require.NoError(t, err)
	_, err = cmd("block", "client=mallory", "--for", "2x", "--reason", "r")
	require.Equal(t, exitUsage, exitCode(err))

	var events strings.Builder
	for range 4 {
		events.WriteString(`{"client":"busy"}` + "\n")
	}
	_, _, err = run(t.Context(), events.String(), append([]string{"publish", "--service", "api", "--stdin"}, common...)...)
	require.NoError(t, err)
	var top []limiter.TopEntry
	require.Eventually(t, func() bool {
		out, err := cmd("top", "--rule", "per-client", "--json")
		return err == nil && json.Unmarshal([]byte(out), &top) == nil && len(top) == 1 && top[0].Count == 4
	}, 5*time.Second, 20*time.Millisecond)
	require.Equal(t, "ok", top[0].State)
	out, err = cmd("top", "--once")
	require.NoError(t, err)
	require.Contains(t, out, "client=busy")
	out, err = cmd("list", "--shadow")
	require.NoError(t, err)
	require.Contains(t, out, "client=busy  watch  4/2")

	out, err = cmd("override", "client=busy", "--rule", "per-client", "--limit", "3")
	require.NoError(t, err)
	require.Contains(t, out, "1 flag changes")
	_, err = cmd("check", "--client", "busy")
	require.Equal(t, exitDenied, exitCode(err))
	_, err = cmd("override", "client=busy", "--clear")
	require.NoError(t, err)
	_, err = cmd("check", "--client", "busy")
	require.NoError(t, err)

	// SIGHUP reloads the rules file; the new limit applies from the key's
	// next event.
	writeRules(3)
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + httpAddr + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(b), `ratemon_config_reloads_total{result="ok"} 1`)
	}, 5*time.Second, 20*time.Millisecond, "the daemon did not reload on SIGHUP")
	_, _, err = run(t.Context(), `{"client":"busy"}`+"\n", append([]string{"publish", "--service", "api", "--stdin"}, common...)...)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := cmd("check", "--client", "busy")
		return exitCode(err) == exitDenied
	}, 5*time.Second, 20*time.Millisecond)

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop")
	}
}
