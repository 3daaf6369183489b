package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/ratemon/ratemon/internal/backoff"
	"github.com/ratemon/ratemon/limiter"
)

// DecisionPublisher sends flag changes to inline checkers.
type DecisionPublisher interface {
	PublishDecisions(ctx context.Context, ds []limiter.Decision) error
}

// Observer sees every evaluation; alerting implements it.
type Observer interface {
	Observe(ctx context.Context, evals []limiter.Evaluation)
}

// WorkerOptions wires a Worker.
type WorkerOptions struct {
	Config    WorkerConfig
	Redis     redis.UniversalClient
	Store     *limiter.Store
	Rules     func() *limiter.Ruleset
	Decisions DecisionPublisher // optional
	Observer  Observer          // optional
	Group     string            // consumer group name (default "ratemon")
	Consumer  string            // this process's consumer name, unique among replicas (required)
	Clock     limiter.Clock     // default: wall clock
	Logger    *slog.Logger
	Metrics   *Metrics
	Shutdown  time.Duration // bound on finishing a batch after cancellation (default 10s)
}

// Worker evaluates the limit keys announced on the work shards. Each shard
// is a Redis stream read by one consumer group that every replica joins;
// notices a dead replica left pending are reclaimed after ClaimIdle.
// Evaluation is idempotent, so a notice handled twice does no harm.
type Worker struct {
	opts WorkerOptions
	log  *slog.Logger
	m    *Metrics
	rep  *reporter
}

// NewWorker validates the options; it starts nothing.
func NewWorker(opts WorkerOptions) (*Worker, error) {
	var errs []error
	if opts.Redis == nil || opts.Store == nil {
		errs = append(errs, errors.New("redis client and store are required"))
	}
	if opts.Rules == nil {
		errs = append(errs, errors.New("rules are required"))
	}
	if opts.Consumer == "" {
		errs = append(errs, errors.New("consumer name is required"))
	}
	if err := opts.Config.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	if opts.Group == "" {
		opts.Group = "ratemon"
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
	if opts.Shutdown <= 0 {
		opts.Shutdown = 10 * time.Second
	}
	w := &Worker{opts: opts, log: opts.Logger.With("component", "worker"), m: opts.Metrics}
	w.rep = &reporter{store: opts.Store, decisions: opts.Decisions, observer: opts.Observer, clock: opts.Clock,
		m: opts.Metrics, log: w.log, shards: opts.Config.Shards}
	return w, nil
}

// Run reads every shard until ctx is cancelled, then finishes the batch in
// hand and returns nil.
func (w *Worker) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	for s := range w.opts.Config.Shards {
		g.Go(func() error { w.shard(gctx, s); return nil })
	}
	return g.Wait()
}

func (w *Worker) ensureGroup(ctx context.Context, stream string) error {
	err := w.opts.Redis.XGroupCreateMkStream(ctx, stream, w.opts.Group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("create consumer group on %s: %w", stream, err)
	}
	return nil
}

// shard is the read loop of one work shard.
func (w *Worker) shard(ctx context.Context, s int) {
	stream := w.opts.Store.Keys().Work(s)
	log := w.log.With("shard", s)
	cfg := w.opts.Config
	rctx := context.WithoutCancel(ctx)
	back := backoff.New(100*time.Millisecond, 5*time.Second)
	groupReady := false
	lastClaim, lastTrim := time.Now(), time.Time{}
	for ctx.Err() == nil {
		if !groupReady {
			if err := w.ensureGroup(rctx, stream); err != nil {
				w.m.Errors.WithLabelValues("redis", "read").Inc()
				log.Warn("work shard unavailable", "err", err)
				_ = backoff.Sleep(ctx, back.Next())
				continue
			}
			groupReady = true
		}
		res, err := w.opts.Redis.XReadGroup(rctx, &redis.XReadGroupArgs{
			Group: w.opts.Group, Consumer: w.opts.Consumer, Streams: []string{stream, ">"},
			Count: int64(cfg.BatchSize), Block: cfg.Block,
		}).Result()
		switch {
		case errors.Is(err, redis.Nil):
			back.Reset()
		case err != nil:
			w.m.Errors.WithLabelValues("redis", "read").Inc()
			if strings.HasPrefix(err.Error(), "NOGROUP") {
				groupReady = false
			}
			log.Warn("read work notices", "err", err)
			_ = backoff.Sleep(ctx, back.Next())
			continue
		default:
			back.Reset()
			for _, st := range res {
				w.handle(ctx, s, st.Messages)
			}
		}
		if time.Since(lastClaim) >= cfg.ClaimIdle/2 {
			w.claim(ctx, s)
			lastClaim = time.Now()
		}
		if time.Since(lastTrim) >= 5*time.Second {
			w.trim(rctx, s, stream)
			lastTrim = time.Now()
		}
	}
}

// handle evaluates the limit keys of a set of notices once each, publishes
// the flag changes and acknowledges the notices. A failed evaluation leaves
// the notices pending, to be reclaimed.
func (w *Worker) handle(ctx context.Context, shard int, msgs []redis.XMessage) {
	if len(msgs) == 0 {
		return
	}
	stream := w.opts.Store.Keys().Work(shard)
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.opts.Shutdown)
	defer cancel()
	start := time.Now()
	seen := map[limiter.LimitKey]bool{}
	var keys []limiter.LimitKey
	ids := make([]string, 0, len(msgs))
	for _, m := range msgs {
		ids = append(ids, m.ID)
		v, _ := m.Values["k"].(string)
		for _, k := range strings.Split(v, "\n") {
			lk := limiter.LimitKey(k)
			if k == "" || seen[lk] {
				continue
			}
			seen[lk] = true
			keys = append(keys, lk)
		}
	}
	evals, err := w.opts.Store.Evaluate(hctx, w.opts.Rules(), keys)
	if err != nil {
		w.m.Errors.WithLabelValues("redis", "evaluate").Inc()
		w.log.Warn("evaluate limit keys, notices stay pending", "err", err, "stream", stream)
		return
	}
	w.rep.report(hctx, evals)
	if err := w.opts.Redis.XAck(hctx, stream, w.opts.Group, ids...).Err(); err != nil {
		w.m.Errors.WithLabelValues("redis", "read").Inc()
		w.log.Warn("acknowledge work notices", "err", err, "stream", stream)
	}
	w.m.BatchSeconds.WithLabelValues("evaluate").Observe(time.Since(start).Seconds())
}

// claim takes over notices another consumer left pending for ClaimIdle.
func (w *Worker) claim(ctx context.Context, shard int) {
	stream := w.opts.Store.Keys().Work(shard)
	start := "0-0"
	for ctx.Err() == nil {
		msgs, next, err := w.opts.Redis.XAutoClaim(ctx, &redis.XAutoClaimArgs{
			Stream: stream, Group: w.opts.Group, Consumer: w.opts.Consumer,
			MinIdle: w.opts.Config.ClaimIdle, Start: start, Count: int64(w.opts.Config.BatchSize),
		}).Result()
		if err != nil {
			if !errors.Is(err, redis.Nil) {
				w.m.Errors.WithLabelValues("redis", "read").Inc()
			}
			return
		}
		if len(msgs) > 0 {
			w.log.Info("reclaimed work notices", "stream", stream, "count", len(msgs))
			w.handle(ctx, shard, msgs)
		}
		if next == "0-0" || next == "" {
			return
		}
		start = next
	}
}

// trim drops acknowledged notices: everything before the oldest pending
// entry, or before the last delivered one when nothing is pending.
func (w *Worker) trim(ctx context.Context, shard int, stream string) {
	rdb := w.opts.Redis
	groups, err := rdb.XInfoGroups(ctx, stream).Result()
	if err != nil {
		return
	}
	var last string
	label := strconv.Itoa(shard)
	for _, g := range groups {
		if g.Name == w.opts.Group {
			last = g.LastDeliveredID
			w.m.NoticesLag.WithLabelValues(label).Set(float64(max(g.Lag, 0)))
		}
	}
	if last == "" {
		return
	}
	minID := last
	p, err := rdb.XPending(ctx, stream, w.opts.Group).Result()
	if err != nil {
		return
	}
	w.m.NoticesPending.WithLabelValues(label).Set(float64(p.Count))
	idle := 0.0
	if p.Count > 0 {
		minID = p.Lower
		if ext, err := rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: stream, Group: w.opts.Group, Start: "-", End: "+", Count: 1}).Result(); err == nil && len(ext) == 1 {
			idle = ext[0].Idle.Seconds()
		}
	}
	w.m.OldestPending.WithLabelValues(label).Set(idle)
	rdb.XTrimMinIDApprox(ctx, stream, minID, 0)
	_ = w.opts.Store.TrimTop(ctx, w.opts.Rules(), shard, 2*w.opts.Config.TopK)
}

// NATSDecisions publishes decisions as JSON on a core NATS subject.
type NATSDecisions struct {
	Conn    *nats.Conn
	Subject string
}

// PublishDecisions implements DecisionPublisher.
func (p NATSDecisions) PublishDecisions(_ context.Context, ds []limiter.Decision) error {
	var errs []error
	for _, d := range ds {
		b, err := json.Marshal(d)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := p.Conn.Publish(p.Subject, b); err != nil {
			errs = append(errs, fmt.Errorf("publish decision for %s: %w", d.Key, err))
		}
	}
	return errors.Join(errs...)
}
