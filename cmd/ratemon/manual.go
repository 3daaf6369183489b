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

func manualFlags(withDuration bool) []cli.Flag {
	fs := []cli.Flag{configFlag(false)}
	if withDuration {
		fs = append(fs,
			&cli.StringFlag{Name: "for", Required: true, Usage: "how long, like 1h, 30m, 30d or 2w"},
			&cli.StringFlag{Name: "reason", Required: true, Usage: "why, for the people who will read the list"},
			&cli.StringFlag{Name: "author", EnvVars: []string{"RATEMON_AUTHOR"}, Usage: "who (default: user@host)"},
		)
	}
	return append(fs, settingFlags()...)
}

// manualCommand is block, unblock, allow or unallow.
func manualCommand(s streams, op limiter.Op, usage string) *cli.Command {
	withDuration := op == limiter.OpBlock || op == limiter.OpAllow
	return &cli.Command{
		Name:      string(op),
		Usage:     usage,
		ArgsUsage: "KEY  (a limit key, like client=acme or client=acme|route=POST /login)",
		Flags:     manualFlags(withDuration),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return cli.Exit(fmt.Sprintf("%s takes exactly one KEY, like client=acme", op), exitUsage)
			}
			key, err := limiter.ParseKey(c.Args().First())
			if err != nil {
				return cli.Exit(err.Error(), exitUsage)
			}
			req := limiter.ManualRequest{Op: op, Key: key}
			if withDuration {
				if req.For, err = limiter.ParseDuration(c.String("for")); err != nil {
					return cli.Exit("--for: "+err.Error(), exitUsage)
				}
				req.Reason, req.Author = c.String("reason"), c.String("author")
				if req.Author == "" {
					req.Author = defaultAuthor()
				}
			}
			ss, err := openSession(c, true)
			if err != nil {
				return err
			}
			defer ss.close()
			e, dec, err := ss.store.Manual(c.Context, req)
			if err != nil {
				return cli.Exit(err.Error(), 1)
			}
			if dec != nil {
				ss.publish(c.Context, s.err, []limiter.Decision{*dec})
			}
			switch op {
			case limiter.OpBlock, limiter.OpAllow:
				fmt.Fprintf(s.out, "%s %s until %s (%s left), by %s: %s\n", op, e.Key,
					time.UnixMilli(e.Until).UTC().Format(time.RFC3339), limiter.FormatMS(time.Until(time.UnixMilli(e.Until)).Milliseconds()), e.Author, e.Reason)
			default:
				fmt.Fprintf(s.out, "%s %s done\n", op, key)
			}
			return nil
		},
	}
}

func listCommand(s streams) *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "list manual blocks, allow-list entries and the deny flags in force (--shadow: who shadow rules would deny)",
		Flags: append([]cli.Flag{
			configFlag(false),
			&cli.BoolFlag{Name: "shadow", Usage: "list the keys shadow rules would deny now, with their counts"},
			&cli.BoolFlag{Name: "overrides", Usage: "list the runtime limit overrides"},
			&cli.BoolFlag{Name: "json", Usage: "print JSON"},
		}, settingFlags()...),
		Action: func(c *cli.Context) error {
			ss, err := openSession(c, false)
			if err != nil {
				return err
			}
			defer ss.close()
			var v any
			switch {
			case c.Bool("shadow"):
				v, err = ss.store.Shadowed(c.Context, ss.rules)
			case c.Bool("overrides"):
				v, err = ss.store.Overrides(c.Context)
			default:
				v, err = listAll(c, ss)
			}
			if err != nil {
				return cli.Exit(err.Error(), 1)
			}
			if c.Bool("json") {
				enc := json.NewEncoder(s.out)
				enc.SetIndent("", "  ")
				return enc.Encode(v)
			}
			return printList(s.out, v)
		},
	}
}

// lists is what `ratemon list` shows by default.
type lists struct {
	Blocks []limiter.Entry `json:"blocks"`
	Allows []limiter.Entry `json:"allows"`
	Denied []limiter.Flag  `json:"denied"`
}

func listAll(c *cli.Context, ss *session) (lists, error) {
	var l lists
	var err error
	if l.Blocks, err = ss.store.Entries(c.Context, limiter.OpBlock); err != nil {
		return l, err
	}
	if l.Allows, err = ss.store.Entries(c.Context, limiter.OpAllow); err != nil {
		return l, err
	}
	l.Denied, err = ss.store.Flags(c.Context, limiter.FlagDeny)
	return l, err
}

func printList(out io.Writer, v any) error {
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	left := func(until int64) string { return limiter.FormatMS(time.Until(time.UnixMilli(until)).Milliseconds()) }
	switch x := v.(type) {
	case lists:
		fmt.Fprintln(tw, "KIND\tKEY\tLEFT\tAUTHOR/RULE\tREASON")
		for _, e := range x.Allows {
			fmt.Fprintf(tw, "allow\t%s\t%s\t%s\t%s\n", e.Key, left(e.Until), e.Author, e.Reason)
		}
		for _, e := range x.Blocks {
			fmt.Fprintf(tw, "block\t%s\t%s\t%s\t%s\n", e.Key, left(e.Until), e.Author, e.Reason)
		}
		for _, f := range x.Denied {
			who := f.Rule
			if f.Source == "manual" {
				who = f.Author
			}
			fmt.Fprintf(tw, "denied\t%s\t%s\t%s\t%s\n", f.Key, left(f.Until), who, f.Reason)
		}
	case []limiter.ShadowEntry:
		fmt.Fprintln(tw, "KEY\tRULE\tCOUNT/LIMIT\tLEFT")
		for _, e := range x {
			fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%s\n", e.Key, e.Rule, e.Count, e.Limit, left(e.Until))
		}
	case []limiter.Override:
		fmt.Fprintln(tw, "KEY\tRULE\tLIMIT\tFACTOR\tLEFT")
		for _, o := range x {
			l := "-"
			if o.Until > 0 {
				l = left(o.Until)
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%g\t%s\n", o.Key, o.Rule, o.Limit, o.Factor, l)
		}
	}
	return tw.Flush()
}
