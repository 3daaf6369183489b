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
	hits    []limiter.Hit
}

func newBatch(rs *limiter.Ruleset) *batch {
	return &batch{rules: rs, index: map[limiter.LimitKey]int{}}
}

// add matches e against the rules and records it under every limit key it
// counts for.
func (b *batch) add(seq uint64, e *event.Event) {
	b.hits = b.rules.Match(b.hits[:0], e)
	// e's strings share one allocation with all its fields; the batch may
	// be held for a while, so it keeps its own copy of the id, and none
	// (not even an empty slice of that allocation) when there is no id.
	id := ""
	if e.ID != "" && len(b.hits) > 0 {
		id = strings.Clone(e.ID)
	}
	for _, h := range b.hits {
		i, ok := b.index[h.Key]
		if !ok {
			i = len(b.appends)
			b.index[h.Key] = i
			b.appends = append(b.appends, limiter.KeyAppend{Key: h.Key, Group: &b.rules.Groups()[h.Group]})
		}
		ka := &b.appends[i]
		if n := len(ka.Messages); n == 0 || ka.Messages[n-1].Seq != seq {
			ka.Messages = append(ka.Messages, limiter.Message{Seq: seq})
		}
		m := &ka.Messages[len(ka.Messages)-1]
		m.Events = append(m.Events, limiter.Event{TS: e.TS, Weight: e.Weight, Mask: h.Mask, ID: id})
	}
}

// addMessage decodes one NATS message into the batch: the events take the
// message's service when they name none, the time JetStream stored the
// message when they carry no ts, and that time again when they are stamped
// more than skew after it (clamped, counted in the result). accepted sees
// every event added; reject every element refused.
func (b *batch) addMessage(data []byte, seq uint64, storedMS int64, svc string, lim event.Limits, skew int64,
	accepted func(*event.Event), reject func(event.Reject)) (clamped int) {
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
		b.add(seq, &e)
		if accepted != nil {
			accepted(&e)
		}
	}, reject)
	return clamped
}

// process stores one batch and acknowledges it. On error nothing is
// acknowledged and the caller arranges redelivery.
func (in *Ingest) process(ctx context.Context, msgs []jetstream.Msg) error {
	start := time.Now()
	cfg := in.opts.Config
	b := newBatch(in.opts.Rules())
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
		clamped += b.addMessage(msg.Data(), seq, storedMS, svc, lim, skew, func(e *event.Event) {
			c := perService[e.Service]
			c[0]++
			perService[e.Service] = c
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
