package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ratemon/ratemon/limiter"
)

func topCommand(s streams) *cli.Command {
	return &cli.Command{
		Name:  "top",
		Usage: "live view of the busiest limit keys per rule, refreshed every second (Ctrl-C to quit)",
		Flags: append([]cli.Flag{
			configFlag(false),
			&cli.StringFlag{Name: "rule", Usage: "only this rule (default: every rule)"},
			&cli.IntFlag{Name: "k", Value: 10, Usage: "keys per rule"},
			&cli.DurationFlag{Name: "interval", Value: time.Second, Usage: "refresh interval"},
			&cli.BoolFlag{Name: "once", Usage: "print once and exit (for scripts)"},
			&cli.BoolFlag{Name: "json", Usage: "print JSON (implies --once)"},
		}, settingFlags()...),
		Action: func(c *cli.Context) error {
			ss, err := openSession(c, false)
			if err != nil {
				return err
			}
			defer ss.close()
			names := []string{c.String("rule")}
			if names[0] == "" {
				names = names[:0]
				for _, r := range ss.rules.Rules() {
					names = append(names, r.Name)
				}
			} else if _, ok := ss.rules.Rule(names[0]); !ok {
				return cli.Exit(fmt.Sprintf("--rule: no rule %q", names[0]), exitUsage)
			}
			once := c.Bool("once") || c.Bool("json")
			t := time.NewTicker(max(c.Duration("interval"), 100*time.Millisecond))
			defer t.Stop()
			for {
				var all []limiter.TopEntry
				for _, n := range names {
					es, err := ss.store.Top(c.Context, ss.rules, n, c.Int("k"), ss.cfg.Workers.Shards)
					if err != nil {
						if c.Err() != nil {
							return nil
						}
						return cli.Exit(err.Error(), 1)
					}
					all = append(all, es...)
				}
				if c.Bool("json") {
					if all == nil {
						all = []limiter.TopEntry{}
					}
					return json.NewEncoder(s.out).Encode(all)
				}
				if !once {
					fmt.Fprint(s.out, "\033[H\033[2J") // home and clear: one screen per refresh
					fmt.Fprintf(s.out, "ratemon top  %s  every %v, Ctrl-C to quit\n\n", time.Now().UTC().Format(time.TimeOnly), c.Duration("interval"))
				}
				if err := printTop(s.out, all); err != nil || once {
					return err
				}
				select {
				case <-c.Done():
					return nil
				case <-t.C:
				}
			}
		},
	}
}

func printTop(out io.Writer, es []limiter.TopEntry) error {
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RULE\tKEY\tCOUNT/LIMIT\tSTATE\tFLAG LEFT")
	for _, e := range es {
		fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%s\t%s\n", e.Rule, e.Key, e.Count, e.Limit, e.State, limiter.FormatMS(e.FlagLeftMS))
	}
	return tw.Flush()
}
