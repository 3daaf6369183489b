package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/ratemon/ratemon/internal/bench"
	"github.com/ratemon/ratemon/internal/config"
	"github.com/ratemon/ratemon/internal/daemon"
)

// benchReplaces reports whether every bench run replaces the setting at
// path with a fresh value; the command does not offer those flags.
func benchReplaces(path string) bool {
	switch path {
	case "redis.prefix", "nats.stream", "nats.subject_prefix", "nats.consumer",
		"nats.deadletter_stream", "http.addr", "http.admin_token":
		return true
	}
	return false
}

func benchCommand(s streams) *cli.Command {
	return &cli.Command{
		Name:  "bench",
		Usage: "end-to-end benchmark: publish a generated load, let ratemon evaluate it, compare with the per-request approach",
		Description: "Starts ratemon daemons on fresh names, publishes events on NATS, waits until every message is\n" +
			"acknowledged and every key evaluated, then prints events/s end to end, detection lag, Redis and daemon\n" +
			"CPU and memory, and false and missed denies against the reference model; on the same Redis and key\n" +
			"sequence it measures the per-request XADD/XTRIM/XLEN approach (approximate and exact trim) and raw\n" +
			"pipelined XADD. Every run deletes what it created. See docs/BENCHMARKS.md.\n\n" +
			"Examples:\n" +
			"  ratemon bench --start\n" +
			"  ratemon bench --dist zipf --zipf-s 1.1 --json\n" +
			"  ratemon bench --rate 20000 --duration 60s --skip-references",
		Flags: append(benchFlags(), benchSettingFlags()...),
		Action: func(c *cli.Context) error {
			cfg, err := loadConfig(c, false)
			if err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(s.err, &slog.HandlerOptions{Level: slog.LevelInfo}))
			if c.Bool("json") {
				log = slog.New(slog.NewTextHandler(s.err, &slog.HandlerOptions{Level: slog.LevelWarn}))
			}
			quietRedis(log)
			exe, err := os.Executable()
			if err != nil {
				exe = os.Args[0]
			}
			b, err := bench.New(bench.Options{
				Config: cfg, Start: c.Bool("start"),
				Keys: c.Int("keys"), Dist: bench.Distribution(c.String("dist")), ZipfS: c.Float64("zipf-s"),
				Rate: c.Float64("rate"), Duration: c.Duration("duration"), Events: c.Int("events"),
				Abusive: c.Float64("abusive"), AbuseRamp: c.Duration("abuse-ramp"), LagsFile: c.String("lags-file"), PerMsg: c.Int("per-msg"), Backlog: c.Bool("backlog"),
				Replicas: c.Int("replicas"), InProcess: c.Bool("inprocess"), RunDaemon: runDaemon, Exe: exe,
				Limit: c.Int64("limit"), Window: c.Duration("window"),
				Runs: c.Int("runs"), SkipReferences: c.Bool("skip-references"),
				RefEvents: c.Int("ref-events"), RefDuration: c.Duration("ref-duration"), RefConns: c.Int("ref-conns"),
				Seed: c.Uint64("seed"), Logger: log,
			})
			if err != nil {
				return cli.Exit(err.Error(), exitUsage)
			}
			rep, err := b.Run(c.Context)
			if err != nil {
				return cli.Exit("bench: "+err.Error(), 1)
			}
			if c.Bool("json") {
				return rep.WriteJSON(s.out)
			}
			return rep.WriteTable(s.out)
		},
	}
}

// runDaemon runs one replica in this process for --inprocess.
func runDaemon(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	d, err := daemon.New(daemon.Options{Config: cfg, Logger: log, WatchInterval: -1})
	if err != nil {
		return err
	}
	return d.Run(ctx)
}

func benchFlags() []cli.Flag {
	return []cli.Flag{
		configFlag(false),
		&cli.BoolFlag{Name: "start", Usage: "start a private redis-server on a free port and an in-process NATS server instead of using --redis-url and --nats-url"},
		&cli.IntFlag{Name: "keys", Value: bench.DefaultKeys, Usage: "distinct clients (limit keys)"},
		&cli.StringFlag{Name: "dist", Value: string(bench.Uniform), Usage: "how events spread over the keys: uniform or zipf"},
		&cli.Float64Flag{Name: "zipf-s", Value: bench.DefaultZipfS, Usage: "Zipf exponent (> 1) for --dist zipf"},
		&cli.Float64Flag{Name: "rate", Usage: "events per second to publish; 0: as fast as ratemon takes them (the backlog is kept to two ingest batches per replica)"},
		&cli.DurationFlag{Name: "duration", Value: bench.DefaultDuration, Usage: "how long each run publishes"},
		&cli.IntFlag{Name: "events", Usage: "events per run instead of --duration"},
		&cli.Float64Flag{Name: "abusive", Value: 0.01, Usage: fmt.Sprintf("fraction of keys that send %d times the average key's events", bench.AbuseFactor)},
		&cli.DurationFlag{Name: "abuse-ramp", Usage: "start the abusive keys one after another over this first part of the publishing (needs --rate): the detection lag of a running daemon rather than of one just started"},
		&cli.StringFlag{Name: "lags-file", Usage: "write every tripped key's detection lag to this file, a line \"<run> <key> <trip ms> <lag ms>\" each, in trip order"},
		&cli.IntFlag{Name: "per-msg", Value: bench.DefaultPerMsg, Usage: "events per NATS message (NDJSON)"},
		&cli.IntFlag{Name: "replicas", Value: 1, Usage: "daemon replicas"},
		&cli.BoolFlag{Name: "inprocess", Usage: "run the daemons inside the bench process (no daemon CPU and RSS figures) instead of as ratemon serve subprocesses"},
		&cli.BoolFlag{Name: "backlog", Usage: "publish everything first, then start the daemons: measures draining (use a --window longer than the publishing)"},
		&cli.Int64Flag{Name: "limit", Value: bench.DefaultLimit, Usage: "limit of the bench rule (key: [client])"},
		&cli.DurationFlag{Name: "window", Value: bench.DefaultWindow, Usage: "window of the bench rule"},
		&cli.IntFlag{Name: "runs", Value: bench.DefaultRuns, Usage: "runs; figures are medians, false and missed denies the worst run"},
		&cli.BoolFlag{Name: "json", Usage: "print one JSON object instead of the table (progress logs only at warn level)"},
		&cli.BoolFlag{Name: "skip-references", Usage: "do not measure the per-request approach and the XADD ceiling"},
		&cli.IntFlag{Name: "ref-events", Value: bench.DefaultRefEvents, Usage: "events (of the same key sequence) each reference replays"},
		&cli.DurationFlag{Name: "ref-duration", Value: bench.DefaultRefDuration, Usage: "longest time each reference runs"},
		&cli.IntFlag{Name: "ref-conns", Value: bench.DefaultRefConns, Usage: "requests in flight at once in the per-request references"},
		&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "seed of the key sequence (the same in every run)"},
	}
}

// benchSettingFlags are the setting flags the daemons use as they are
// (--redis-url, --nats-url, ingest and worker tuning...).
func benchSettingFlags() []cli.Flag {
	var fs []cli.Flag
	for _, st := range config.Settings() {
		if benchReplaces(st.Path) {
			continue
		}
		fs = append(fs, &cli.StringFlag{
			Name: st.Flag, EnvVars: []string{st.Env}, Category: "settings of the daemons (override the config file)",
			Usage: fmt.Sprintf("%s (default %s)", st.Usage, defaultText(st.Default)),
		})
	}
	return fs
}
