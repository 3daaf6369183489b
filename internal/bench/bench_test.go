package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/internal/bench"
	"github.com/ratemon/ratemon/internal/config"
	"github.com/ratemon/ratemon/internal/daemon"
	"github.com/ratemon/ratemon/internal/testenv"
)

// issueKeys are the JSON keys the issue promises scripts.
var issueKeys = []string{
	"events_per_s", "seed_exact_per_s", "seed_approx_per_s", "seed_approx_false_denies", "xadd_ceiling_per_s",
	"lag_p50_ms", "lag_p99_ms", "false_denies", "missed_denies", "redis_bytes_per_event", "daemon_rss_bytes",
}

func runDaemon(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	d, err := daemon.New(daemon.Options{Config: cfg, Logger: log, WatchInterval: -1})
	if err != nil {
		return err
	}
	return d.Run(ctx)
}

func baseConfig(redisURL, natsURL string) *config.Config {
	cfg := &config.Config{}
	cfg.SetDefaults()
	cfg.Redis.URL, cfg.NATS.URL = redisURL, natsURL
	cfg.Workers.Block = 50 * time.Millisecond
	return cfg
}

func requireCorrect(t *testing.T, rep *bench.Report) {
	t.Helper()
	for _, r := range rep.Runs {
		require.Empty(t, r.Samples, "differences with the model")
	}
	require.Zero(t, rep.FalseDenies, "false denies")
	require.Zero(t, rep.MissedDenies, "missed denies")
	require.Zero(t, rep.UntilMismatches, "flags with another end")
	require.Zero(t, rep.ModelMismatches, "modelcheck differences")
	require.Zero(t, rep.LagMissing, "tripped keys without a deny decision")
	require.Zero(t, rep.ExtraDenyKeys, "deny decisions the model never trips")
	require.Positive(t, rep.EventsPerS)
	require.Positive(t, rep.Flags, "the run should end with live flags to check")
}

// TestBench_start runs a tiny bench on private servers (--start) with the
// references, and checks the JSON carries every figure of the issue.
func TestBench_start(t *testing.T) {
	b, err := bench.New(bench.Options{
		Config: baseConfig("redis://127.0.0.1:1/0", "nats://127.0.0.1:1"), Start: true,
		Keys: 200, Rate: 10000, Events: 20000, Abusive: 0.01, Limit: 1000, Window: 5 * time.Second,
		InProcess: true, RunDaemon: runDaemon, Runs: 1,
		RefEvents: 3000, RefDuration: 2 * time.Second, RefConns: 16,
	})
	require.NoError(t, err)
	rep, err := b.Run(t.Context())
	require.NoError(t, err)
	requireCorrect(t, rep)
	require.InDelta(t, 20000, rep.Events, 0)
	require.InDelta(t, 2, rep.LagKeys, 0, "the two abusive keys trip, the others stay under the limit")
	require.Positive(t, rep.SeedExactPerS)
	require.Positive(t, rep.SeedApproxPerS)
	require.Positive(t, rep.XAddCeilingPerS)
	require.Positive(t, rep.RedisCPUS)
	require.Equal(t, "private (--start)", rep.Setup.Servers)

	var buf bytes.Buffer
	require.NoError(t, rep.WriteJSON(&buf))
	var got map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &got))
	for _, k := range issueKeys {
		require.Contains(t, got, k)
	}
	buf.Reset()
	require.NoError(t, rep.WriteTable(&buf))
	require.Contains(t, buf.String(), "seed exact")
}

// TestBench_backlogCleansUp drains a Zipf backlog with two replicas on the
// shared Redis and in-process NATS, then checks nothing is left behind.
func TestBench_backlogCleansUp(t *testing.T) {
	n := testenv.StartNATS(t)
	rdb := testenv.Redis(t)
	b, err := bench.New(bench.Options{
		Config: baseConfig("redis://"+testenv.RedisAddr()+"/0", n.URL()),
		Keys:   300, Dist: bench.Zipf, ZipfS: 1.1, Events: 6000, PerMsg: 50, Backlog: true,
		Limit: 100, Window: 30 * time.Second, Replicas: 2, InProcess: true, RunDaemon: runDaemon,
		Runs: 1, SkipReferences: true,
	})
	require.NoError(t, err)
	rep, err := b.Run(t.Context())
	require.NoError(t, err)
	requireCorrect(t, rep)
	require.InDelta(t, 120, rep.Messages, 0)
	require.Zero(t, rep.SeedExactPerS, "references skipped")

	run := rep.Runs[0]
	require.True(t, strings.HasPrefix(run.RedisPrefix, "rmbench-"))
	left, err := rdb.Keys(t.Context(), run.RedisPrefix+":*").Result()
	require.NoError(t, err)
	require.Empty(t, left, "keys left under the run's prefix")
	js, err := jetstream.New(n.Connect(t))
	require.NoError(t, err)
	_, err = js.Stream(t.Context(), run.Stream)
	require.ErrorIs(t, err, jetstream.ErrStreamNotFound)
	_, err = js.Stream(t.Context(), run.Stream+"_DL")
	require.ErrorIs(t, err, jetstream.ErrStreamNotFound)
}

func TestNew_refusesBadOptions(t *testing.T) {
	_, err := bench.New(bench.Options{
		Config: baseConfig("redis://127.0.0.1:6379/0", "nats://127.0.0.1:4222"),
		Keys:   -1, Dist: "pareto", ZipfS: 0.5, Abusive: 1.5, Window: 1500 * time.Microsecond,
	})
	require.Error(t, err)
	for _, want := range []string{
		"keys: must be between 1", `dist: must be uniform or zipf, got "pareto"`, "zipf-s: must be above 1",
		"abusive: must be a fraction", "window: must be a whole number of milliseconds",
		"inprocess: without it, the ratemon binary to start (Exe) is required",
	} {
		require.Contains(t, err.Error(), want)
	}
}
