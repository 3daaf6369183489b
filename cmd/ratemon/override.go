package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/ratemon/ratemon/internal/httpapi"
	"github.com/ratemon/ratemon/limiter"
)

func overrideCommand(s streams) *cli.Command {
	return &cli.Command{
		Name:      "override",
		Usage:     "change the limits of one limit key at runtime, without a reload",
		ArgsUsage: "KEY",
		Description: "Examples:\n" +
			"  ratemon override client=acme --rule per-client-minute --limit 500\n" +
			"  ratemon override client=acme --factor 2 --for 24h     # every rule of the key\n" +
			"  ratemon override client=acme --tier gold              # factor from the config's tiers\n" +
			"  ratemon override client=acme --clear",
		Flags: append([]cli.Flag{
			configFlag(false),
			&cli.StringFlag{Name: "rule", Usage: "rule to override (default: every rule of the key)"},
			&cli.Int64Flag{Name: "limit", Usage: "absolute limit (needs --rule)"},
			&cli.Float64Flag{Name: "factor", Usage: "multiplier of the configured limits"},
			&cli.StringFlag{Name: "tier", Usage: "a tier of the config (a named factor)"},
			&cli.StringFlag{Name: "for", Usage: "how long (default: until --clear)"},
			&cli.BoolFlag{Name: "clear", Usage: "remove the override of --rule, or all of the key's"},
		}, settingFlags()...),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return cli.Exit("override takes exactly one KEY, like client=acme", exitUsage)
			}
			ss, err := openSession(c, true)
			if err != nil {
				return err
			}
			defer ss.close()
			if c.Bool("clear") {
				key, err := limiter.ParseKey(c.Args().First())
				if err != nil {
					return cli.Exit(err.Error(), exitUsage)
				}
				ds, err := ss.store.ClearOverride(c.Context, ss.rules, key, c.String("rule"))
				if err != nil {
					return cli.Exit(err.Error(), 1)
				}
				ss.publish(c.Context, s.err, ds)
				fmt.Fprintf(s.out, "override of %s removed\n", key)
				return nil
			}
			o, d, err := httpapi.OverrideFrom(c.Args().First(), c.String("rule"), c.Int64("limit"), c.Float64("factor"), c.String("tier"), c.String("for"), ss.cfg.Tiers)
			if err != nil {
				return cli.Exit(err.Error(), exitUsage)
			}
			ds, err := ss.store.SetOverride(c.Context, ss.rules, o, d)
			if err != nil {
				return cli.Exit(err.Error(), 1)
			}
			ss.publish(c.Context, s.err, ds)
			what := fmt.Sprintf("limit %d", o.Limit)
			if o.Factor != 0 {
				what = fmt.Sprintf("limits x%g", o.Factor)
			}
			fmt.Fprintf(s.out, "override %s rule %s: %s (%d flag changes)\n", o.Key, o.Rule, what, len(ds))
			return nil
		},
	}
}
