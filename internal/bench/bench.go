package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/ratemon/ratemon/internal/config"
	"github.com/ratemon/ratemon/limiter"
)

// RuleName is the name of the single rule every run uses.
const RuleName = "bench"

// Bench runs the benchmark. Build it with New; Run may be called once.
type Bench struct {
	opts Options
	log  *slog.Logger

	// Set by Run: the bench's own connections (never the daemons').
	redisOpts *redis.Options
	rdb       *redis.Client
	nc        *nats.Conn
	js        jetstream.JetStream
}

// New checks the options and the daemon configuration they lead to; it
// starts and connects nothing.
func New(opts Options) (*Bench, error) {
	opts.setDefaults()
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	b := &Bench{opts: opts, log: opts.Logger.With("component", "bench")}
	if _, err := b.daemonConfig(newNames(), b.endpoints(nil)); err != nil {
		return nil, err
	}
	return b, nil
}

// Run starts the private servers when asked, runs the benchmark
// Options.Runs times and returns the report. Everything it created is
// deleted, also when it fails or ctx is cancelled.
func (b *Bench) Run(ctx context.Context) (*Report, error) {
	o := &b.opts
	ep, servers := b.endpoints(nil), "configured"
	if o.Start {
		b.log.Info("starting a private redis-server and an in-process NATS server")
		srv, err := startServers(ctx, o.RedisServer)
		if err != nil {
			return nil, err
		}
		defer srv.close()
		ep, servers = b.endpoints(srv), "private (--start)"
	}
	if ep.redis.Cluster() {
		return nil, errors.New("redis.url: the bench needs a single redis://, rediss:// or unix:// server, not a cluster")
	}
	ropts, err := ep.redis.Options()
	if err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	}
	b.redisOpts = ropts
	b.rdb = redis.NewClient(ropts)
	defer b.rdb.Close()
	if err := b.rdb.Ping(ctx).Err(); err != nil {
		return nil, fmt.Errorf("redis %s: %w", ropts.Addr, err)
	}
	nopts, err := ep.nats.Options()
	if err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	if b.nc, err = nats.Connect(ep.nats.URL, append(nopts, nats.Name("ratemon bench"))...); err != nil {
		return nil, fmt.Errorf("connect nats %s: %w", config.RedactNATSURLs(ep.nats.URL), err)
	}
	defer b.nc.Close()
	if b.js, err = jetstream.New(b.nc); err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	rep := &Report{Setup: b.setup(ctx, servers)}
	if o.LagsFile != "" {
		if err := os.WriteFile(o.LagsFile, nil, 0o644); err != nil {
			return nil, fmt.Errorf("lags file: %w", err)
		}
	}
	for i := range o.Runs {
		b.log.Info("run", "run", i+1, "of", o.Runs)
		rr, err := b.runOnce(ctx, ep)
		if err != nil {
			return nil, fmt.Errorf("run %d: %w", i+1, err)
		}
		rep.Runs = append(rep.Runs, rr)
	}
	rep.Result = aggregate(rep.Runs)
	return rep, nil
}

func (b *Bench) setup(ctx context.Context, servers string) Setup {
	o := &b.opts
	s := Setup{
		Date: time.Now().UTC().Format(time.RFC3339), NProc: runtime.NumCPU(), GoVersion: runtime.Version(),
		RedisVersion: redisVersion(ctx, b.rdb), Servers: servers,
		Keys: o.Keys, Dist: string(o.Dist), Rate: o.Rate, Abusive: o.Abusive, PerMsg: o.PerMsg,
		Replicas: o.Replicas, InProcess: o.InProcess, Backlog: o.Backlog, Limit: o.Limit,
		WindowMS: o.Window.Milliseconds(), Runs: o.Runs, References: !o.SkipReferences, Seed: o.Seed,
	}
	if o.Dist == Zipf {
		s.ZipfS = o.ZipfS
	}
	if o.AbuseRamp > 0 {
		s.AbuseRamp = o.AbuseRamp.String()
	}
	if o.Events > 0 {
		s.EventsPerRun = o.Events
	} else {
		s.Duration = o.Duration.String()
	}
	if !o.SkipReferences {
		s.RefEvents = o.RefEvents
	}
	return s
}

// names are the fresh names of one run.
type names struct {
	prefix     string // redis key prefix
	subjects   string // nats subject prefix
	stream     string
	deadletter string
	consumer   string
}

func newNames() names {
	var r [3]byte
	_, _ = rand.Read(r[:])
	id := time.Now().UTC().Format("150405") + "_" + hex.EncodeToString(r[:])
	return names{
		prefix:     "rmbench-" + id,
		subjects:   "rmbench." + id,
		stream:     "RMBENCH_" + id,
		deadletter: "RMBENCH_" + id + "_DL",
		consumer:   "rmbench",
	}
}

// endpoints are the servers a run uses with their credentials and TLS:
// the configured ones, or the private ones of Options.Start, which need
// neither.
type endpoints struct {
	redis config.RedisConfig
	nats  config.NATSConfig
}

// endpoints returns the configured servers, or srv when it is not nil.
func (b *Bench) endpoints(srv *servers) endpoints {
	e := endpoints{redis: b.opts.Config.Redis, nats: b.opts.Config.NATS}
	if srv != nil {
		e.redis.URL, e.redis.Addrs = srv.redisURL, nil
		e.redis.Username, e.redis.Password, e.redis.TLS = "", "", config.TLSConfig{}
		e.nats.URL = srv.natsURL
		e.nats.User, e.nats.Password, e.nats.Token = "", "", ""
		e.nats.NkeyFile, e.nats.CredsFile, e.nats.TLS = "", "", config.TLSConfig{}
	}
	return e
}

// daemonConfig is the configuration of the run's daemons: the base
// settings with the run's names, the servers, and the bench rule.
func (b *Bench) daemonConfig(n names, ep endpoints) (*config.Config, error) {
	o := &b.opts
	c := *o.Config
	c.Redis, c.NATS = ep.redis, ep.nats
	c.Redis.Prefix = n.prefix
	c.NATS.Stream, c.NATS.SubjectPrefix = n.stream, n.subjects
	c.NATS.Consumer, c.NATS.DeadLetterStream = n.consumer, n.deadletter
	c.HTTP.AdminToken = ""
	c.Include, c.Tiers = nil, nil
	c.Rules = []limiter.Rule{{
		Name: RuleName, Key: []limiter.Field{limiter.FieldClient},
		Limit: o.Limit, Window: o.Window, Action: limiter.ActionDeny,
	}}
	if c.Log.Level == "" || c.Log.Level == config.LogInfo {
		c.Log.Level = config.LogWarn // the daemons' start and stop lines are noise here
	}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("bench: daemon config: %w", err)
	}
	return &c, nil
}

// cleanup deletes what a run created in Redis and NATS. It runs after the
// daemons stopped, under its own deadline, even when ctx is cancelled.
func (b *Bench) cleanup(ctx context.Context, n names) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	var errs []error
	if _, err := deletePrefix(ctx, b.rdb, n.prefix); err != nil {
		errs = append(errs, err)
	}
	for _, s := range []string{n.stream, n.deadletter} {
		if err := b.js.DeleteStream(ctx, s); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			errs = append(errs, fmt.Errorf("delete stream %s: %w", s, err))
		}
	}
	return errors.Join(errs...)
}
