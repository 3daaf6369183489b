package alerting

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/ratemon/ratemon/internal/keyspace"
	"github.com/ratemon/ratemon/limiter"
)

// Options wires an Alerting.
type Options struct {
	Config   Config                  // the alerting section; New applies defaults and validates it
	Redis    redis.UniversalClient   // required
	Keys     keyspace.Redis          // required
	Rules    func() *limiter.Ruleset // required
	Subjects keyspace.Subjects       // nats sinks publish on Subjects.Alerts()
	NATS     Publisher               // required by nats sinks
	Replica  string                  // this replica's name, unique among replicas (required)
	// Getenv reads the secrets named by secret_env (default os.Getenv).
	Getenv     func(string) string
	HTTPClient *http.Client // default: a client without a global timeout (each attempt has one)
	Clock      limiter.Clock
	Logger     *slog.Logger
	Metrics    *Metrics
	// FlushTimeout bounds the delivery of what is left at shutdown (default 5s).
	FlushTimeout time.Duration
	// HandoffGrace is how long a notification may wait for its hand-off to
	// the outbox before any replica hands it off again (default 5s).
	HandoffGrace time.Duration
}

// Alerting turns evaluations into alerts with a lifecycle, deduplicated
// across replicas through Redis, and delivers them to the configured sinks.
// Observe never blocks; Run does the work.
type Alerting struct {
	opts    Options
	cfg     Config
	log     *slog.Logger
	m       *Metrics
	rdb     redis.UniversalClient
	keys    keyspace.Redis
	scripts *scripts
	view    *View
	sinks   []*sinkRunner

	obs              chan observation
	tracked, dropped prometheus.Counter                   // Observations{result}, resolved once
	active           atomic.Pointer[map[alertID]struct{}] // alerts in the index at the last refresh; replaced whole
}

// alertID names the alert of one rule on one limit key.
type alertID struct {
	rule string
	key  limiter.LimitKey
}

// New validates the options and builds the sinks; it starts nothing and
// sends nothing.
func New(opts Options) (*Alerting, error) {
	var errs []error
	if opts.Redis == nil {
		errs = append(errs, errors.New("redis client is required"))
	}
	if opts.Keys.Prefix() == "" {
		errs = append(errs, errors.New("key namer is required"))
	}
	if opts.Rules == nil {
		errs = append(errs, errors.New("rules are required"))
	}
	if opts.Replica == "" {
		errs = append(errs, errors.New("replica name is required"))
	}
	opts.Config.SetDefaults()
	if err := opts.Config.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("alerting: %w", err)
	}
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{}
	}
	if opts.Clock == nil {
		opts.Clock = limiter.WallClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(nil)
	}
	if opts.FlushTimeout <= 0 {
		opts.FlushTimeout = 5 * time.Second
	}
	if opts.HandoffGrace <= 0 {
		opts.HandoffGrace = 5 * time.Second
	}
	a := &Alerting{
		opts: opts, cfg: opts.Config, log: opts.Logger.With("component", "alerting"), m: opts.Metrics,
		rdb: opts.Redis, keys: opts.Keys, scripts: newScripts(), obs: make(chan observation, opts.Config.QueueSize),
	}
	var err error
	if a.view, err = NewView(ViewOptions{Redis: opts.Redis, Keys: opts.Keys, LinkTemplate: a.cfg.LinkTemplate}); err != nil {
		return nil, fmt.Errorf("alerting: %w", err)
	}
	if a.sinks, err = a.buildSinks(); err != nil {
		return nil, fmt.Errorf("alerting: %w", err)
	}
	a.tracked, a.dropped = a.m.Observations.WithLabelValues("tracked"), a.m.Observations.WithLabelValues("dropped")
	empty := map[alertID]struct{}{}
	a.active.Store(&empty)
	return a, nil
}

// Active lists the alerts active now, as GET /v1/alerts shows them.
func (a *Alerting) Active(ctx context.Context) ([]Alert, error) { return a.view.Active(ctx) }

// Run tracks alerts and, while this replica holds the lease, delivers
// notifications, until ctx is cancelled. It then applies the evaluations
// still queued, flushes the groups and gives the sinks FlushTimeout to
// deliver what they hold, and returns nil. What is left stays in the outbox
// for the next replica to deliver.
func (a *Alerting) Run(ctx context.Context) error {
	g := new(errgroup.Group)
	g.Go(func() error { a.track(ctx); return nil })
	g.Go(func() error { a.resolve(ctx); return nil })
	if len(a.sinks) > 0 {
		n := newNotifier(a)
		g.Go(func() error { n.run(ctx); return nil })
	}
	return g.Wait()
}

// now is the clock's time in Unix ms.
func (a *Alerting) now() int64 { return limiter.NowMS(a.opts.Clock) }
