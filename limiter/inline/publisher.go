package inline

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ratemon/ratemon/internal/keyspace"
	"github.com/ratemon/ratemon/pipeline/event"
)

// PublisherOptions configures a Publisher. NATS and Service are required.
type PublisherOptions struct {
	NATS *nats.Conn // required
	// JetStream, when set, publishes through JetStream and waits for the
	// stream's acknowledgement (retrying with the same message id, which
	// the stream de-duplicates). Otherwise batches go out on core NATS.
	JetStream jetstream.JetStream
	// Service is the subject token (<prefix>.events.<service>) and the
	// service of the events that have none. Required.
	Service       string
	SubjectPrefix string // the daemon's nats.subject_prefix (default "ratemon")
	// A batch, one NATS message of NDJSON, is closed when it holds
	// BatchSize events (default 256) or MaxBatchBytes bytes (default 64
	// KiB). Closed batches and the open one are sent every FlushInterval
	// (default 5ms), or as soon as a quarter of the buffers wait.
	BatchSize     int
	MaxBatchBytes int
	FlushInterval time.Duration
	// Buffers is how many batches may wait to be sent (default 64). When
	// all are waiting, Publish drops the event and counts it.
	Buffers int
	// PublishTimeout bounds one JetStream publish (default 2s). A batch
	// that cannot be sent for RetryFor (default 5s) is dropped and counted.
	PublishTimeout time.Duration
	RetryFor       time.Duration
	// FlushTimeout bounds the final flush when Run's context ends
	// (default 5s).
	FlushTimeout time.Duration
	Logger       *slog.Logger
	Metrics      *Metrics // default: NewMetrics(nil)
}

func (o *PublisherOptions) validate() error {
	var errs []error
	if o.NATS == nil {
		errs = append(errs, errors.New("nats connection is required"))
	}
	if err := keyspace.ValidateService(o.Service); err != nil {
		errs = append(errs, fmt.Errorf("service: %w", err))
	}
	setDefault(&o.SubjectPrefix, keyspace.DefaultPrefix)
	setDefault(&o.BatchSize, 256)
	setDefault(&o.MaxBatchBytes, 64<<10)
	setDefault(&o.FlushInterval, 5*time.Millisecond)
	setDefault(&o.Buffers, 64)
	setDefault(&o.PublishTimeout, 2*time.Second)
	setDefault(&o.RetryFor, 5*time.Second)
	setDefault(&o.FlushTimeout, 5*time.Second)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
	}
	return errors.Join(errs...)
}

// batch is one NATS message in the making: NDJSON events.
type batch struct {
	buf []byte
	n   int
}

// Publisher reports one event per request to NATS without ever blocking
// the request: Publish appends the event to the current batch in memory
// and returns; every FlushInterval, Run sends the full batches and the
// current one (and sooner when a quarter of the buffers wait). Memory is bounded by Buffers batches: when they are all
// waiting (NATS slow or down), events are dropped, counted in
// ratemon_inline_events_dropped_total and logged every 10s. Each batch
// carries a message id (Nats-Msg-Id), so a retried batch is stored once by
// JetStream. A Publisher is safe for concurrent use.
type Publisher struct {
	opts    PublisherOptions
	log     *slog.Logger
	m       *Metrics
	subject string
	id      string // random, prefix of the message ids

	mu     sync.Mutex
	cur    *batch // batch being filled; guarded by mu
	closed bool   // guarded by mu

	free  chan *batch   // empty batches
	ready chan *batch   // batches to send; room for every batch, so sending to it never blocks
	kick  chan struct{} // wakes the sender early when ready fills up

	stop     chan struct{} // closed by Close
	stopOnce sync.Once
	running  atomic.Bool   // Run (or Close's own flush) owns the sending
	done     chan struct{} // closed when the owner of the sending is finished

	seq   uint64      // last message sequence; sender only
	hdr   nats.Header // reused message header; sender only
	drops [3]dropCount
}

// Indexes of Publisher.drops.
const (
	dropFull = iota
	dropDown
	dropClosed
)

// dropCount counts the events dropped for one reason.
type dropCount struct {
	reason  string
	metric  prometheus.Counter
	pending atomic.Int64 // dropped since the last log line
}

// NewPublisher validates the options and allocates the buffers (Buffers ×
// MaxBatchBytes, 4 MiB by default). It starts nothing; Run does.
func NewPublisher(opts PublisherOptions) (*Publisher, error) {
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("inline publisher: %w", err)
	}
	subjects, err := keyspace.NewSubjects(opts.SubjectPrefix)
	if err != nil {
		return nil, fmt.Errorf("inline publisher: subject prefix: %w", err)
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	p := &Publisher{
		opts: opts, log: opts.Logger.With("component", "inline_publisher", "service", opts.Service), m: opts.Metrics,
		subject: subjects.Events(opts.Service), id: hex.EncodeToString(rnd[:]),
		free: make(chan *batch, opts.Buffers), ready: make(chan *batch, opts.Buffers), kick: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{}), hdr: nats.Header{},
	}
	p.drops[dropFull].reason, p.drops[dropFull].metric = DropBufferFull, p.m.droppedFull
	p.drops[dropDown].reason, p.drops[dropDown].metric = DropNATSDown, p.m.droppedDown
	p.drops[dropClosed].reason, p.drops[dropClosed].metric = DropClosed, p.m.droppedClosed
	for range opts.Buffers {
		p.free <- &batch{buf: prefault(make([]byte, opts.MaxBatchBytes+2048))[:0]}
	}
	return p, nil
}

// prefault writes to every page of b, so that the first requests do not
// pay the page faults of fresh memory (a few microseconds each).
func prefault(b []byte) []byte {
	for i := 0; i < len(b); i += 4096 {
		b[i] = 0
	}
	return b
}

// Publish queues e for the next batch and reports whether it was kept; it
// never blocks on the network. An event without a service gets the
// Publisher's, one with weight 0 weighs 1.
func (p *Publisher) Publish(e *event.Event) bool { return p.add(e, 0) }

// PublishTimed is Publish with the time the server took to answer,
// written as the event's "latency_us" field (microseconds), which
// ratemon ignores today and dashboards may use.
func (p *Publisher) PublishTimed(e *event.Event, latency time.Duration) bool {
	return p.add(e, latency)
}

func (p *Publisher) add(e *event.Event, latency time.Duration) bool {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.drop(dropClosed, 1)
		return false
	}
	b := p.cur
	if b == nil {
		select {
		case b = <-p.free:
			p.cur = b
		default:
			p.mu.Unlock()
			p.drop(dropFull, 1)
			return false
		}
	}
	ev := *e
	if ev.Service == "" {
		ev.Service = p.opts.Service
	}
	if ev.Weight == 0 {
		ev.Weight = 1 // the zero value means one request, not a rejected weight
	}
	b.buf = ev.AppendJSON(b.buf)
	if latency > 0 {
		b.buf = append(b.buf[:len(b.buf)-1], `,"latency_us":`...)
		b.buf = strconv.AppendInt(b.buf, latency.Microseconds(), 10)
		b.buf = append(b.buf, '}')
	}
	b.buf = append(b.buf, '\n')
	b.n++
	if b.n >= p.opts.BatchSize || len(b.buf) >= p.opts.MaxBatchBytes {
		p.cur = nil
		p.ready <- b // the sender never waits on ready, so this wakes nobody
		if len(p.ready) >= max(p.opts.Buffers/4, 1) {
			select {
			case p.kick <- struct{}{}:
			default:
			}
		}
	}
	p.mu.Unlock()
	return true
}

// drop counts n events dropped for reason i (an index of drops).
func (p *Publisher) drop(i, n int) {
	p.drops[i].pending.Add(int64(n))
	p.drops[i].metric.Add(float64(n))
}
