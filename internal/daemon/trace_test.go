package daemon_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/internal/config"
	"github.com/ratemon/ratemon/internal/daemon"
	"github.com/ratemon/ratemon/internal/testenv"
	"github.com/ratemon/ratemon/limiter"
	"github.com/ratemon/ratemon/pipeline/event"
)

// Helpers shared by the tests that run several daemons on one pipeline
// (replicas_test.go, cluster_test.go): common names, paced publishing with
// acknowledgements, and the reference model of a trace.

func withClock(c limiter.Clock) daemonOption {
	return func(o *daemon.Options) { o.Clock = c }
}

func withRegistry(reg *prometheus.Registry) daemonOption {
	return func(o *daemon.Options) { o.Registry = reg }
}

// shared holds the names several daemons must agree on to form one
// pipeline: Redis prefix, streams, subjects and the durable consumer.
type shared struct {
	prefix, stream, deadLetter, subjects string
}

func newShared(t *testing.T, prefix string) shared {
	name := testenv.Name(t)
	return shared{prefix: prefix, stream: "EV" + name, deadLetter: "DL" + name, subjects: "rm" + name}
}

func (s shared) apply(cfg *config.Config) {
	cfg.Redis.Prefix = s.prefix
	cfg.NATS.Stream = s.stream
	cfg.NATS.DeadLetterStream = s.deadLetter
	cfg.NATS.SubjectPrefix = s.subjects
}

// sent is one published message: its events and when JetStream acknowledged it.
type sent struct {
	events []event.Event
	acked  time.Time
}

// publisher publishes a trace as NDJSON messages, each with a Nats-Msg-Id,
// and retries a message until JetStream acknowledges it: a publish that
// failed (a node died, a leader moved) may or may not have been stored,
// and the id makes the retry harmless. So every message of the trace is in
// the stream exactly once. It runs in its own goroutine while the test
// stops and starts servers.
type publisher struct {
	js      jetstream.JetStream
	subject string
	mu      sync.Mutex
	sent    []sent
	retries int
	holds   map[int]chan struct{} // message number -> released when closed
}

// holdBefore makes the publisher wait before message n until the returned
// function is called, so a test can let a daemon join before the rest of
// the trace is published. Call it before start.
func (p *publisher) holdBefore(n int) (release func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.holds == nil {
		p.holds = map[int]chan struct{}{}
	}
	ch := make(chan struct{})
	p.holds[n] = ch
	return sync.OnceFunc(func() { close(ch) })
}

// start publishes evs in messages of per events, one message every pace,
// in a goroutine; the channel receives its outcome.
func (p *publisher) start(ctx context.Context, evs []event.Event, per int, pace time.Duration) <-chan error {
	done := make(chan error, 1)
	go func() { done <- p.run(ctx, evs, per, pace) }()
	return done
}

func (p *publisher) run(ctx context.Context, evs []event.Event, per int, pace time.Duration) error {
	tick := time.NewTicker(pace) // the rate of the load, not a synchronisation
	defer tick.Stop()
	for i, n := 0, 0; i < len(evs); i, n = i+per, n+1 {
		part := evs[i:min(i+per, len(evs))]
		var buf []byte
		for _, e := range part {
			buf = append(e.AppendJSON(buf), '\n')
		}
		p.mu.Lock()
		hold := p.holds[n]
		p.mu.Unlock()
		if hold != nil {
			select {
			case <-hold:
			case <-ctx.Done():
				return fmt.Errorf("held before message %d: %w", n, ctx.Err())
			}
		}
		id := "m" + strconv.Itoa(n)
		deadline := time.Now().Add(30 * time.Second)
		for {
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := p.js.Publish(pctx, p.subject, buf, jetstream.WithMsgID(id))
			cancel()
			if err == nil {
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return fmt.Errorf("message %d never acknowledged: %w", n, err)
			}
			p.mu.Lock()
			p.retries++
			p.mu.Unlock()
			<-tick.C
		}
		p.mu.Lock()
		p.sent = append(p.sent, sent{events: part, acked: time.Now()})
		p.mu.Unlock()
		<-tick.C
	}
	return nil
}

// count returns how many messages were acknowledged so far.
func (p *publisher) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.sent)
}

// waitSent polls until n messages were acknowledged.
func (p *publisher) waitSent(t *testing.T, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return p.count() >= n }, 30*time.Second, 5*time.Millisecond,
		"%d messages were not published", n)
}

// waitDrained polls until the durable consumer has nothing pending or
// unacknowledged.
func waitDrained(t *testing.T, js jetstream.JetStream, stream, consumer string, timeout time.Duration) {
	t.Helper()
	var last string
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		c, err := js.Consumer(ctx, stream, consumer)
		if err != nil {
			last = err.Error()
			return false
		}
		info, err := c.Info(ctx)
		if err != nil {
			last = err.Error()
			return false
		}
		last = fmt.Sprintf("pending %d, unacknowledged %d", info.NumPending, info.NumAckPending)
		return info.NumPending == 0 && info.NumAckPending == 0
	}, timeout, 50*time.Millisecond, "the events were not all ingested")
	t.Log("drained:", last)
}

// ruleset applies the rule defaults, as config does, and builds the set.
func ruleset(t *testing.T, rules []limiter.Rule) *limiter.Ruleset {
	for i := range rules {
		rules[i].SetDefaults()
	}
	rs, err := limiter.NewRuleset(rules)
	require.NoError(t, err)
	return rs
}

// modelOf feeds a trace to the reference model one event at a time.
func modelOf(rs *limiter.Ruleset, now int64, evs []event.Event) *limiter.Model {
	m := limiter.NewModel(rs)
	var hits []limiter.Hit
	for i := range evs {
		e := evs[i]
		hits = rs.Match(hits[:0], &e)
		for _, h := range hits {
			m.Add(now, h.Key, []limiter.Message{{Events: []limiter.Event{{TS: e.TS, Weight: e.Weight, Mask: h.Mask, ID: e.ID}}}})
		}
	}
	return m
}

// counter reads a counter of a daemon's registry, summed over the label
// values given (all of them when none is).
func counter(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue metrics
				}
			}
			total += m.GetCounter().GetValue()
		}
	}
	return total
}
