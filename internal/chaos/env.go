package chaos

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/ratemon/ratemon/internal/config"
	"github.com/ratemon/ratemon/internal/keyspace"
	"github.com/ratemon/ratemon/limiter"
	"github.com/ratemon/ratemon/pipeline"
)

// Settings of every daemon the checker runs. They bound the recovery lag:
// a SIGKILLed replica's unacknowledged messages come back after AckWait,
// its pending work notices are claimed after ClaimIdle.
const (
	ackWait   = 5 * time.Second
	claimIdle = 5 * time.Second
	consumer  = "rmchaos"
)

// RecoveryLag is the longest the checker lets the flags take to equal the
// model's, from the moment the fault has cleared and the last event is
// stored in JetStream: the daemons' nats.ack_wait plus workers.claim_idle
// plus 10 s (ingestion backoff, at most 5 s, and the drain).
const RecoveryLag = ackWait + claimIdle + 10*time.Second

// env is one scenario's world: its servers, the daemons' configuration,
// the checker's own connections (straight to Redis, never through the
// proxy), and the replicas.
type env struct {
	log      *slog.Logger
	dir      string
	redis    *redisServer
	nats     *natsServer
	proxy    *proxy // nil unless the scenario slows Redis down
	cfg      *config.Config
	keys     keyspace.Redis
	subjects keyspace.Subjects
	rdb      *redis.Client
	nc       *nats.Conn
	js       jetstream.JetStream
	cons     jetstream.Consumer
	daemons  []*daemon
}

// envOptions shapes an env.
type envOptions struct {
	exe, redisServer, dir string
	name                  string // short, for the prefix and stream names
	rules                 []limiter.Rule
	replicas              int
	proxy                 bool
	tune                  func(*config.Config) // last changes to the daemons' config
	log                   *slog.Logger
}

// newEnv starts the servers, creates the events stream and the durable
// consumer, and writes the daemons' configs; it starts no daemon. On error
// it closes what it started.
func newEnv(ctx context.Context, o envOptions) (e *env, err error) {
	e = &env{log: o.log, dir: o.dir}
	defer func() {
		if err != nil {
			e.close()
			e = nil
		}
	}()
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return e, fmt.Errorf("scenario directory: %w", err)
	}
	if e.redis, err = startRedis(ctx, o.redisServer, o.dir); err != nil {
		return e, err
	}
	if e.nats, err = startNATS(filepath.Join(o.dir, "jetstream")); err != nil {
		return e, err
	}
	redisAddr := e.redis.addr
	if o.proxy {
		if e.proxy, err = startProxy(e.redis.addr, o.log); err != nil {
			return e, err
		}
		redisAddr = e.proxy.addr()
	}
	if e.cfg, err = daemonConfig(o, redisAddr, e.nats.url()); err != nil {
		return e, err
	}
	e.keys, _ = keyspace.NewRedis(e.cfg.Redis.Prefix)
	e.subjects, _ = keyspace.NewSubjects(e.cfg.NATS.SubjectPrefix)
	e.rdb = redis.NewClient(&redis.Options{Addr: e.redis.addr})
	e.nc, err = nats.Connect(e.nats.url(), nats.Name("ratemon chaos"), nats.MaxReconnects(-1),
		nats.ReconnectWait(50*time.Millisecond), nats.ReconnectBufSize(-1))
	if err != nil {
		return e, fmt.Errorf("connect nats: %w", err)
	}
	if e.js, err = jetstream.New(e.nc); err != nil {
		return e, fmt.Errorf("jetstream: %w", err)
	}
	// The checker creates the stream and the consumer, so that it can watch
	// the consumer from the first message; the daemons find them.
	spec := pipeline.StreamSpec{
		Stream: e.cfg.NATS.Stream, Subject: e.subjects.EventsAll(), Retention: e.cfg.NATS.Retention,
		Replicas: 1, Consumer: e.cfg.NATS.Consumer, AckWait: e.cfg.NATS.AckWait,
		MaxAckPending: e.cfg.NATS.MaxAckPending, StartBack: time.Hour,
	}
	stream, err := pipeline.EnsureStream(ctx, e.js, spec)
	if err != nil {
		return e, err
	}
	if e.cons, err = pipeline.EnsureConsumer(ctx, stream, spec); err != nil {
		return e, err
	}
	for i := range o.replicas {
		d, err := newDaemon(o.exe, o.dir, i, e.cfg)
		if err != nil {
			return e, err
		}
		e.daemons = append(e.daemons, d)
	}
	return e, nil
}

// daemonConfig is the replicas' configuration (each gets its own HTTP
// port when its file is written).
func daemonConfig(o envOptions, redisAddr, natsURL string) (*config.Config, error) {
	c := &config.Config{Rules: o.rules}
	c.NATS.AckWait = ackWait // before the defaults, which follow it
	c.SetDefaults()
	c.Redis.URL = "redis://" + redisAddr + "/0"
	c.Redis.Prefix = "rmchaos-" + o.name
	c.NATS.URL = natsURL
	c.NATS.Stream = "RMCHAOS_" + o.name
	c.NATS.DeadLetterStream = "RMCHAOS_" + o.name + "_DL"
	c.NATS.SubjectPrefix = "rmchaos." + o.name
	c.NATS.Consumer = consumer
	c.NATS.AckWait = ackWait
	c.Ingest.BatchSize = 20
	c.Workers.Shards = 4
	c.Workers.Block = 100 * time.Millisecond
	c.Workers.ClaimIdle = claimIdle
	if o.tune != nil {
		o.tune(c)
	}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("daemon config: %w", err)
	}
	return c, nil
}

// startDaemons starts every replica and waits until each is ready.
func (e *env) startDaemons(ctx context.Context) error {
	for _, d := range e.daemons {
		if err := d.proc.start(); err != nil {
			return err
		}
	}
	for _, d := range e.daemons {
		if err := d.waitReady(ctx, 30*time.Second); err != nil {
			return err
		}
	}
	return nil
}

// stopDaemons stops every running replica with SIGTERM, all at once; each
// must exit 0.
func (e *env) stopDaemons() error {
	errs := make([]error, len(e.daemons))
	var wg sync.WaitGroup
	for i, d := range e.daemons {
		wg.Go(func() { errs[i] = d.proc.stop(30 * time.Second) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// unexpectedExits lists every exit of a replica the checker did not cause.
func (e *env) unexpectedExits() []string {
	var out []string
	for _, d := range e.daemons {
		out = append(out, d.proc.unexpectedExits()...)
	}
	return out
}

// close stops everything; it is safe on a partly built env.
func (e *env) close() {
	for _, d := range e.daemons {
		_ = d.proc.kill()
	}
	if e.nc != nil {
		e.nc.Close()
	}
	if e.rdb != nil {
		_ = e.rdb.Close()
	}
	if e.proxy != nil {
		e.proxy.close()
	}
	if e.nats != nil {
		e.nats.shutdown()
	}
	if e.redis != nil {
		e.redis.close()
	}
}
