package limiter_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/internal/modelcheck"
	"github.com/ratemon/ratemon/internal/testenv"
	"github.com/ratemon/ratemon/internal/tracegen"
	"github.com/ratemon/ratemon/limiter"
	"github.com/ratemon/ratemon/pipeline/event"
)

func modelRules() []limiter.Rule {
	return []limiter.Rule{
		{Name: "burst", Limit: 12, Window: 5 * time.Second},
		{Name: "sustained", Limit: 40, Window: 30 * time.Second},
		{Name: "shadow-minute", Limit: 60, Window: time.Minute, Action: limiter.ActionShadow},
		{Name: "fixed", Limit: 8, Window: 3 * time.Second, DenyFor: 20 * time.Second},
		{Name: "watch", Limit: 25, Window: 20 * time.Second, Action: limiter.ActionAlert, Match: limiter.Match{Route: "GET /stocks/*"}},
		{Name: "per-route", Key: []limiter.Field{limiter.FieldClient, limiter.FieldRoute}, Limit: 10, Window: 10 * time.Second},
		{Name: "ip-fixed", Key: []limiter.Field{limiter.FieldIP}, Limit: 30, Window: 10 * time.Second, DenyFor: time.Minute, CountRefused: true},
	}
}

// message is one NATS message of the trace: its stream sequence and events.
type message struct {
	seq    uint64
	events []event.Event
}

// batches cuts a trace into messages of 1..15 events, redelivers some of
// them later, and groups messages into batches of 1..30.
func batches(rng *rand.Rand, evs []event.Event) [][]message {
	var msgs []message
	seq := uint64(0)
	for i := 0; i < len(evs); {
		n := 1 + rng.IntN(15)
		seq++
		msgs = append(msgs, message{seq: seq, events: evs[i:min(i+n, len(evs))]})
		i += n
	}
	var withRedelivery []message
	for i, m := range msgs {
		withRedelivery = append(withRedelivery, m)
		if rng.IntN(10) == 0 && i > 3 {
			withRedelivery = append(withRedelivery, msgs[i-rng.IntN(4)])
		}
	}
	var out [][]message
	for i := 0; i < len(withRedelivery); {
		n := 1 + rng.IntN(30)
		out = append(out, withRedelivery[i:min(i+n, len(withRedelivery))])
		i += n
	}
	return out
}

// toAppends matches every event of a batch against the rules and groups
// them per limit key and message, as ingestion does.
func toAppends(rs *limiter.Ruleset, batch []message) []limiter.KeyAppend {
	idx := map[limiter.LimitKey]int{}
	var out []limiter.KeyAppend
	var hits []limiter.Hit
	for _, m := range batch {
		for i := range m.events {
			e := m.events[i]
			hits = rs.Match(hits[:0], &e)
			for _, h := range hits {
				j, ok := idx[h.Key]
				if !ok {
					j = len(out)
					idx[h.Key] = j
					out = append(out, limiter.KeyAppend{Key: h.Key, Group: &rs.Groups()[h.Group]})
				}
				ka := &out[j]
				if n := len(ka.Messages); n == 0 || ka.Messages[n-1].Seq != m.seq {
					ka.Messages = append(ka.Messages, limiter.Message{Seq: m.seq})
				}
				mm := &ka.Messages[len(ka.Messages)-1]
				mm.Events = append(mm.Events, limiter.Event{TS: e.TS, Weight: e.Weight, Mask: h.Mask, ID: e.ID})
			}
		}
	}
	return out
}

func TestStore_matchesModel(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) {
			started := time.Now()
			now := started.UnixMilli()
			st, rs, _, keys := newFixture(t, modelRules(), now)
			rdb := testenv.Redis(t)
			ctx := t.Context()
			trace := tracegen.Generate(tracegen.Options{
				Seed: seed, Now: now, Span: 100 * time.Second, Events: 3000, Clients: 12, Zipf: 1.3,
				OutOfOrder: 0.3, Jitter: 4 * time.Second, Late: 0.03, Duplicates: 0.05,
				Edges: []time.Duration{5 * time.Second, 30 * time.Second, time.Minute, 3 * time.Second}, BurstSize: 12,
				MaxWeight: 3, Routes: []string{"GET /stocks/{symbol}/history", "POST /login", "GET /stocks/{symbol}"},
				IPs: 5, Refused: 0.05, Future: 0.01, FutureBy: 800 * time.Millisecond,
			})
			rng := rand.New(rand.NewPCG(seed, 99))
			model := limiter.NewModel(rs)
			for _, b := range batches(rng, trace) {
				appends := toAppends(rs, b)
				_, err := st.Append(ctx, 0, appends)
				require.NoError(t, err)
				var touched []limiter.LimitKey
				for _, ka := range appends {
					model.Add(now, ka.Key, ka.Messages)
					touched = append(touched, ka.Key)
				}
				if rng.IntN(3) == 0 {
					_, err := st.Evaluate(ctx, rs, touched)
					require.NoError(t, err)
				}
			}
			rep, err := modelcheck.Compare(ctx, modelcheck.Options{
				Store: st, Rules: rs, Redis: rdb, Keys: keys, Model: model, Now: now, Started: started,
			})
			require.NoError(t, err)
			require.Empty(t, rep.Mismatches)
			t.Logf("keys %d over %d flags %d", rep.Keys, rep.Over, rep.Flags)
			require.Greater(t, rep.Keys, 20)
			require.Positive(t, rep.Over, "the trace must push some keys over their limits")
			require.Positive(t, rep.Flags)
		})
	}
}
