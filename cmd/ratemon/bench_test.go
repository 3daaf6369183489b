package main

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/internal/testenv"
)

// TestBench_json runs a short `ratemon bench --json` with in-process
// daemons on the shared Redis and an in-process NATS.
func TestBench_json(t *testing.T) {
	n := testenv.StartNATS(t)
	testenv.Redis(t) // a clear failure when Redis is missing
	out, errOut, err := run(t.Context(), "", "bench", "--json", "--inprocess",
		"--redis-url", "redis://"+testenv.RedisAddr()+"/0", "--nats-url", n.URL(), "--workers-block", "50ms",
		"--keys", "100", "--events", "4000", "--rate", "4000", "--limit", "100", "--window", "5s",
		"--runs", "1", "--ref-events", "2000", "--ref-duration", "2s", "--ref-conns", "8")
	require.NoError(t, err, errOut)
	var got map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &got), out)
	for _, k := range []string{
		"events_per_s", "seed_exact_per_s", "seed_approx_per_s", "seed_approx_false_denies", "xadd_ceiling_per_s",
		"lag_p50_ms", "lag_p99_ms", "false_denies", "missed_denies", "redis_bytes_per_event", "daemon_rss_bytes",
	} {
		require.Contains(t, got, k)
	}
	require.Positive(t, got["events_per_s"])
	require.Positive(t, got["seed_exact_per_s"])
	require.Zero(t, got["false_denies"])
	require.Zero(t, got["missed_denies"])
	require.Zero(t, got["model_mismatches"])
	require.InDelta(t, 4000, got["events"], 0)
}

func TestBench_helpAndUsage(t *testing.T) {
	out, _, err := run(t.Context(), "", "bench", "--help")
	require.NoError(t, err)
	for _, f := range benchFlags() {
		require.Contains(t, out, "--"+f.Names()[0])
	}
	require.Contains(t, out, "--redis-url")
	require.Contains(t, out, "--nats-url")
	require.NotContains(t, out, "--redis-prefix", "every run picks a fresh prefix")

	_, _, err = run(t.Context(), "", "bench", "--dist", "pareto", "--inprocess")
	require.Equal(t, exitUsage, exitCode(err))
	require.Contains(t, err.Error(), `dist: must be uniform or zipf, got "pareto"`)
}
