package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ratemon/ratemon/alerting"
	"github.com/ratemon/ratemon/internal/daemon"
	"github.com/ratemon/ratemon/internal/keyspace"
)

func alertsCommand(s streams) *cli.Command {
	return &cli.Command{
		Name:  "alerts",
		Usage: "list the active alerts, near or over a limit (what GET /v1/alerts answers), reading Redis directly",
		Flags: append([]cli.Flag{
			configFlag(false),
			&cli.BoolFlag{Name: "json", Usage: `print JSON: {"alerts": [...]}`},
		}, settingFlags()...),
		Action: func(c *cli.Context) error {
			cfg, err := loadConfig(c, false)
			if err != nil {
				return err
			}
			keys, err := keyspace.NewRedis(cfg.Redis.Prefix)
			if err != nil {
				return cli.Exit(err.Error(), 1)
			}
			rdb, err := daemon.NewRedis(cfg.Redis)
			if err != nil {
				return cli.Exit(err.Error(), 1)
			}
			defer rdb.Close()
			v, err := alerting.NewView(alerting.ViewOptions{Redis: rdb, Keys: keys, LinkTemplate: cfg.Alerting.LinkTemplate})
			if err != nil {
				return cli.Exit(err.Error(), 1)
			}
			list, err := v.Active(c.Context)
			if err != nil {
				return cli.Exit(err.Error(), 1)
			}
			if c.Bool("json") {
				enc := json.NewEncoder(s.out)
				enc.SetEscapeHTML(false)
				return enc.Encode(struct {
					Alerts []alerting.Alert `json:"alerts"`
				}{list})
			}
			return printAlerts(s.out, list, time.Now())
		},
	}
}

func printAlerts(out io.Writer, list []alerting.Alert, now time.Time) error {
	if len(list) == 0 {
		_, err := fmt.Fprintln(out, "no active alerts")
		return err
	}
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STATE\tSEVERITY\tRULE\tKEY\tCOUNT/LIMIT\tWINDOW\tSINCE\tFLAG\tFLAG LEFT")
	for _, a := range list {
		left := "-"
		if !a.Flag.Until.IsZero() && a.Flag.Until.After(now) {
			left = a.Flag.Until.Sub(now).Round(time.Second).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d/%d\t%s\t%s ago\t%s\t%s\n", a.State, a.Severity, a.Rule, a.Key, a.Count, a.Limit,
			time.Duration(a.Window), now.Sub(a.Since).Round(time.Second), a.Flag.Kind, left)
	}
	return tw.Flush()
}
