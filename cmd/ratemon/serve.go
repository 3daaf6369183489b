package main

import (
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ratemon/ratemon/internal/config"
	"github.com/ratemon/ratemon/internal/daemon"
	"github.com/ratemon/ratemon/internal/devenv"
)

func serveCommand(s streams) *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "run the daemon: ingest events from NATS, evaluate rules, write deny flags",
		Flags: append([]cli.Flag{
			configFlag(false),
			&cli.BoolFlag{Name: "dev", EnvVars: []string{"RATEMON_DEV"},
				Usage: "start an in-process NATS and a local Redis when none answers at the configured addresses (make run)"},
			&cli.DurationFlag{Name: "reload-interval", EnvVars: []string{"RATEMON_RELOAD_INTERVAL"}, Value: 2 * time.Second,
				Usage: "how often the config file is checked for changed rules (0: only on SIGHUP)"},
		}, settingFlags()...),
		Action: func(c *cli.Context) error {
			cfg, err := loadConfig(c, true)
			if err != nil {
				return err
			}
			log := newLogger(s.err, cfg.Log)
			quietRedis(log)
			if c.Bool("dev") {
				env, err := devenv.Ensure(c.Context, devenv.Options{RedisURL: cfg.Redis.URL, NATSURL: cfg.NATS.URL, Logger: log})
				if err != nil {
					return cli.Exit("dev mode: "+err.Error(), 1)
				}
				defer env.Close()
			}
			var load func() (*config.Config, error)
			if c.String("config") != "" {
				load = func() (*config.Config, error) { return loadConfig(c, true) }
			}
			watch := c.Duration("reload-interval")
			if watch <= 0 {
				watch = -1
			}
			d, err := daemon.New(daemon.Options{Config: cfg, Logger: log, Load: load, WatchInterval: watch})
			if err != nil {
				return cli.Exit(err.Error(), 1)
			}
			// SIGHUP reloads the rules; the daemon itself never touches signals.
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			go func() {
				for {
					select {
					case <-c.Done():
						return
					case <-hup:
						_ = d.Reload() // logged and counted by the daemon
					}
				}
			}()
			log.Info("ratemon starting", "version", version, "redis", config.RedactRedisURL(cfg.Redis.URL),
				"nats", config.RedactNATSURLs(cfg.NATS.URL), "http", cfg.HTTP.Addr)
			if err := d.Run(c.Context); err != nil {
				return cli.Exit(err.Error(), 1)
			}
			log.Info("ratemon stopped")
			return nil
		},
	}
}
