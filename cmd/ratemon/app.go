package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/urfave/cli/v2"

	"github.com/ratemon/ratemon/internal/config"
	"github.com/ratemon/ratemon/limiter"
)

// Exit codes.
const (
	exitUsage  = 2 // bad flags or arguments
	exitDenied = 3 // `check`: the request would be refused
)

// streams are the command's standard streams, injected for tests.
type streams struct {
	in       io.Reader
	out, err io.Writer
}

func newApp(in io.Reader, out, errw io.Writer) *cli.App {
	s := streams{in: in, out: out, err: errw}
	return &cli.App{
		Name:  "ratemon",
		Usage: "out-of-band rate limiting for API services: NATS events in, Redis deny flags out",
		Description: "API servers publish one event per request on NATS; ratemon counts them per client over " +
			"sliding windows in Redis and writes deny flags that any server can check with one Redis read.",
		Version:        version,
		Reader:         in,
		Writer:         out,
		ErrWriter:      errw,
		ExitErrHandler: func(*cli.Context, error) {}, // main alone exits
		Commands: []*cli.Command{
			serveCommand(s),
			checkCommand(s),
			topCommand(s),
			listCommand(s),
			manualCommand(s, limiter.OpBlock, "deny a limit key for a while, whatever its counts"),
			manualCommand(s, limiter.OpUnblock, "remove a manual block (automatic denies stay)"),
			manualCommand(s, limiter.OpAllow, "never deny a limit key for a while (it is still counted and visible)"),
			manualCommand(s, limiter.OpUnallow, "remove an allow-list entry"),
			overrideCommand(s),
			publishCommand(s),
			alertsCommand(s),
			benchCommand(s),
			chaosCommand(s),
			configCommand(s),
			versionCommand(s),
		},
	}
}

// configFlag is --config, shared by the commands that read the config file.
func configFlag(required bool) cli.Flag {
	return &cli.StringFlag{
		Name: "config", Aliases: []string{"c"}, EnvVars: []string{"RATEMON_CONFIG"},
		Usage: "YAML config file (see configs/ratemon.yaml)", Required: required,
	}
}

// settingFlags is one flag per scalar setting of the config file, each with
// its RATEMON_* environment variable. They override the file.
func settingFlags() []cli.Flag {
	var fs []cli.Flag
	for _, st := range config.Settings() {
		fs = append(fs, &cli.StringFlag{
			Name: st.Flag, EnvVars: []string{st.Env}, Category: "settings (override the config file)",
			Usage: fmt.Sprintf("%s (default %s)", st.Usage, defaultText(st.Default)),
		})
	}
	return fs
}

func defaultText(d string) string {
	if d == "" {
		return `""`
	}
	return d
}

// loadConfig reads --config (when given), applies the setting flags and
// validates. Without a file it starts from the defaults; needRules says
// whether the command needs rules (serve and check do).
func loadConfig(c *cli.Context, needRules bool) (*config.Config, error) {
	set := map[string]string{}
	for _, st := range config.Settings() {
		if c.IsSet(st.Flag) {
			set[st.Path] = c.String(st.Flag)
		}
	}
	if path := c.String("config"); path != "" {
		// The overrides go in before validation: the file may leave a
		// setting, such as a password, to the environment.
		cfg, err := config.LoadWith(path, set)
		if err != nil {
			return nil, cli.Exit(err.Error(), 1)
		}
		return cfg, nil
	}
	if needRules {
		return nil, cli.Exit("--config (or RATEMON_CONFIG) is required: the rules live in the config file", exitUsage)
	}
	cfg := &config.Config{}
	cfg.SetDefaults()
	// Commands that need no rules check only the connection settings.
	for path, v := range set {
		if err := cfg.Set(path, v); err != nil {
			return nil, cli.Exit(err.Error(), exitUsage)
		}
	}
	if err := errors.Join(cfg.Redis.Validate(), cfg.NATS.Validate()); err != nil {
		return nil, cli.Exit(err.Error(), 1)
	}
	return cfg, nil
}

// newLogger builds the daemon's logger from the log section.
func newLogger(w io.Writer, lc config.LogConfig) *slog.Logger {
	opts := &slog.HandlerOptions{Level: lc.Level.SlogLevel()}
	if lc.Format == config.LogFormat("json") {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
