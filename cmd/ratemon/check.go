package main

import (
	"encoding/json"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/ratemon/ratemon/internal/daemon"
	"github.com/ratemon/ratemon/internal/keyspace"
	"github.com/ratemon/ratemon/limiter"
	"github.com/ratemon/ratemon/pipeline/event"
)

func checkCommand(s streams) *cli.Command {
	return &cli.Command{
		Name:  "check",
		Usage: "tell whether a request would be refused now, with each matching rule's count (the answer of GET /v1/check)",
		Description: "Reads the counts and flags from Redis, computing limit keys from the request as the daemon does.\n" +
			"Exit status: 0 allowed, 3 denied, 1 error.",
		Flags: append([]cli.Flag{
			configFlag(false),
			&cli.StringFlag{Name: "client", Usage: "client id (API key, user)"},
			&cli.StringFlag{Name: "ip", Usage: "client IP"},
			&cli.StringFlag{Name: "route", Usage: `route, e.g. "GET /stocks/{symbol}/history"`},
			&cli.StringFlag{Name: "service", Usage: "service name"},
			&cli.StringFlag{Name: "method", Usage: "HTTP method"},
		}, settingFlags()...),
		Action: func(c *cli.Context) error {
			e := event.Event{
				Client: c.String("client"), IP: c.String("ip"), Route: c.String("route"),
				Service: c.String("service"), Method: strings.ToUpper(c.String("method")), Weight: 1,
			}
			if e.Client == "" && e.IP == "" {
				return cli.Exit("check needs --client or --ip", exitUsage)
			}
			cfg, err := loadConfig(c, true)
			if err != nil {
				return err
			}
			rs, err := cfg.Ruleset()
			if err != nil {
				return cli.Exit(err.Error(), 1)
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
			st, err := limiter.NewStore(limiter.StoreOptions{Client: rdb, Keys: keys})
			if err != nil {
				return cli.Exit(err.Error(), 1)
			}
			res, err := st.Check(c.Context, rs, e)
			if err != nil {
				return cli.Exit(err.Error(), 1)
			}
			enc := json.NewEncoder(s.out)
			enc.SetEscapeHTML(false)
			enc.SetIndent("", "  ")
			if err := enc.Encode(res); err != nil {
				return err
			}
			if !res.Allowed {
				return cli.Exit("", exitDenied)
			}
			return nil
		},
	}
}
