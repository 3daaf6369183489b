package alerting

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/ratemon/ratemon/internal/backoff"
)

// message is what one sink sends at once: the alerts of one group that pass
// its filter, with the outbox entries behind them (same order).
type message struct {
	alerts  []Alert
	entries []*entry
}

// completion reports that a sink is done with a message: delivered, or given
// up on (dead).
type completion struct {
	sink      string
	entries   []*entry
	delivered bool
}

// sinkRunner is the delivery stage of one sink: a bounded queue, a rate
// limit, and retries with exponential backoff and jitter. One goroutine
// (run) owns the bucket and the sending; enqueue may be called from another.
type sinkRunner struct {
	name string
	cfg  SinkConfig
	sink Sink
	q    chan *message
	a    *Alerting
	log  *slog.Logger
	rate bucket
	dead throttle // one log line per minute about lost messages, not one per message
}

func newSinkRunner(a *Alerting, sc SinkConfig, s Sink) *sinkRunner {
	return &sinkRunner{
		name: sc.Name, cfg: sc, sink: s, q: make(chan *message, sc.QueueSize), a: a,
		log:  a.log.With("sink", sc.Name),
		rate: bucket{perSecond: float64(sc.RateLimit) / 60, size: float64(sc.RateLimit), tokens: float64(sc.RateLimit)},
	}
}

// enqueue hands a message to the sink without waiting. A full queue drops
// it: a slow or dead sink never holds up the others, nor the pipeline.
func (r *sinkRunner) enqueue(msg *message) bool {
	select {
	case r.q <- msg:
		r.a.m.QueueDepth.WithLabelValues(r.name).Set(float64(len(r.q)))
		return true
	default:
		r.a.m.Notifications.WithLabelValues(r.name, "dropped").Inc()
		r.a.m.Dead.WithLabelValues(r.name).Inc()
		if n, ok := r.dead.ready(time.Minute); ok {
			r.log.Warn("sink queue full, messages dropped", "messages", n, "queue_size", r.cfg.QueueSize)
		}
		return false
	}
}

// run delivers messages until the queue is closed and empty, or hard is
// done. A message interrupted by hard gets no completion: it stays in the
// outbox for the next replica.
func (r *sinkRunner) run(hard context.Context, done chan<- completion) {
	for {
		select {
		case msg, ok := <-r.q:
			if !ok {
				return
			}
			r.a.m.QueueDepth.WithLabelValues(r.name).Set(float64(len(r.q)))
			if c, ok := r.deliver(hard, msg); ok {
				done <- c
			}
		case <-hard.Done():
			return
		}
	}
}

func (r *sinkRunner) deliver(hard context.Context, msg *message) (completion, bool) {
	m := r.a.m
	back := backoff.New(500*time.Millisecond, 30*time.Second)
	c := completion{sink: r.name, entries: msg.entries}
	for attempt := 0; ; attempt++ {
		if r.rate.wait(hard) != nil {
			return c, false
		}
		sctx, cancel := context.WithTimeout(hard, r.cfg.Timeout)
		start := time.Now()
		retry, err := r.sink.Send(sctx, msg.alerts...)
		cancel()
		m.SendSeconds.WithLabelValues(r.name).Observe(time.Since(start).Seconds())
		if err == nil {
			m.Notifications.WithLabelValues(r.name, "sent").Inc()
			c.delivered = true
			return c, true
		}
		if hard.Err() != nil {
			return c, false
		}
		m.Notifications.WithLabelValues(r.name, "failed").Inc()
		if !retry || attempt >= r.cfg.MaxRetries {
			m.Notifications.WithLabelValues(r.name, "dead").Inc()
			m.Dead.WithLabelValues(r.name).Inc()
			if n, ok := r.dead.ready(time.Minute); ok {
				r.log.Warn("sink gave up on messages", "err", err, "messages", n, "attempts", attempt+1, "retryable", retry)
			}
			return c, true
		}
		m.Retries.WithLabelValues(r.name).Inc()
		r.log.Debug("sink failed, retrying", "err", err, "attempt", attempt+1)
		if backoff.Sleep(hard, back.Next()) != nil {
			return c, false
		}
	}
}

// bucket is a token bucket: size tokens, refilled at perSecond. Only the
// runner's goroutine uses it.
type bucket struct {
	perSecond, size, tokens float64
	last                    time.Time
}

// wait takes one token, waiting for it if need be.
func (b *bucket) wait(ctx context.Context) error {
	now := time.Now()
	if !b.last.IsZero() {
		b.tokens = min(b.size, b.tokens+now.Sub(b.last).Seconds()*b.perSecond)
	}
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return nil
	}
	d := time.Duration((1 - b.tokens) / b.perSecond * float64(time.Second))
	if err := backoff.Sleep(ctx, d); err != nil {
		return err
	}
	b.tokens, b.last = 0, time.Now()
	return nil
}

// throttle lets a log line through at most once per period, counting the
// events in between. It is safe for concurrent use.
type throttle struct {
	mu    sync.Mutex
	last  time.Time
	count int
}

// ready counts one event and, when the period has passed since the last
// line, returns the events since then.
func (t *throttle) ready(period time.Duration) (int, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.count++
	if now := time.Now(); now.Sub(t.last) >= period {
		n := t.count
		t.last, t.count = now, 0
		return n, true
	}
	return 0, false
}
