package chaos

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ratemon/ratemon/internal/backoff"
)

// publisher publishes a trace's messages in order, one every pace, each
// with its Nats-Msg-Id, and retries a message until JetStream acknowledges
// it: a publish that failed (NATS restarting) may or may not have been
// stored, and the id makes the retry harmless. So every message is in the
// stream exactly once, whatever the fault.
type publisher struct {
	js      jetstream.JetStream
	subject string
	msgs    []message
	pace    time.Duration

	acked   atomic.Int64  // messages acknowledged so far
	lastSeq atomic.Uint64 // highest stream sequence acknowledged
	retries atomic.Int64
	done    chan struct{} // closed when run returns
	err     error         // run's outcome, once done is closed
	endedAt time.Time     // when the last message was acknowledged
}

func newPublisher(js jetstream.JetStream, subject string, msgs []message, pace time.Duration) *publisher {
	return &publisher{js: js, subject: subject, msgs: msgs, pace: pace, done: make(chan struct{})}
}

// start runs the publisher in its own goroutine.
func (p *publisher) start(ctx context.Context) {
	go func() {
		defer close(p.done)
		p.err = p.run(ctx)
		p.endedAt = time.Now()
	}()
}

func (p *publisher) run(ctx context.Context) error {
	tick := time.NewTicker(p.pace) // the rate of the load, not a synchronisation
	defer tick.Stop()
	for _, m := range p.msgs {
		bo := backoff.New(20*time.Millisecond, 500*time.Millisecond)
		deadline := time.Now().Add(2 * time.Minute)
		for {
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			ack, err := p.js.Publish(pctx, p.subject, m.data, jetstream.WithMsgID(m.id))
			cancel()
			if err == nil {
				p.lastSeq.Store(max(p.lastSeq.Load(), ack.Sequence))
				p.acked.Add(1)
				break
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("message %s never acknowledged by jetstream: %w", m.id, err)
			}
			p.retries.Add(1)
			if err := backoff.Sleep(ctx, bo.Next()); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}

// waitAcked polls until at least n messages are acknowledged.
func (p *publisher) waitAcked(ctx context.Context, n int) error {
	return poll(ctx, 3*time.Minute, 2*time.Millisecond, fmt.Sprintf("%d messages to be published", n), func() (bool, error) {
		if p.acked.Load() >= int64(n) {
			return true, nil
		}
		select {
		case <-p.done:
			if p.err != nil {
				return false, p.err
			}
		default:
		}
		return false, nil
	})
}

// fraction is the number of messages that makes fraction f of the trace.
func (p *publisher) fraction(f float64) int { return int(f * float64(len(p.msgs))) }

// wait blocks until the publisher has finished and returns its outcome.
func (p *publisher) wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return ctx.Err()
	}
}
