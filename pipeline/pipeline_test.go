package pipeline_test

import (
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/internal/modelcheck"
	"github.com/ratemon/ratemon/internal/tracegen"
	"github.com/ratemon/ratemon/limiter"
	"github.com/ratemon/ratemon/pipeline"
	"github.com/ratemon/ratemon/pipeline/event"
)

func pipelineRules() []limiter.Rule {
	return []limiter.Rule{
		{Name: "burst", Limit: 15, Window: 10 * time.Second},
		{Name: "minute", Limit: 60, Window: time.Minute},
		{Name: "shadow", Limit: 25, Window: 30 * time.Second, Action: limiter.ActionShadow},
		{Name: "fixed", Limit: 10, Window: 5 * time.Second, DenyFor: 2 * time.Minute},
		{Name: "per-route", Key: []limiter.Field{limiter.FieldClient, limiter.FieldRoute}, Limit: 12, Window: 20 * time.Second},
		{Name: "login", Key: []limiter.Field{limiter.FieldIP}, Match: limiter.Match{Route: "POST /login"}, Limit: 5, Window: 10 * time.Second, DenyFor: 5 * time.Minute},
	}
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

// compare requires the store and its flags to agree with the model.
func compare(t *testing.T, h *harness, model *limiter.Model, now int64, started time.Time) (flags int) {
	t.Helper()
	rep, err := modelcheck.Compare(t.Context(), modelcheck.Options{
		Store: h.store, Rules: h.rules, Redis: h.rdb, Keys: h.keys, Model: model, Now: now, Started: started,
	})
	require.NoError(t, err)
	require.NotZero(t, rep.Keys)
	require.Empty(t, rep.Mismatches)
	return rep.Flags
}

func TestPipeline_matchesModel(t *testing.T) {
	modes(t, func(t *testing.T, mode pipeline.Evaluation) {
		started := time.Now()
		now := started.UnixMilli()
		clock := limiter.FixedClock(time.UnixMilli(now))
		h := newHarnessMode(t, pipelineRules(), clock, mode)
		trace := tracegen.Generate(tracegen.Options{
			Seed: 7, Now: now, Span: 90 * time.Second, Events: 4000, Clients: 15, Zipf: 1.2,
			OutOfOrder: 0.3, Jitter: 3 * time.Second, Late: 0.02, Duplicates: 0.05,
			Edges: []time.Duration{10 * time.Second, time.Minute, 5 * time.Second}, BurstSize: 15, MaxWeight: 2,
			Routes: []string{"GET /stocks/{symbol}/history", "POST /login"}, IPs: 6, Refused: 0.03,
		})
		h.start(nil)
		h.publish("stocks", trace, 40)
		h.waitDrained(30 * time.Second)
		model := modelOf(h.rules, now, trace)
		flags := compare(t, h, model, now, started)
		require.Positive(t, flags)

		// The top keys of every rule are the model's busiest keys.
		for gi, g := range h.rules.Groups() {
			for ri, r := range g.Rules {
				type kc struct {
					key   limiter.LimitKey
					count int64
				}
				var want []kc
				for _, k := range model.Keys() {
					if sh, _ := limiter.ShapeOf(k); !sh.Equal(g.Shape) {
						continue
					}
					if c := model.Evaluate(now, k).Rules[ri].Count; c > 0 {
						want = append(want, kc{k, c})
					}
				}
				sort.Slice(want, func(i, j int) bool {
					if want[i].count != want[j].count {
						return want[i].count > want[j].count
					}
					return want[i].key < want[j].key
				})
				got, err := h.store.Top(t.Context(), h.rules, r.Name, 5, 4)
				require.NoError(t, err)
				require.Len(t, got, min(5, len(want)), "group %d rule %s", gi, r.Name)
				for i := range got {
					require.Equal(t, want[i].key, got[i].Key, "rule %s rank %d", r.Name, i)
					require.Equal(t, want[i].count, got[i].Count, "rule %s rank %d", r.Name, i)
				}
			}
		}
	})
}

func TestPipeline_redeliveredMessageCountedOnce(t *testing.T) {
	modes(t, func(t *testing.T, mode pipeline.Evaluation) {
		started := time.Now()
		now := started.UnixMilli()
		clock := limiter.FixedClock(time.UnixMilli(now))
		h := newHarnessMode(t, pipelineRules(), clock, mode)
		trace := tracegen.Generate(tracegen.Options{Seed: 3, Now: now, Span: 50 * time.Second, Events: 1500, Clients: 8})
		// The first three batches are stored in Redis and then "crash" before
		// their ack: JetStream delivers them again.
		var crashes atomic.Int32
		stop := h.start(func(_ []jetstream.Msg) error {
			if crashes.Add(1) <= 3 {
				return errors.New("simulated crash between redis write and ack")
			}
			return nil
		})
		h.publish("stocks", trace, 25)
		h.waitDrained(30 * time.Second)
		stop()
		require.GreaterOrEqual(t, crashes.Load(), int32(4))
		require.Positive(t, testutilValue(h.metrics.Duplicates.WithLabelValues("message")))
		compare(t, h, modelOf(h.rules, now, trace), now, started)
	})
}

func TestPipeline_backlogReplayEqualsLive(t *testing.T) {
	modes(t, func(t *testing.T, mode pipeline.Evaluation) {
		started := time.Now()
		now := started.UnixMilli()
		clock := limiter.FixedClock(time.UnixMilli(now))
		h := newHarnessMode(t, pipelineRules(), clock, mode)
		// Ten minutes of traffic, stamped with its own times, waiting in the
		// stream while no daemon ran.
		trace := tracegen.Generate(tracegen.Options{
			Seed: 11, Now: now, Span: 10 * time.Minute, Events: 12000, Clients: 10, Zipf: 1.1,
			Edges: []time.Duration{10 * time.Second, time.Minute, 2 * time.Minute}, BurstSize: 20,
			Routes: []string{"GET /stocks/{symbol}/history", "POST /login"}, IPs: 4,
		})
		h.publish("stocks", trace, 100)
		start := time.Now()
		h.start(nil)
		h.waitDrained(60 * time.Second)
		t.Logf("replayed %d events in %v", len(trace), time.Since(start))
		flags := compare(t, h, modelOf(h.rules, now, trace), now, started)
		require.Positive(t, flags)
	})
}

func TestPipeline_badEventsAreDeadLettered(t *testing.T) {
	started := time.Now()
	now := started.UnixMilli()
	h := newHarness(t, pipelineRules(), limiter.FixedClock(time.UnixMilli(now)))
	sub, err := h.nc.SubscribeSync(h.subjects.DeadLetter())
	require.NoError(t, err)
	h.start(nil)
	good := `{"client":"ok","ts":` + itoa(now-1000) + `}`
	cases := map[string]string{
		"missing_client": `{"ts":` + itoa(now) + `}`,
		"bad_ts":         `{"client":"x","ts":"yesterday"}`,
		"bad_weight":     `{"client":"x","weight":0}`,
		"invalid_json":   `{"client":`,
		"not_object":     `[1]`,
		"field_too_long": `{"client":"` + strings.Repeat("a", 2000) + `"}`,
	}
	for _, bad := range cases {
		h.publishRaw("stocks", []byte(good+"\n"+bad+"\n"+good))
	}
	got := map[string]bool{}
	deadline := time.Now().Add(10 * time.Second)
	for len(got) < len(cases) && time.Now().Before(deadline) {
		m, err := sub.NextMsg(time.Until(deadline))
		if errors.Is(err, nats.ErrTimeout) {
			break
		}
		require.NoError(t, err)
		var dl pipeline.DeadLetter
		require.NoError(t, json.Unmarshal(m.Data, &dl))
		require.NotEmpty(t, dl.Detail)
		require.Equal(t, h.subjects.Events("stocks"), dl.Subject)
		require.Positive(t, dl.StreamSeq)
		got[dl.Reason] = true
	}
	for reason := range cases {
		require.True(t, got[reason], "no dead letter with reason %s (got %v)", reason, got)
	}
	h.waitDrained(10 * time.Second)
	evals, err := h.store.Evaluate(t.Context(), h.rules, []limiter.LimitKey{"client=ok"})
	require.NoError(t, err)
	require.Equal(t, int64(2*len(cases)), evals[0].Rules[0].Count, "good events around bad ones are all counted")
}
