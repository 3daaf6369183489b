package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/ratemon/ratemon/internal/chaos"
)

func chaosCommand(s streams) *cli.Command {
	return &cli.Command{
		Name:  "chaos",
		Usage: "fault checker: run daemons as processes, inject faults, compare every count and flag with the reference model",
		Description: "Runs `ratemon serve` subprocesses of this binary against a private redis-server and an in-process NATS\n" +
			"server, publishes a known trace while it injects one fault per scenario (daemon SIGKILLs, a replica lost,\n" +
			"Redis restarted empty, Redis paused, NATS restarted, a slow Redis), and requires every count and flag to\n" +
			"equal the reference model's. Long mode uses the full fault durations and adds a soak at 80% of the\n" +
			"measured maximum rate. Exits 1 when a check fails. See docs/RELIABILITY.md.\n\n" +
			"Examples:\n" +
			"  ratemon chaos\n" +
			"  ratemon chaos --mode long --keep\n" +
			"  ratemon chaos --scenario redis-pause --scenario nats-restart",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "mode", Value: string(chaos.Short), Usage: "short (faults shortened, ~2 min) or long (full faults, then the soak)"},
			&cli.StringSliceFlag{Name: "scenario", Usage: "run only these scenarios: " + strings.Join(chaos.Names(), ", ")},
			&cli.DurationFlag{Name: "soak-duration", Usage: "how long the soak publishes (default 10m)"},
			&cli.Float64Flag{Name: "soak-ratio", Usage: "fraction of the measured maximum rate the soak publishes at (default 0.8)"},
			&cli.StringFlag{Name: "redis-server", Value: "redis-server", Usage: "the redis-server binary to run"},
			&cli.StringFlag{Name: "dir", Usage: "keep the servers' stores, the daemons' configs and logs here (default: a temporary directory)"},
			&cli.BoolFlag{Name: "keep", Usage: "keep the directory after the run"},
			&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "seed of the traces"},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object instead of the table"},
		},
		Action: func(c *cli.Context) error {
			if err := chaos.Mode(c.String("mode")).Validate(); err != nil {
				return cli.Exit("--mode: "+err.Error(), exitUsage)
			}
			for _, sc := range c.StringSlice("scenario") {
				if !slices.Contains(chaos.Names(), sc) {
					return cli.Exit(fmt.Sprintf("--scenario: unknown scenario %q, want one of %s", sc, strings.Join(chaos.Names(), ", ")), exitUsage)
				}
			}
			log := slog.New(slog.NewTextHandler(s.err, &slog.HandlerOptions{Level: slog.LevelInfo}))
			quietRedis(log)
			exe, err := os.Executable()
			if err != nil {
				return cli.Exit("chaos: cannot find this binary: "+err.Error(), 1)
			}
			dir := c.String("dir")
			rep, err := chaos.Run(c.Context, chaos.Options{
				Exe: exe, RedisServer: c.String("redis-server"), Mode: chaos.Mode(c.String("mode")),
				Scenarios: c.StringSlice("scenario"), Dir: dir, Keep: c.Bool("keep") || dir != "",
				Seed: c.Uint64("seed"), SoakDuration: c.Duration("soak-duration"), SoakRatio: c.Float64("soak-ratio"),
				Logger: log,
			})
			if rep != nil {
				if c.Bool("json") {
					enc := json.NewEncoder(s.out)
					enc.SetIndent("", "  ")
					_ = enc.Encode(rep)
				} else {
					_ = rep.WriteTable(s.out)
				}
			}
			if err != nil {
				return cli.Exit(err.Error(), 1)
			}
			if !rep.Pass() {
				return cli.Exit("chaos: some checks failed", 1)
			}
			return nil
		},
	}
}
