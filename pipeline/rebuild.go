package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ratemon/ratemon/internal/keyspace"
	"github.com/ratemon/ratemon/limiter"
	"github.com/ratemon/ratemon/pipeline/event"
)

// RebuildOptions wires a rebuild of the windows from JetStream.
type RebuildOptions struct {
	JS       jetstream.JetStream
	Stream   string
	Subjects keyspace.Subjects
	Since    time.Duration // how far back to replay: the longest rule retention plus the skew
	Store    *limiter.Store
	Rules    *limiter.Ruleset
	Config   IngestConfig // limits and skew, as ingestion uses them
	// Report handles the evaluations of the rebuilt keys (decisions,
	// metrics); optional.
	Report func(ctx context.Context, evals []limiter.Evaluation)
	Logger *slog.Logger
}

// RebuildResult sums up a rebuild.
type RebuildResult struct {
	Messages int           // messages replayed
	Events   int64         // weight accepted into the windows
	Keys     int           // limit keys rebuilt and evaluated
	UpTo     uint64        // last stream sequence replayed
	Took     time.Duration // wall time
}

// Rebuild replays the events JetStream retains from Since ago up to the
// stream's last message at the start, into the window logs, exactly as
// ingestion would (the same decoding, clamping and matching; messages
// already applied are recognised by their sequence), then evaluates every
// key it touched. Nothing is acknowledged: it reads through its own ordered
// consumer and leaves the shared durable consumer alone.
func Rebuild(ctx context.Context, o RebuildOptions) (RebuildResult, error) {
	start := time.Now()
	var res RebuildResult
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s, err := o.JS.Stream(ctx, o.Stream)
	if err != nil {
		return res, fmt.Errorf("rebuild: look up stream %s: %w", o.Stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return res, fmt.Errorf("rebuild: stream info: %w", err)
	}
	target := info.State.LastSeq
	if target == 0 || info.State.Msgs == 0 {
		res.Took = time.Since(start)
		return res, nil
	}
	from := start.Add(-o.Since)
	cons, err := o.JS.OrderedConsumer(ctx, o.Stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{o.Subjects.EventsAll()},
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy,
		OptStartTime:   &from,
	})
	if err != nil {
		return res, fmt.Errorf("rebuild: ordered consumer: %w", err)
	}
	lim := event.Limits{MaxPayloadBytes: o.Config.MaxPayloadBytes, MaxFieldBytes: o.Config.MaxFieldBytes}
	skew := o.Config.MaxSkew.Milliseconds()
	touched := map[limiter.LimitKey]bool{}
	batchSize := max(o.Config.BatchSize, 100)
	for res.UpTo < target {
		fetched, err := cons.Fetch(batchSize, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return res, fmt.Errorf("rebuild: fetch: %w", err)
		}
		b := newBatch(o.Rules)
		n := 0
		for m := range fetched.Messages() {
			meta, err := m.Metadata()
			if err != nil {
				continue
			}
			seq := meta.Sequence.Stream
			res.UpTo = max(res.UpTo, seq)
			if seq > target {
				continue
			}
			n++
			svc := o.Subjects.ServiceOf(m.Subject())
			b.addMessage(m.Data(), seq, meta.Timestamp.UnixMilli(), svc, lim, skew, nil, nil)
		}
		if err := fetched.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, context.DeadlineExceeded) {
			return res, fmt.Errorf("rebuild: fetch: %w", err)
		}
		if n == 0 {
			break // nothing left before the target (the rest has aged out)
		}
		res.Messages += n
		ar, err := o.Store.Append(ctx, 0, b.appends)
		if err != nil {
			return res, fmt.Errorf("rebuild: %w", err)
		}
		res.Events += ar.Accepted
		for _, ka := range b.appends {
			touched[ka.Key] = true
		}
	}
	keys := make([]limiter.LimitKey, 0, len(touched))
	for k := range touched {
		keys = append(keys, k)
	}
	for i := 0; i < len(keys); i += 1000 {
		evals, err := o.Store.Evaluate(ctx, o.Rules, keys[i:min(i+1000, len(keys))])
		if err != nil {
			return res, fmt.Errorf("rebuild: %w", err)
		}
		if o.Report != nil {
			o.Report(ctx, evals)
		}
	}
	res.Keys = len(keys)
	res.Took = time.Since(start)
	return res, nil
}
