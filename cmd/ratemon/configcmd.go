package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/ratemon/ratemon/internal/config"
	"github.com/ratemon/ratemon/limiter"
)

func configCommand(s streams) *cli.Command {
	return &cli.Command{
		Name:  "config",
		Usage: "work with config files",
		Subcommands: []*cli.Command{{
			Name:      "validate",
			Usage:     "check a config file as serve would (with the RATEMON_* variables), reporting every problem with its file, line and field",
			ArgsUsage: "FILE",
			Action: func(c *cli.Context) error {
				if c.NArg() != 1 {
					return cli.Exit("config validate takes exactly one FILE", exitUsage)
				}
				path := c.Args().First()
				// As serve reads it: with the RATEMON_* variables, which may
				// hold what the file leaves out, such as passwords.
				set := map[string]string{}
				for _, st := range config.Settings() {
					if v, ok := os.LookupEnv(st.Env); ok {
						set[st.Path] = v
					}
				}
				cfg, err := config.LoadWith(path, set)
				if err != nil {
					return cli.Exit(err.Error(), 1)
				}
				rs, err := limiter.NewRuleset(cfg.Rules)
				if err != nil {
					return cli.Exit(fmt.Sprintf("%s: %v", path, err), 1)
				}
				_, err = fmt.Fprintf(s.out, "%s: ok (%d rules, %d key shapes)\n", path, len(rs.Rules()), len(rs.Groups()))
				return err
			},
		}},
	}
}
