package pipeline

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/ratemon/ratemon/limiter"
	"github.com/ratemon/ratemon/pipeline/event"
)

// batch groups the counted events of one ingest batch per limit key and,
// inside a key, per NATS message (the unit of redelivery).
type batch struct {
	rules   *limiter.Ruleset
	index   map[limiter.LimitKey]int
	appends []limiter.KeyAppend
	keyBuf  []byte // MatchEach's buffer, kept from event to event

	// The counted events of the message being decoded, by index in
	// appends; place gives them one array per message (slot: scratch per
	// index, zero between messages).
	pending []pendingEvent
	slot    []int
	// decoded holds the stream sequences of the messages decoded so far;
	// again counts the second copies of them left out (addMessage).
	decoded map[uint64]struct{}
	again   int
}

type pendingEvent struct {
	ka int
	ev limiter.Event
}

func newBatch(rs *limiter.Ruleset) *batch {
	return &batch{rules: rs, index: map[limiter.LimitKey]int{}, keyBuf: make([]byte, 0, 256), decoded: map[uint64]struct{}{}}
}

// reset empties b for the next batch of a loop, under rules rs, keeping its
// map and slices: growing them again for every batch was a third of what
// ingestion allocated (and so of the collector's work) at a paced load.
// Only b's own scratch is reused: the events' arrays, which the holder
// may keep, and the keys' lists of messages are new in every batch, and
// the old entries are cleared so that they do not keep the last batch's
// events alive.
func (b *batch) reset(rs *limiter.Ruleset) {
	b.rules = rs
	clear(b.index)
	clear(b.decoded)
	b.again = 0
	clear(b.appends)
	b.appends = b.appends[:0]
	b.slot = b.slot[:0]
	clear(b.pending)
	b.pending = b.pending[:0]
}

// add matches e against the rules and records it, pending, under every
// limit key it counts for. A key already in the batch costs no string of
// its own.
func (b *batch) add(e *event.Event) {
	// e's strings share one allocation with all its fields; the batch may
	// be held for a while, so it keeps its own copy of the id, and none
	// (not even an empty slice of that allocation) when there is no id.
	id := ""
	b.rules.MatchEach(e, b.keyBuf[:0], func(group int, key []byte, mask uint64) {
		if cap(key) > cap(b.keyBuf) { // a longer key: keep its array
			b.keyBuf = key[:0]
		}
		if id == "" && e.ID != "" {
			id = strings.Clone(e.ID)
		}
		i, ok := b.index[limiter.LimitKey(key)]
		if !ok {
			k := limiter.LimitKey(key)
			i = len(b.appends)
			b.index[k] = i
			b.appends = append(b.appends, limiter.KeyAppend{Key: k, Group: &b.rules.Groups()[group]})
			b.slot = append(b.slot, 0)
		}
		b.pending = append(b.pending, pendingEvent{ka: i, ev: limiter.Event{TS: e.TS, Weight: e.Weight, Mask: mask, ID: id}})
	})
}

// place files the pending events of message seq under their keys, each
// key's events in one limiter.Message whose events share one array for the
// whole message (one allocation per message, not one per key and
// message). A key whose last message is seq already (messages without
// a sequence, 0, which nothing tells apart) takes the events into it.
func (b *batch) place(seq uint64) {
	if len(b.pending) == 0 {
		return
	}
	// The keys new to the batch take their lists of one message from one
	// array: one allocation per message rather than one per key (a key's
	// second message in the batch grows its list as usual).
	fresh := 0
	for _, p := range b.pending {
		if b.slot[p.ka] == 0 && b.appends[p.ka].Messages == nil {
			fresh++
		}
		b.slot[p.ka]++
	}
	var lists []limiter.Message
	if fresh > 0 {
		lists = make([]limiter.Message, fresh)
	}
	arr := make([]limiter.Event, len(b.pending))
	off := 0
	for _, p := range b.pending {
		ka := &b.appends[p.ka]
		if n := b.slot[p.ka]; n > 0 { // the key's first event of this message
			if last := len(ka.Messages) - 1; last >= 0 && ka.Messages[last].Seq == seq {
				b.slot[p.ka] = -(last + 1)
			} else {
				m := limiter.Message{Seq: seq, Events: arr[off : off : off+n]}
				if ka.Messages == nil {
					lists[0] = m
					ka.Messages, lists = lists[:1:1], lists[1:]
				} else {
					ka.Messages = append(ka.Messages, m)
				}
				b.slot[p.ka] = -len(ka.Messages)
				off += n
			}
		}
		m := &ka.Messages[-b.slot[p.ka]-1]
		m.Events = append(m.Events, p.ev)
	}
	for _, p := range b.pending {
		b.slot[p.ka] = 0
	}
	b.pending = b.pending[:0]
}

// addMessage decodes one NATS message into the batch: the events take the
// message's service when they name none, the time JetStream stored the
// message when they carry no ts, and that time again when they are stamped
// more than skew after it (clamped, counted in the result). accepted gets
// the service of every event added; reject every element refused.
//
// A message whose sequence (not 0) the batch has decoded already adds
// nothing: JetStream delivered it twice (its acknowledgement wait ran out
// while the first copy waited in the pull buffer), its events are the
// same, and its reply is acknowledged with the first copy's (records).
// Filed into the first copy's message, its events would be counted twice:
// the script knows a message again by its sequence, not its events.
func (b *batch) addMessage(data []byte, seq uint64, storedMS int64, svc string, lim event.Limits, skew int64,
	accepted func(service string), reject func(event.Reject)) (clamped int) {
	if seq != 0 {
		if _, again := b.decoded[seq]; again {
			b.again++
			return 0
		}
		b.decoded[seq] = struct{}{}
	}
	event.Decode(data, lim, func(e event.Event) {
		if e.Service == "" {
			e.Service = svc
		}
		switch {
		case !e.HasTS():
			e.TS = storedMS
		case e.TS > storedMS+skew:
			e.TS = storedMS
			clamped++
		}
		b.add(&e)
		if accepted != nil {
			accepted(e.Service)
		}
	}, reject)
	b.place(seq)
	return clamped
}

// process stores one batch and acknowledges it, decoding it into b (reset
// first: each batch loop reuses its own). On error nothing is acknowledged
// and the caller arranges redelivery.
func (in *Ingest) process(ctx context.Context, b *batch, msgs []jetstream.Msg) error {
	start := time.Now()
	cfg := in.opts.Config
	b.reset(in.opts.Rules())
	lim := event.Limits{MaxPayloadBytes: cfg.MaxPayloadBytes, MaxFieldBytes: cfg.MaxFieldBytes}
	skew := cfg.MaxSkew.Milliseconds()
	perService := map[string][2]int{} // accepted, rejected
	var clamped, dead int
	var deadErr error
	seqs := make([]uint64, len(msgs))
	for i, msg := range msgs {
		var seq uint64
		stored := start
		if meta, err := msg.Metadata(); err == nil {
			seq, stored = meta.Sequence.Stream, meta.Timestamp
			in.m.Delivery.Observe(max(start.Sub(stored), 0).Seconds())
		}
		seqs[i] = seq
		storedMS := stored.UnixMilli()
		subject := msg.Subject()
		svc := in.serviceOf(subject)
		msgDead := false
		clamped += b.addMessage(msg.Data(), seq, storedMS, svc, lim, skew, func(service string) {
			c := perService[service]
			c[0]++
			perService[service] = c
		}, func(r event.Reject) {
			msgDead = true
			dead++
			c := perService[svc]
			c[1]++
			perService[svc] = c
			in.m.Rejected.WithLabelValues(string(r.Reason)).Inc()
			if err := in.dead.publish(DeadLetter{
				Reason: string(r.Reason), Detail: r.Detail, Subject: subject, StreamSeq: seq,
				Index: r.Index, Received: stored, Data: string(r.Raw),
			}); err != nil && deadErr == nil {
				deadErr = fmt.Errorf("publish dead letter: %w", err)
			}
		})
		if msgDead {
			in.m.Messages.WithLabelValues("dead").Inc()
		}
	}
	if deadErr != nil {
		in.m.Errors.WithLabelValues("nats", "publish").Inc()
		return deadErr
	}
	var res limiter.AppendResult
	var err error
	if in.hold != nil {
		err = in.storeHeld(ctx, msgs, seqs, b)
	} else {
		res, err = in.store(ctx, msgs, b)
	}
	if err != nil {
		return err
	}
	res.DupMessages += int64(b.again) // second copies of a message in this batch, not counted again
	in.countResult(res)
	in.m.Messages.WithLabelValues("ok").Add(float64(len(msgs)))
	in.m.Clamped.Add(float64(clamped))
	for svc, c := range perService {
		label := in.m.service(svc)
		if c[0] > 0 {
			in.m.Events.WithLabelValues(label, "accepted").Add(float64(c[0]))
		}
		if c[1] > 0 {
			in.m.Events.WithLabelValues(label, "rejected").Add(float64(c[1]))
		}
	}
	in.m.BatchSize.Observe(float64(len(msgs)))
	in.m.BatchSeconds.WithLabelValues("ingest").Observe(time.Since(start).Seconds())
	return nil
}

// store writes a batch to Redis and acknowledges it: appended with a work
// notice per shard, or appended and evaluated inline.
func (in *Ingest) store(ctx context.Context, msgs []jetstream.Msg, b *batch) (limiter.AppendResult, error) {
	var res limiter.AppendResult
	var evals []limiter.Evaluation
	var err error
	if in.opts.Config.Evaluation == EvaluateWorkers {
		if res, err = in.opts.Store.Append(ctx, in.floor.Load(), b.appends); err != nil {
			in.m.Errors.WithLabelValues("redis", "append").Inc()
			return res, err
		}
		if err := in.notify(ctx, b.appends); err != nil {
			in.m.Errors.WithLabelValues("redis", "notice").Inc()
			return res, err
		}
	} else {
		if res, evals, err = in.opts.Store.AppendEvaluate(ctx, in.floor.Load(), b.appends); err != nil {
			in.m.Errors.WithLabelValues("redis", "append").Inc()
			return res, err
		}
	}
	if in.opts.AfterStore != nil {
		if err := in.opts.AfterStore(msgs); err != nil {
			return res, fmt.Errorf("after store: %w", err)
		}
	}
	// Decisions go out before the ack: the sooner checkers hear, the better,
	// and a redelivered message changes no flag.
	in.rep.report(ctx, evals)
	in.ackAll(msgs)
	return res, nil
}

// countResult counts what the store found in an append.
func (in *Ingest) countResult(res limiter.AppendResult) {
	in.m.Messages.WithLabelValues("redelivered").Add(float64(res.DupMessages))
	in.m.Duplicates.WithLabelValues("message").Add(float64(res.DupMessages))
	in.m.Duplicates.WithLabelValues("id").Add(float64(res.DupIDs))
	in.m.Late.Add(float64(res.Dropped))
}

// notify writes one work notice per shard listing the batch's limit keys of
// that shard. It runs after the window logs are written, so a worker that
// reads a notice finds the events it announces.
func (in *Ingest) notify(ctx context.Context, appends []limiter.KeyAppend) error {
	if len(appends) == 0 {
		return nil
	}
	perShard := map[int][]string{}
	for _, ka := range appends {
		s := ShardOf(ka.Key, in.opts.Shards)
		perShard[s] = append(perShard[s], string(ka.Key))
	}
	keys := in.opts.Store.Keys()
	pipe := in.opts.Redis.Pipeline()
	for s, lks := range perShard {
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: keys.Work(s), Values: []any{"k", strings.Join(lks, "\n")}})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("write work notices: %w", err)
	}
	return nil
}
