package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/ratemon/ratemon/internal/backoff"

	"github.com/ratemon/ratemon/internal/keyspace"
	"github.com/ratemon/ratemon/limiter"
)

// IngestOptions wires an Ingest.
type IngestOptions struct {
	Config   IngestConfig
	Consumer jetstream.Consumer    // the shared durable pull consumer
	Conn     *nats.Conn            // for dead letters
	Subjects keyspace.Subjects     // subject names
	Store    *limiter.Store        // window store
	Redis    redis.UniversalClient // for work notices
	Rules    func() *limiter.Ruleset
	Shards   int // work shards, WorkerConfig.Shards
	Logger   *slog.Logger
	Metrics  *Metrics
	// Shutdown bounds how long in-flight batches may take to finish once
	// Run's context is cancelled (default 10s).
	Shutdown time.Duration
	// Decisions, Observer and Clock serve inline evaluation (see
	// IngestConfig.Evaluation), as they serve the workers.
	Decisions DecisionPublisher
	Observer  Observer
	Clock     limiter.Clock
	// Gate, when set, is waited on before each batch is processed: the
	// daemon closes it while it rebuilds the windows after Redis lost them.
	Gate func(ctx context.Context) error
	// AfterStore, when set, runs after Redis accepted a batch and before the
	// batch is acknowledged; an error leaves the batch unacknowledged, as a
	// crash at that point would. Fault tests use it.
	AfterStore func(msgs []jetstream.Msg) error
	// WholeFirstHold makes a key's first hold the whole of ingest.hold, as
	// every later one, instead of a part drawn at random (see holder.dueMS):
	// for tests that count what is held.
	WholeFirstHold bool
}

func (o *IngestOptions) validate() error {
	var errs []error
	if o.Consumer == nil {
		errs = append(errs, errors.New("nats consumer is required"))
	}
	if o.Conn == nil {
		errs = append(errs, errors.New("nats connection is required"))
	}
	if o.Store == nil || o.Redis == nil {
		errs = append(errs, errors.New("redis store and client are required"))
	}
	if o.Rules == nil {
		errs = append(errs, errors.New("rules are required"))
	}
	if o.Shards < 1 {
		errs = append(errs, fmt.Errorf("shards must be >= 1, got %d", o.Shards))
	}
	if o.Subjects.Prefix() == "" {
		errs = append(errs, errors.New("subjects are required"))
	}
	if err := o.Config.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Ingest reads events from the shared JetStream consumer into the window
// store. It acknowledges a message only after Redis accepted every write the
// message caused, so a crash at any point loses nothing; a redelivered
// message is recognised by its stream sequence and counted once.
type Ingest struct {
	opts  IngestOptions
	log   *slog.Logger
	m     *Metrics
	dead  deadLetters
	rep   *reporter
	hold  *holder       // nil: every batch sends every key it touches
	floor atomic.Uint64 // consumer ack floor (stream sequence), refreshed periodically
}

// NewIngest validates the options; it starts nothing.
func NewIngest(opts IngestOptions) (*Ingest, error) {
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(nil)
	}
	if opts.Shutdown <= 0 {
		opts.Shutdown = 10 * time.Second
	}
	if opts.Clock == nil {
		opts.Clock = limiter.WallClock{}
	}
	in := &Ingest{
		opts: opts,
		log:  opts.Logger.With("component", "ingest"),
		m:    opts.Metrics,
		dead: deadLetters{nc: opts.Conn, subject: opts.Subjects.DeadLetter()},
	}
	in.rep = &reporter{store: opts.Store, decisions: opts.Decisions, observer: opts.Observer, clock: opts.Clock,
		m: opts.Metrics, log: in.log, shards: opts.Shards}
	if opts.Config.Holds() {
		in.hold = newHolder(opts.Config.Hold, opts.Config.HoldMessages)
		in.hold.spread = !opts.WholeFirstHold
	}
	return in, nil
}

// Run pulls and processes batches until ctx is cancelled, then stops
// pulling, finishes and acknowledges the messages it holds, and returns nil.
//
// One goroutine reads the JetStream iterator into a channel of BatchSize
// messages; Concurrency goroutines cut batches from it. When Redis is slow
// the channel and then the iterator's buffer (BatchSize × Concurrency
// messages) fill up, and pulling stops: memory stays bounded.
func (in *Ingest) Run(ctx context.Context) error {
	cfg := in.opts.Config
	// Short pulls with heartbeats: when the consumer leader of a JetStream
	// cluster dies, a new pull goes to the new leader within seconds.
	it, err := in.opts.Consumer.Messages(jetstream.PullMaxMessages(cfg.BatchSize*cfg.Concurrency), jetstream.PullExpiry(5*time.Second))
	if err != nil {
		return fmt.Errorf("ingest: start pulling: %w", err)
	}
	stop := context.AfterFunc(ctx, it.Drain)
	defer stop()
	msgs := make(chan jetstream.Msg, cfg.BatchSize)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { in.refreshFloor(gctx); return nil })
	g.Go(func() error { in.read(ctx, it, msgs); return nil })
	for range cfg.Concurrency {
		g.Go(func() error { return in.loop(ctx, msgs) })
	}
	if in.hold != nil {
		g.Go(func() error { in.flusher(ctx); return nil })
	}
	err = g.Wait()
	if in.hold != nil {
		sends, why := in.hold.takeAll()
		in.flush(ctx, sends, why)
	}
	it.Stop()
	return err
}

// read moves messages from the iterator to msgs until the iterator is
// closed (drained at shutdown), then closes msgs. It is the only caller of
// the iterator's Next.
func (in *Ingest) read(ctx context.Context, it jetstream.MessagesContext, msgs chan<- jetstream.Msg) {
	defer close(msgs)
	for {
		m, err := it.Next()
		if err == nil {
			msgs <- m
			continue
		}
		if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
			return
		}
		in.m.Errors.WithLabelValues("nats", "fetch").Inc()
		in.log.Debug("pull interrupted", "err", err)
		if ctx.Err() == nil {
			_ = backoff.Sleep(ctx, 50*time.Millisecond)
		}
	}
}

// loop cuts and processes batches until msgs is closed.
func (in *Ingest) loop(ctx context.Context, msgs <-chan jetstream.Msg) error {
	back := backoff.New(100*time.Millisecond, 5*time.Second)
	b := newBatch(nil)
	for {
		batch, closed := in.collect(msgs)
		if len(batch) > 0 && in.opts.Gate != nil {
			if err := in.opts.Gate(ctx); err != nil {
				in.nakAll(batch, time.Second) // shutting down during a rebuild: let them come back
				return nil
			}
		}
		if len(batch) > 0 {
			pctx, cancel := in.processContext(ctx)
			err := in.process(pctx, b, batch)
			cancel()
			if err != nil {
				d := back.Next()
				in.log.Warn("batch not stored, will be redelivered", "err", err, "retry_in", d.String())
				in.nakAll(batch, d)
				if !closed {
					_ = backoff.Sleep(ctx, d)
				}
			} else {
				back.Reset()
			}
		}
		if closed {
			return nil
		}
	}
}

// processContext is ctx while running, and a context bounded by the
// shutdown timeout once ctx is cancelled, so that held batches finish.
func (in *Ingest) processContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), in.opts.Shutdown)
}

// collect returns up to BatchSize messages: it waits for the first one, then
// takes what arrives within Linger. closed is true once msgs is closed.
func (in *Ingest) collect(msgs <-chan jetstream.Msg) (batch []jetstream.Msg, closed bool) {
	cfg := in.opts.Config
	m, ok := <-msgs
	if !ok {
		return nil, true
	}
	batch = append(batch, m)
	timer := time.NewTimer(cfg.Linger)
	defer timer.Stop()
	for len(batch) < cfg.BatchSize {
		select {
		case m, ok := <-msgs:
			if !ok {
				return batch, true
			}
			batch = append(batch, m)
		case <-timer.C:
			return batch, false
		}
	}
	return batch, false
}

// refreshFloor keeps the consumer's ack floor current, so that redelivery
// records below it can be pruned.
func (in *Ingest) refreshFloor(ctx context.Context) {
	t := time.NewTicker(in.opts.Config.FloorRefresh)
	defer t.Stop()
	for {
		info, err := in.opts.Consumer.Info(ctx)
		if err == nil {
			in.floor.Store(info.AckFloor.Stream)
			in.m.StreamPending.Set(float64(info.NumPending))
			in.m.StreamAcks.Set(float64(info.NumAckPending))
		} else if ctx.Err() == nil {
			in.m.Errors.WithLabelValues("nats", "fetch").Inc()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (in *Ingest) nakAll(msgs []jetstream.Msg, d time.Duration) {
	for _, m := range msgs {
		if err := m.NakWithDelay(d); err != nil {
			in.m.Errors.WithLabelValues("nats", "ack").Inc()
		}
	}
	in.m.Messages.WithLabelValues("retry").Add(float64(len(msgs)))
}

func (in *Ingest) ackAll(msgs []jetstream.Msg) {
	for _, m := range msgs {
		if err := m.Ack(); err != nil {
			in.m.Errors.WithLabelValues("nats", "ack").Inc()
		}
	}
}

// serviceOf is the service token of an events subject.
func (in *Ingest) serviceOf(subject string) string {
	return strings.TrimPrefix(subject, in.opts.Subjects.EventsPrefix())
}
