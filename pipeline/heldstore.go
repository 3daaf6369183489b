package pipeline

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ratemon/ratemon/limiter"
)

// storeHeld plans a batch through the holder, sends what must go now, and
// acknowledges every message whose shares are all stored. On error the
// batch's messages are failed, to be negatively acknowledged by the caller,
// and the other messages of the failed sends are negatively acknowledged
// here.
func (in *Ingest) storeHeld(ctx context.Context, msgs []jetstream.Msg, seqs []uint64, b *batch) error {
	in.peekRooms(ctx, b)
	recs := records(msgs, seqs, in.opts.AfterStore != nil)
	sends, why := in.hold.plan(b.rules, b.appends, recs, time.Now(), limiter.NowMS(in.opts.Clock))
	ack, nak, err := in.send(ctx, sends, why)
	if err != nil {
		in.hold.release(recs, true)
		in.nakRecs(notIn(nak, recs), time.Second)
		return err
	}
	ack = append(ack, in.hold.release(recs, false)...)
	return in.ackRecs(ack, recs)
}

// peekRooms learns the rooms of the batch's keys that this daemon has never
// sent from their state in Redis (limiter.Store.Peek), so that their first
// events can be held rather than each costing a script call: a daemon that
// starts knows no room, and 10,000 keys would cost 10,000 calls before the
// first is held. A failed read leaves them unknown: they are sent, as
// without it.
func (in *Ingest) peekRooms(ctx context.Context, b *batch) {
	kas := in.hold.unknown(b.rules, b.appends)
	if len(kas) == 0 {
		return
	}
	evals, ok, err := in.opts.Store.Peek(ctx, kas)
	if err != nil {
		in.m.Errors.WithLabelValues("redis", "peek").Inc()
		in.log.Debug("key states not read, their events go to redis", "err", err, "keys", len(kas))
		return
	}
	learnt, unknown := in.hold.learn(b.rules, kas, evals, ok)
	in.m.HoldPeeks.WithLabelValues("room").Add(float64(learnt))
	in.m.HoldPeeks.WithLabelValues("unknown").Add(float64(unknown))
}

// send appends and evaluates sends in one pipelined round, reports the
// evaluations and returns the records now complete and those failed.
func (in *Ingest) send(ctx context.Context, sends []send, why map[string]int) (ack, nak []*msgRec, err error) {
	for reason, n := range why {
		in.m.HoldSends.WithLabelValues(reason).Add(float64(n))
	}
	if len(sends) == 0 {
		return nil, nil, nil
	}
	kas := make([]limiter.KeyAppend, len(sends))
	for i := range sends {
		kas[i] = sends[i].ka
	}
	res, evals, err := in.opts.Store.AppendEvaluate(ctx, in.floor.Load(), kas)
	ack, nak = in.hold.done(sends, evals, err != nil)
	if err != nil {
		in.m.Errors.WithLabelValues("redis", "append").Inc()
		return ack, nak, err
	}
	in.countResult(res)
	in.rep.report(ctx, evals)
	return ack, nak, nil
}

// ackRecs acknowledges complete records, after the AfterStore hook; when
// the hook fails, they and the batch's records are failed instead.
func (in *Ingest) ackRecs(ack []*msgRec, batch map[uint64]*msgRec) error {
	if len(ack) == 0 {
		return nil
	}
	if in.opts.AfterStore != nil {
		if err := in.opts.AfterStore(heldMessages(ack)); err != nil {
			in.nakRecs(in.hold.fail(ack, batch), time.Second)
			return fmt.Errorf("after store: %w", err)
		}
	}
	in.replyAll(ack, []byte(ackBody))
	return nil
}

// ackBody is JetStream's acknowledgement, as jetstream.Msg.Ack sends it.
const ackBody = "+ACK"

// nakRecs negatively acknowledges records: JetStream delivers their
// messages again after d.
func (in *Ingest) nakRecs(recs []*msgRec, d time.Duration) {
	if len(recs) == 0 {
		return
	}
	in.replyAll(recs, fmt.Appendf(nil, "-NAK {\"delay\": %d}", d.Nanoseconds()))
	in.m.Messages.WithLabelValues("retry").Add(float64(len(recs)))
}

// replyAll publishes body on the ack subject of every delivery of recs,
// as jetstream.Msg's Ack and NakWithDelay do (without waiting for a
// reply).
func (in *Ingest) replyAll(recs []*msgRec, body []byte) {
	for _, r := range recs {
		for _, reply := range r.replies {
			if err := in.opts.Conn.Publish(reply, body); err != nil {
				in.m.Errors.WithLabelValues("nats", "ack").Inc()
			}
		}
	}
}

// flusher sends the held events that are due, until ctx is cancelled; Run
// sends the rest once the batches in hand are done.
func (in *Ingest) flusher(ctx context.Context) {
	tick := min(max(in.opts.Config.Hold/100, 5*time.Millisecond), 10*time.Millisecond)
	t := time.NewTicker(tick)
	defer t.Stop()
	lastSweep := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if in.opts.Gate != nil {
			if err := in.opts.Gate(ctx); err != nil {
				return
			}
		}
		now := time.Now()
		sends, why := in.hold.due(now)
		in.flush(ctx, sends, why)
		events, msgs := in.hold.stats()
		in.m.HeldEvents.Set(float64(events))
		in.m.HeldMessages.Set(float64(msgs))
		if now.Sub(lastSweep) >= 10*time.Second {
			in.hold.sweep(now.Add(-max(10*time.Second, 4*in.opts.Config.Hold)))
			lastSweep = now
		}
	}
}

// flush sends held events outside a batch; on failure their messages are
// negatively acknowledged.
func (in *Ingest) flush(ctx context.Context, sends []send, why map[string]int) {
	if len(sends) == 0 && len(why) == 0 {
		return
	}
	pctx, cancel := in.processContext(ctx)
	defer cancel()
	ack, nak, err := in.send(pctx, sends, why)
	if err != nil {
		in.log.Warn("held events not stored, their messages will be redelivered", "err", err, "keys", len(sends))
		in.nakRecs(nak, time.Second)
		return
	}
	if err := in.ackRecs(ack, nil); err != nil {
		in.log.Warn("held events stored, their messages will be redelivered", "err", err)
	}
}
