package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// publisher sends the generated events as NDJSON messages of perMsg events
// with JetStream async publish, stamping each message's events with the
// time it is built, and records what it sent.
type publisher struct {
	js       jetstream.JetStream
	subject  string
	perMsg   int
	rate     float64       // events per second; 0: no pacing
	events   int           // stop after this many events; 0: after duration
	duration time.Duration // how long to publish when events is 0
	pick     *picker
	prefixes [][]byte
	// backlog, when set, returns how many published messages the daemons
	// have not acknowledged yet; publishing pauses while it exceeds
	// maxBacklog. It keeps "as fast as possible" a sustained rate rather
	// than a flood that ends in a long drain.
	backlog    func() int64
	maxBacklog int64

	errMu    sync.Mutex // guards firstErr
	firstErr error
	failed   atomic.Int64
	sent     atomic.Int64 // messages handed to JetStream
}

func newJetStream(nc *nats.Conn, p *publisher) (jetstream.JetStream, error) {
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(2048),
		jetstream.WithPublishAsyncTimeout(30*time.Second),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, _ *nats.Msg, err error) { p.fail(err) }),
	)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	return js, nil
}

func (p *publisher) fail(err error) {
	p.failed.Add(1)
	p.errMu.Lock()
	defer p.errMu.Unlock()
	if p.firstErr == nil {
		p.firstErr = err
	}
}

// run publishes until the event count or the duration is reached, then
// waits until JetStream has stored every message. It returns the trace and
// the time the first message was built.
func (p *publisher) run(ctx context.Context) (*trace, time.Time, error) {
	tr := &trace{perMsg: p.perMsg}
	// The trace is sized up front when its length is known: growing a
	// slice of hundreds of megabytes copies it all, a pause of the whole
	// machine that the daemons would pay for in a paced run.
	if n := p.expected(); n > 0 {
		tr.keys = make([]uint32, 0, n)
		tr.msgTS = make([]int64, 0, n/p.perMsg+1)
	}
	start := time.Now()
	end := start.Add(p.duration)
	for {
		n := p.perMsg
		if p.events > 0 {
			n = min(n, p.events-len(tr.keys))
		}
		if n <= 0 || (p.events == 0 && !time.Now().Before(end)) {
			break
		}
		if err := p.pace(ctx, start, len(tr.keys)); err != nil {
			return nil, start, err
		}
		ts := time.Now().UnixMilli()
		buf := make([]byte, 0, n*(len(p.prefixes[0])+16))
		for range n {
			k := p.pick.next()
			tr.keys = append(tr.keys, k)
			buf = append(buf, p.prefixes[k]...)
			buf = strconv.AppendInt(buf, ts, 10)
			buf = append(buf, '}', '\n')
		}
		tr.msgTS = append(tr.msgTS, ts)
		if err := p.publish(ctx, buf); err != nil {
			return nil, start, err
		}
	}
	select {
	case <-p.js.PublishAsyncComplete():
	case <-ctx.Done():
		return nil, start, ctx.Err()
	case <-time.After(60 * time.Second):
		return nil, start, errors.New("jetstream did not acknowledge every publish within 60s")
	}
	if n := p.failed.Load(); n > 0 {
		p.errMu.Lock()
		defer p.errMu.Unlock()
		return nil, start, fmt.Errorf("%d of %d messages were not stored on %s: %w", n, p.sent.Load(), p.subject, p.firstErr)
	}
	return tr, start, nil
}

// expected is how many events a run publishes, when that is known before
// it starts: --events, or a paced --duration (one message more, as the
// last message due before the end may start a moment late); 0 otherwise.
// A paced run is sized for at most maxPresized events: a rate the machine
// cannot keep would otherwise reserve memory for events never sent.
func (p *publisher) expected() int {
	switch {
	case p.events > 0:
		return p.events
	case p.rate > 0:
		msgs := min(p.rate*p.duration.Seconds(), maxPresized)/float64(p.perMsg) + 1
		return int(msgs) * p.perMsg
	}
	return 0
}

// maxPresized bounds the events a paced run's trace is sized for (1 GiB of
// keys).
const maxPresized = 1 << 28

// pace waits until event number done is due at the configured rate, and
// while the daemons' backlog is too long.
func (p *publisher) pace(ctx context.Context, start time.Time, done int) error {
	if p.rate > 0 {
		due := start.Add(time.Duration(float64(done) / p.rate * float64(time.Second)))
		if wait := time.Until(due); wait > 0 {
			if err := sleep(ctx, wait); err != nil {
				return err
			}
		}
	}
	for p.backlog != nil && p.backlog() > p.maxBacklog {
		if err := sleep(ctx, time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

func (p *publisher) publish(ctx context.Context, buf []byte) error {
	for {
		_, err := p.js.PublishAsync(p.subject, buf)
		switch {
		case err == nil:
			p.sent.Add(1)
			return nil
		case errors.Is(err, jetstream.ErrTooManyStalledMsgs):
			if ctx.Err() != nil {
				return ctx.Err()
			}
		default:
			return fmt.Errorf("publish on %s: %w", p.subject, err)
		}
	}
}

// ackWatch polls the consumer's ack floor, for publisher.backlog.
type ackWatch struct {
	floor atomic.Int64 // highest stream sequence below which all is acked
	stop  context.CancelFunc
	done  chan struct{}
}

func watchAcks(ctx context.Context, cons jetstream.Consumer, every time.Duration) *ackWatch {
	ctx, cancel := context.WithCancel(ctx)
	w := &ackWatch{stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for ctx.Err() == nil {
			ictx, c := context.WithTimeout(ctx, 5*time.Second)
			info, err := cons.Info(ictx)
			c()
			if err == nil {
				w.floor.Store(int64(info.AckFloor.Stream))
			}
			_ = sleep(ctx, every)
		}
	}()
	return w
}

func (w *ackWatch) close() {
	w.stop()
	<-w.done
}
