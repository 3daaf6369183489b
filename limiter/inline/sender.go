package inline

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ratemon/ratemon/internal/backoff"
)

// flushCurrent hands the batch being filled to the sender.
func (p *Publisher) flushCurrent() {
	p.mu.Lock()
	if b := p.cur; b != nil && b.n > 0 {
		p.cur = nil
		p.ready <- b
	}
	p.mu.Unlock()
}

// Run sends the batches until ctx is cancelled or Close is called, then
// flushes what is left (within FlushTimeout, or Close's deadline) and
// returns nil.
func (p *Publisher) Run(ctx context.Context) error {
	if !p.running.CompareAndSwap(false, true) {
		return nil // closed already, or a second Run
	}
	defer close(p.done)
	sctx := context.WithoutCancel(ctx)
	tick := time.NewTicker(p.opts.FlushInterval)
	defer tick.Stop()
	logTick := time.NewTicker(10 * time.Second)
	defer logTick.Stop()
	for {
		// The sender sleeps between ticks: handing a full batch over wakes
		// nobody (a wake-up costs the request microseconds), unless the
		// queue fills up (kick).
		select {
		case <-p.kick:
			p.sendReady(sctx)
		case <-tick.C:
			p.flushCurrent()
			p.sendReady(sctx)
		case <-logTick.C:
			p.logDrops()
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(sctx, p.opts.FlushTimeout)
			p.drain(dctx)
			cancel()
			return nil
		case <-p.stop:
			p.drain(sctx) // Close bounds the wait with its own context
			return nil
		}
	}
}

// sendReady sends the batches waiting.
func (p *Publisher) sendReady(ctx context.Context) {
	for {
		select {
		case b := <-p.ready:
			p.send(ctx, b)
		default:
			return
		}
	}
}

// Close stops accepting events, flushes the buffered ones and returns when
// they are sent (or dropped), or when ctx ends. Run returns too. Without a
// running Run, Close sends the batches itself.
func (p *Publisher) Close(ctx context.Context) error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.stopOnce.Do(func() { close(p.stop) })
	if p.running.CompareAndSwap(false, true) {
		defer close(p.done)
		p.drain(ctx)
		return ctx.Err()
	}
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("inline publisher: close: %w", ctx.Err())
	}
}

// drain refuses new events and sends every batch left, until ctx ends;
// what cannot be sent by then is dropped as closed.
func (p *Publisher) drain(ctx context.Context) {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.flushCurrent()
	for {
		select {
		case b := <-p.ready:
			if ctx.Err() != nil {
				p.drop(dropClosed, b.n)
				p.recycle(b)
				continue
			}
			p.send(ctx, b)
		default:
			p.logDrops()
			return
		}
	}
}

// send publishes one batch, retrying for RetryFor, and recycles it.
func (p *Publisher) send(ctx context.Context, b *batch) {
	defer p.recycle(b)
	p.seq++
	p.hdr.Set(nats.MsgIdHdr, p.id+"-"+strconv.FormatUint(p.seq, 10))
	msg := &nats.Msg{Subject: p.subject, Data: b.buf, Header: p.hdr}
	deadline := time.Now().Add(p.opts.RetryFor)
	back := backoff.New(20*time.Millisecond, 500*time.Millisecond)
	for {
		err := p.publish(ctx, msg)
		if err == nil {
			p.m.EventsPublished.Add(float64(b.n))
			p.m.Batches.WithLabelValues("ok").Inc()
			return
		}
		wait := back.Next()
		if ctx.Err() != nil || time.Now().Add(wait).After(deadline) {
			p.m.Batches.WithLabelValues("dropped").Inc()
			p.drop(dropDown, b.n)
			p.log.Warn("drop event batch", "err", err, "events", b.n)
			return
		}
		p.m.Batches.WithLabelValues("retry").Inc()
		if backoff.Sleep(ctx, wait) != nil {
			p.drop(dropDown, b.n)
			return
		}
	}
}

var errNotConnected = errors.New("nats not connected")

func (p *Publisher) publish(ctx context.Context, msg *nats.Msg) error {
	if !p.opts.NATS.IsConnected() {
		return errNotConnected
	}
	if p.opts.JetStream == nil {
		return p.opts.NATS.PublishMsg(msg)
	}
	ctx, cancel := context.WithTimeout(ctx, p.opts.PublishTimeout)
	defer cancel()
	_, err := p.opts.JetStream.PublishMsg(ctx, msg)
	return err
}

func (p *Publisher) recycle(b *batch) {
	b.buf, b.n = b.buf[:0], 0
	p.free <- b
}

// logDrops logs the events dropped since the last call, per reason.
func (p *Publisher) logDrops() {
	for i := range p.drops {
		if n := p.drops[i].pending.Swap(0); n > 0 {
			p.log.Warn("dropped request events", "reason", p.drops[i].reason, "events", n)
		}
	}
}
