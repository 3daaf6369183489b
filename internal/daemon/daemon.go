package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/ratemon/ratemon/internal/backoff"
	"github.com/ratemon/ratemon/internal/config"
	"github.com/ratemon/ratemon/internal/httpapi"
	"github.com/ratemon/ratemon/internal/keyspace"
	"github.com/ratemon/ratemon/limiter"
	"github.com/ratemon/ratemon/pipeline"
)

// Options configures a Daemon. Only Config is required.
type Options struct {
	Config   *config.Config // validated configuration
	Logger   *slog.Logger
	Registry *prometheus.Registry // default: a new registry with the Go and process collectors
	Clock    limiter.Clock        // default: the wall clock
	Listener net.Listener         // default: listen on Config.HTTP.Addr
	// Consumer names this replica in the workers' consumer group
	// (default: host-pid-random).
	Consumer string
	// ShutdownTimeout bounds the whole shutdown (default 15s).
	ShutdownTimeout time.Duration
	// Load reads the configuration again, for Reload and the file watch;
	// nil disables reloading.
	Load func() (*config.Config, error)
	// WatchInterval is how often the configuration is read again to see
	// whether its rules changed (default 2s; negative disables the watch).
	WatchInterval time.Duration
}

// Daemon is one ratemon replica.
type Daemon struct {
	opts     Options
	cfg      *config.Config
	log      *slog.Logger
	reg      *prometheus.Registry
	keys     keyspace.Redis
	subjects keyspace.Subjects
	rules    atomic.Pointer[limiter.Ruleset]
	rdb      redis.UniversalClient
	store    *limiter.Store
	metrics  *pipeline.Metrics
	health   *health
	api      *httpapi.API
	pub      *decisions
	reloadM  *reloadMetrics
	flags    *flagStats
	alerts   alertParts // alerting.go

	addrMu sync.Mutex
	addr   string
	ready  chan struct{} // closed once the HTTP server listens
}

// New checks the options and builds the components; it starts nothing and
// opens no connection.
func New(opts Options) (*Daemon, error) {
	if opts.Config == nil {
		return nil, errors.New("daemon: config is required")
	}
	cfg := opts.Config
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("daemon: %w", err)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Clock == nil {
		opts.Clock = limiter.WallClock{}
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
		opts.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	if opts.Consumer == "" {
		opts.Consumer = consumerName()
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 15 * time.Second
	}
	if opts.WatchInterval == 0 {
		opts.WatchInterval = 2 * time.Second
	}
	d := &Daemon{opts: opts, cfg: cfg, log: opts.Logger, reg: opts.Registry, health: newHealth(opts.Registry), ready: make(chan struct{})}
	rs, err := cfg.Ruleset()
	if err != nil {
		return nil, fmt.Errorf("daemon: rules: %w", err)
	}
	d.rules.Store(rs)
	d.reloadM = newReloadMetrics(d.reg)
	d.flags = newFlagStats(d.reg)
	d.reloadM.rules.Set(float64(len(rs.Rules())))
	d.reloadM.last.SetToCurrentTime()
	if d.keys, err = keyspace.NewRedis(cfg.Redis.Prefix); err != nil {
		return nil, fmt.Errorf("daemon: redis.prefix: %w", err)
	}
	if d.subjects, err = keyspace.NewSubjects(cfg.NATS.SubjectPrefix); err != nil {
		return nil, fmt.Errorf("daemon: nats.subject_prefix: %w", err)
	}
	if d.rdb, err = NewRedis(cfg.Redis); err != nil {
		return nil, fmt.Errorf("daemon: %w", err)
	}
	if d.store, err = limiter.NewStore(limiter.StoreOptions{Client: d.rdb, Keys: d.keys, Clock: opts.Clock}); err != nil {
		return nil, fmt.Errorf("daemon: %w", err)
	}
	d.metrics = pipeline.NewMetrics(d.reg)
	d.precreate(rs)
	d.pub = &decisions{subject: d.subjects.Decisions()}
	if err := d.initAlerting(); err != nil {
		return nil, fmt.Errorf("daemon: %w", err)
	}
	d.api, err = httpapi.New(httpapi.Options{
		Checker: d.store, Rules: d.Rules, Health: d.health, Gatherer: d.reg, Logger: d.log, Alerts: d.alerts.a,
		Admin: &httpapi.Admin{
			Store: d.store, Publisher: d.pub, Token: cfg.HTTP.AdminToken.Reveal(),
			Shards: cfg.Workers.Shards, Tiers: cfg.Tiers,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("daemon: %w", err)
	}
	return d, nil
}

// Rules returns the rules in force.
func (d *Daemon) Rules() *limiter.Ruleset { return d.rules.Load() }

// Ready reports whether the daemon can do its job and why not.
func (d *Daemon) Ready() (bool, []string) { return d.health.Ready() }

// Addr waits until the HTTP server listens and returns its address.
func (d *Daemon) Addr(ctx context.Context) (string, error) {
	select {
	case <-d.ready:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	d.addrMu.Lock()
	defer d.addrMu.Unlock()
	return d.addr, nil
}

// Run runs the daemon until ctx is cancelled, then shuts down in order and
// returns nil; it returns an error only when it cannot start at all.
func (d *Daemon) Run(ctx context.Context) error {
	cfg := d.cfg
	ln := d.opts.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", cfg.HTTP.Addr); err != nil {
			return fmt.Errorf("listen on http.addr %s: %w", cfg.HTTP.Addr, err)
		}
	}
	d.addrMu.Lock()
	d.addr = ln.Addr().String()
	d.addrMu.Unlock()
	srv := &http.Server{Handler: d.api.Handler(), ReadHeaderTimeout: 5 * time.Second}
	srvErr := make(chan error, 1)
	go func() { srvErr <- srv.Serve(ln) }()
	close(d.ready)
	d.log.Info("http listening", "component", "http", "addr", d.addr)

	nc, err := ConnectNATS(cfg.NATS, "ratemon "+d.opts.Consumer, true, d.log.With("component", "nats"))
	if err != nil {
		d.shutdownHTTP(srv)
		return err
	}
	d.pub.conn.Store(nc)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go d.health.probe(runCtx, d.rdb, nc, time.Second)
	go d.watch(runCtx, d.opts.WatchInterval)
	go d.flags.run(runCtx, d.store, d.Rules, 10*time.Second)

	err = d.runPipeline(runCtx, nc)
	cancel()
	d.log.Info("stopping: draining nats, closing redis")
	if derr := nc.Drain(); derr != nil {
		nc.Close()
	}
	_ = d.rdb.Close()
	d.shutdownHTTP(srv)
	select {
	case e := <-srvErr:
		if e != nil && !errors.Is(e, http.ErrServerClosed) {
			return fmt.Errorf("http server: %w", e)
		}
	default:
	}
	return err
}

func (d *Daemon) shutdownHTTP(srv *http.Server) {
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
}

// runPipeline sets up the streams (retrying until it works or ctx ends) and
// runs ingestion and the workers until ctx is cancelled.
func (d *Daemon) runPipeline(ctx context.Context, nc *nats.Conn) error {
	cfg := d.cfg
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	rs := d.Rules()
	spec := pipeline.StreamSpec{
		Stream:        cfg.NATS.Stream,
		Subject:       d.subjects.EventsAll(),
		Retention:     cfg.NATS.Retention,
		Replicas:      cfg.NATS.Replicas,
		Consumer:      cfg.NATS.Consumer,
		AckWait:       cfg.NATS.AckWait,
		MaxAckPending: cfg.NATS.MaxAckPending,
		StartBack:     time.Duration(rs.MaxRetention()) * time.Millisecond,
	}
	var cons jetstream.Consumer
	back := backoff.New(250*time.Millisecond, 5*time.Second)
	for {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		cons, err = d.setup(sctx, js, spec)
		cancel()
		if err == nil {
			break
		}
		wait := back.Next()
		d.health.set("setup", err.Error())
		d.log.Warn("setup failed, retrying", "component", "setup", "err", err, "retry_in", wait.String())
		if backoff.Sleep(ctx, wait) != nil {
			return nil
		}
	}
	d.health.set("setup", "")
	rec := newRecovery(d, js)
	go rec.run(ctx)
	d.log.Info("ready", "component", "setup", "stream", spec.Stream, "consumer", spec.Consumer, "rules", len(rs.Rules()))

	ingest, err := pipeline.NewIngest(pipeline.IngestOptions{
		Config: cfg.Ingest, Consumer: cons, Conn: nc, Subjects: d.subjects, Store: d.store, Redis: d.rdb,
		Rules: d.Rules, Shards: cfg.Workers.Shards, Logger: d.log, Metrics: d.metrics, Shutdown: d.opts.ShutdownTimeout,
		Decisions: d.pub, Clock: d.opts.Clock, Gate: rec.wait, Observer: d.alerts.a,
	})
	if err != nil {
		return err
	}
	worker, err := pipeline.NewWorker(pipeline.WorkerOptions{
		Config: cfg.Workers, Redis: d.rdb, Store: d.store, Rules: d.Rules,
		Decisions: d.pub,
		Observer:  d.alerts.a,
		Consumer:  d.opts.Consumer, Clock: d.opts.Clock, Logger: d.log, Metrics: d.metrics, Shutdown: d.opts.ShutdownTimeout,
	})
	if err != nil {
		return err
	}
	// Ingest stops first (ctx), finishing what it holds; the workers get a
	// moment more to evaluate the last notices.
	wctx, wcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer wcancel()
	g := new(errgroup.Group)
	g.Go(func() error {
		err := ingest.Run(ctx)
		time.AfterFunc(time.Second, wcancel)
		return err
	})
	// Alerting stops after the workers, flushing its sinks (bounded).
	actx, acancel := context.WithCancel(context.WithoutCancel(ctx))
	defer acancel()
	g.Go(func() error { defer acancel(); return worker.Run(wctx) })
	g.Go(func() error { return d.alerts.run(actx) })
	return g.Wait()
}

func (d *Daemon) setup(ctx context.Context, js jetstream.JetStream, spec pipeline.StreamSpec) (jetstream.Consumer, error) {
	s, err := pipeline.EnsureStream(ctx, js, spec)
	if err != nil {
		return nil, err
	}
	cons, err := pipeline.EnsureConsumer(ctx, s, spec)
	if err != nil {
		return nil, err
	}
	if err := pipeline.EnsureDeadLetterStream(ctx, js, d.cfg.NATS.DeadLetterStream, d.subjects.DeadLetter(), d.cfg.NATS.DeadLetterRetention, d.cfg.NATS.Replicas); err != nil {
		return nil, err
	}
	if err := d.store.Load(ctx); err != nil {
		return nil, err
	}
	// FCALL (Redis 7 Functions) saves Redis about an eighth of every
	// ingestion call; EVALSHA gives the same results (docs/ARCHITECTURE.md).
	d.log.Info("redis scripts loaded", "component", "redis", "functions", d.store.Functions())
	return cons, nil
}

func consumerName() string {
	host, _ := os.Hostname()
	var b [3]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}
