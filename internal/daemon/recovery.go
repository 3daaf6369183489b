package daemon

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/redis/go-redis/v9"

	"github.com/ratemon/ratemon/limiter"
	"github.com/ratemon/ratemon/pipeline"
)

// recovery watches the marker key, whose absence means Redis lost ratemon's
// state (a restart without persistence, a flush, or the very first start),
// and then rebuilds every live window from the events JetStream retains.
// While it does, the gate is closed: ingestion holds its batches, so that
// no key is evaluated on a partial window. One replica rebuilds (it holds
// the rebuild lock); the others wait for the marker.
type recovery struct {
	d        *Daemon
	js       jetstream.JetStream
	interval time.Duration

	mu   sync.Mutex
	open chan struct{} // closed while the gate is open; guarded by mu

	rebuilds *prometheus.CounterVec
	seconds  prometheus.Gauge
}

func newRecovery(d *Daemon, js jetstream.JetStream) *recovery {
	f := promauto.With(d.reg)
	r := &recovery{
		d: d, js: js, interval: time.Second, open: make(chan struct{}),
		rebuilds: f.NewCounterVec(prometheus.CounterOpts{
			Name: "ratemon_recovery_rebuilds_total", Help: "Rebuilds of the windows from JetStream after Redis lost its state, by result.",
		}, []string{"result"}),
		seconds: f.NewGauge(prometheus.GaugeOpts{
			Name: "ratemon_recovery_last_rebuild_seconds", Help: "How long the last rebuild of the windows took.",
		}),
	}
	r.rebuilds.WithLabelValues("ok")
	r.rebuilds.WithLabelValues("error")
	return r
}

// wait blocks while a rebuild runs (the Gate of pipeline.IngestOptions).
func (r *recovery) wait(ctx context.Context) error {
	r.mu.Lock()
	ch := r.open
	r.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *recovery) setOpen(open bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-r.open:
		if !open {
			r.open = make(chan struct{})
		}
	default:
		if open {
			close(r.open)
		}
	}
}

// run checks the marker every interval until ctx is done.
func (r *recovery) run(ctx context.Context) {
	d := r.d
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		if err := r.check(ctx); err != nil && ctx.Err() == nil {
			d.log.Warn("state check", "component", "recovery", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (r *recovery) check(ctx context.Context) error {
	d := r.d
	n, err := d.rdb.Exists(ctx, d.keys.Marker()).Result()
	if err != nil {
		return nil // Redis unreachable: the health probe reports it
	}
	if n == 1 {
		r.setOpen(true)
		d.health.set("recovery", "")
		return nil
	}
	r.setOpen(false)
	d.health.set("recovery", "rebuilding the windows from JetStream")
	ok, err := d.rdb.SetNX(ctx, d.keys.RebuildLock(), d.opts.Consumer, time.Minute).Result()
	if err != nil || !ok {
		return err // another replica rebuilds; wait for its marker
	}
	defer d.rdb.Del(context.WithoutCancel(ctx), d.keys.RebuildLock())
	rs := d.Rules()
	since := time.Duration(rs.MaxRetention())*time.Millisecond + d.cfg.Ingest.MaxSkew
	d.log.Warn("redis has no ratemon state: rebuilding the windows from jetstream", "component", "recovery", "since", since.String())
	res, err := pipeline.Rebuild(ctx, pipeline.RebuildOptions{
		JS: r.js, Stream: d.cfg.NATS.Stream, Subjects: d.subjects, Since: since, Store: d.store, Rules: rs,
		Config: d.cfg.Ingest, Report: r.publish, Logger: d.log,
	})
	if err != nil {
		r.rebuilds.WithLabelValues("error").Inc()
		return fmt.Errorf("rebuild: %w", err)
	}
	marker := fmt.Sprintf(`{"rebuilt_at":%d,"by":%q,"up_to_seq":%d}`, time.Now().UnixMilli(), d.opts.Consumer, res.UpTo)
	if err := d.rdb.Set(ctx, d.keys.Marker(), marker, 0).Err(); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("write marker: %w", err)
	}
	r.rebuilds.WithLabelValues("ok").Inc()
	r.seconds.Set(res.Took.Seconds())
	d.log.Info("windows rebuilt", "component", "recovery", "messages", res.Messages, "events", res.Events,
		"keys", res.Keys, "took", res.Took.String())
	r.setOpen(true)
	d.health.set("recovery", "")
	return nil
}

// publish announces the flags a rebuild set.
func (r *recovery) publish(ctx context.Context, evals []limiter.Evaluation) {
	var ds []limiter.Decision
	for _, ev := range evals {
		ds = append(ds, ev.Changes...)
	}
	if len(ds) == 0 {
		return
	}
	if err := r.d.pub.PublishDecisions(ctx, ds); err != nil {
		r.d.log.Warn("publish rebuilt flags", "component", "recovery", "err", err)
	}
}
