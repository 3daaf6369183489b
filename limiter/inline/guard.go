package inline

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/ratemon/ratemon/limiter"
)

// Options configures a Guard: a Checker, a Publisher and a Middleware
// sharing one NATS connection, one Redis client and one Metrics. NATS,
// Redis, Service and one of Rules or RulesURL are required.
type Options struct {
	NATS  *nats.Conn
	Redis redis.UniversalClient
	// JetStream, when set, makes the publisher wait for JetStream's
	// acknowledgement of each batch; otherwise batches go out on core NATS.
	JetStream jetstream.JetStream
	Service   string
	// Rules, or RulesURL (the daemon's HTTP address): see CheckerOptions.
	Rules         *limiter.Ruleset
	RulesURL      string
	HashKey       []byte // the daemon's privacy key, with RulesURL when it hashes client ids or addresses
	RedisPrefix   string // default "ratemon"
	SubjectPrefix string // default "ratemon"
	Policy        Policy // default PolicyFailOpen
	// HTTP configures the middleware; its Service, Checker and Publisher
	// are set by New.
	HTTP       MiddlewareOptions
	Logger     *slog.Logger
	Registerer prometheus.Registerer // nil: metrics are not registered
}

// Guard is inline enforcement in one value: wrap the server's handler with
// Handler and run Run for as long as the server runs.
type Guard struct {
	checker   *Checker
	publisher *Publisher
	mw        *Middleware
}

// New builds the checker, the publisher and the middleware. It starts
// nothing and connects nowhere; Run does.
func New(opts Options) (*Guard, error) {
	m := NewMetrics(opts.Registerer)
	c, err := NewChecker(CheckerOptions{
		NATS: opts.NATS, Redis: opts.Redis, Rules: opts.Rules, RulesURL: opts.RulesURL, HashKey: opts.HashKey,
		RedisPrefix: opts.RedisPrefix, SubjectPrefix: opts.SubjectPrefix, Policy: opts.Policy,
		Logger: opts.Logger, Metrics: m,
	})
	if err != nil {
		return nil, err
	}
	p, err := NewPublisher(PublisherOptions{
		NATS: opts.NATS, JetStream: opts.JetStream, Service: opts.Service, SubjectPrefix: opts.SubjectPrefix,
		Logger: opts.Logger, Metrics: m,
	})
	if err != nil {
		return nil, err
	}
	h := opts.HTTP
	h.Service, h.Checker, h.Publisher = opts.Service, c, p
	if h.Logger == nil {
		h.Logger = opts.Logger
	}
	mw, err := NewMiddleware(h)
	if err != nil {
		return nil, err
	}
	return &Guard{checker: c, publisher: p, mw: mw}, nil
}

// Handler wraps next with the middleware.
func (g *Guard) Handler(next http.Handler) http.Handler { return g.mw.Handler(next) }

// Checker returns the guard's checker.
func (g *Guard) Checker() *Checker { return g.checker }

// Publisher returns the guard's publisher.
func (g *Guard) Publisher() *Publisher { return g.publisher }

// Run runs the checker and the publisher until ctx is cancelled; then the
// publisher flushes what it holds, and Run returns nil. It does not close
// the NATS connection or the Redis client, which belong to the caller.
func (g *Guard) Run(ctx context.Context) error {
	eg, ctx := errgroup.WithContext(ctx)
	eg.Go(func() error { return g.checker.Run(ctx) })
	eg.Go(func() error { return g.publisher.Run(ctx) })
	return eg.Wait()
}
