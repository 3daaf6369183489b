package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/user"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
	"github.com/urfave/cli/v2"

	"github.com/ratemon/ratemon/internal/config"
	"github.com/ratemon/ratemon/internal/daemon"
	"github.com/ratemon/ratemon/internal/keyspace"
	"github.com/ratemon/ratemon/limiter"
	"github.com/ratemon/ratemon/pipeline"
)

// session is what the operator commands work with: the config, the rules,
// the store in Redis, and (for changes) NATS to tell inline checkers.
type session struct {
	cfg   *config.Config
	rules *limiter.Ruleset
	store *limiter.Store
	rdb   redis.UniversalClient
	nc    *nats.Conn
}

// openSession reads the config and opens Redis; withNATS also connects to
// NATS, to publish decisions.
func openSession(c *cli.Context, withNATS bool) (*session, error) {
	cfg, err := loadConfig(c, true)
	if err != nil {
		return nil, err
	}
	s := &session{cfg: cfg}
	if s.rules, err = cfg.Ruleset(); err != nil {
		return nil, cli.Exit(err.Error(), 1)
	}
	keys, err := keyspace.NewRedis(cfg.Redis.Prefix)
	if err != nil {
		return nil, cli.Exit(err.Error(), 1)
	}
	if s.rdb, err = daemon.NewRedis(cfg.Redis); err != nil {
		return nil, cli.Exit(err.Error(), 1)
	}
	if s.store, err = limiter.NewStore(limiter.StoreOptions{Client: s.rdb, Keys: keys}); err != nil {
		s.close()
		return nil, cli.Exit(err.Error(), 1)
	}
	if withNATS {
		if s.nc, err = daemon.ConnectNATS(cfg.NATS, "ratemon "+c.Command.Name, false, slog.New(slog.DiscardHandler)); err != nil {
			s.close()
			return nil, cli.Exit(err.Error(), 1)
		}
	}
	return s, nil
}

func (s *session) close() {
	if s.nc != nil {
		_ = s.nc.Drain()
	}
	if s.rdb != nil {
		_ = s.rdb.Close()
	}
}

// publish tells inline checkers about flag changes. The flags in Redis are
// already right, so a failure is a warning, not an error.
func (s *session) publish(ctx context.Context, errw interface{ Write([]byte) (int, error) }, ds []limiter.Decision) {
	if len(ds) == 0 || s.nc == nil {
		return
	}
	subj := mustSubjects(s.cfg).Decisions()
	if err := (pipeline.NATSDecisions{Conn: s.nc, Subject: subj}).PublishDecisions(ctx, ds); err != nil {
		fmt.Fprintf(errw, "warning: the change is in Redis but could not be announced on %s: %v\n", subj, err)
	}
}

func mustSubjects(cfg *config.Config) keyspace.Subjects {
	s, err := keyspace.NewSubjects(cfg.NATS.SubjectPrefix)
	if err != nil {
		return keyspace.Subjects{}
	}
	return s
}

// defaultAuthor names the person running the command: user@host.
func defaultAuthor() string {
	name := os.Getenv("USER")
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	host, _ := os.Hostname()
	return name + "@" + host
}
