package limiter_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/limiter"
)

// Peek's count never falls below the model's window count, whatever came
// since the last evaluation (appends alone, late and out-of-order events,
// duplicates), and a key never written counts 0.
func TestStore_peekBoundsTheCountFromAbove(t *testing.T) {
	now := time.Now().UnixMilli()
	rules := []limiter.Rule{
		{Name: "short", Limit: 1 << 40, Window: 2 * time.Second},
		{Name: "long", Limit: 1 << 40, Window: 10 * time.Second},
	}
	st, rs, clock, _ := newFixture(t, rules, now)
	ctx := t.Context()
	g := &rs.Groups()[0]
	model := limiter.NewModel(rs)
	rng := rand.New(rand.NewPCG(7, 11))
	keys := []limiter.LimitKey{"client=a", "client=b", "client=c"}

	evs, ok, err := st.Peek(ctx, []limiter.KeyAppend{{Key: "client=new", Group: g}})
	require.NoError(t, err)
	require.Equal(t, []bool{true}, ok)
	require.Equal(t, []limiter.RuleState{{Rule: "short", Limit: 1 << 40}, {Rule: "long", Limit: 1 << 40}}, evs[0].Rules)

	seq := uint64(0)
	checked := 0
	for step := range 300 {
		now += int64(rng.IntN(400))
		clock.Set(now)
		k := keys[rng.IntN(len(keys))]
		var msgs []limiter.Message
		for range 1 + rng.IntN(3) {
			seq++
			m := limiter.Message{Seq: seq}
			if rng.IntN(10) == 0 && seq > 2 {
				m.Seq = seq - 2 // a redelivered copy, or a sequence of another key
			}
			for range 1 + rng.IntN(4) {
				ts := now - int64(rng.IntN(3000)) // late by up to 3 s, out of order
				if rng.IntN(5) == 0 {
					ts = now - 2000 - int64(rng.IntN(10)) // at the short window's edge
				}
				m.Events = append(m.Events, limiter.Event{TS: ts, Weight: 1 + int64(rng.IntN(3)), Mask: 3})
			}
			msgs = append(msgs, m)
		}
		ka := limiter.KeyAppend{Key: k, Group: g, Messages: msgs}
		if step%3 == 0 {
			_, err = st.Append(ctx, 0, []limiter.KeyAppend{ka})
		} else {
			_, _, err = st.AppendEvaluate(ctx, 0, []limiter.KeyAppend{ka})
		}
		require.NoError(t, err)
		model.Add(now, k, msgs)

		// Later, with nothing new: windows only lose events.
		later := now + int64(rng.IntN(3000))
		clock.Set(later)
		peek := make([]limiter.KeyAppend, len(keys))
		for i, k := range keys {
			peek[i] = limiter.KeyAppend{Key: k, Group: g}
		}
		evs, ok, err := st.Peek(ctx, peek)
		require.NoError(t, err)
		for i, k := range keys {
			require.True(t, ok[i], "step %d %s", step, k)
			want := model.Evaluate(later, k)
			for j := range rules {
				if len(want.Rules) == 0 {
					require.Zero(t, evs[i].Rules[j].Count)
					continue
				}
				require.GreaterOrEqual(t, evs[i].Rules[j].Count, want.Rules[j].Count, "step %d %s rule %s", step, k, rules[j].Name)
				checked++
			}
		}
		clock.Set(now)
	}
	require.Positive(t, checked)
}

// Peek refuses a key whose state holds a flag, an override or a running
// deny_for block: its room is not its count.
func TestStore_peekRefusesFlagsAndOverrides(t *testing.T) {
	now := time.Now().UnixMilli()
	st, rs, _, _ := newFixture(t, []limiter.Rule{
		{Name: "r", Limit: 3, Window: time.Minute},
		{Name: "b", Limit: 2, Window: time.Minute, DenyFor: time.Minute},
	}, now)
	ctx := t.Context()
	g := &rs.Groups()[0]
	app := func(k limiter.LimitKey, seq uint64, n int) {
		m := limiter.Message{Seq: seq}
		for i := range n {
			m.Events = append(m.Events, limiter.Event{TS: now - int64(i), Weight: 1, Mask: 1})
		}
		_, _, err := st.AppendEvaluate(ctx, 0, []limiter.KeyAppend{{Key: k, Group: g, Messages: []limiter.Message{m}}})
		require.NoError(t, err)
	}
	app("client=under", 1, 2)
	app("client=over", 2, 4)
	app("client=override", 3, 1)
	_, err := st.SetOverride(ctx, rs, limiter.Override{Key: "client=override", Rule: "r", Limit: 100}, time.Hour)
	require.NoError(t, err)
	// Rule b (deny_for, mask 2) trips, rule r (mask 1) stays at 0.
	m := limiter.Message{Seq: 4, Events: []limiter.Event{{TS: now, Weight: 2, Mask: 2}}}
	_, _, err = st.AppendEvaluate(ctx, 0, []limiter.KeyAppend{{Key: "client=blocked", Group: g, Messages: []limiter.Message{m}}})
	require.NoError(t, err)

	kas := []limiter.KeyAppend{{Key: "client=under", Group: g}, {Key: "client=over", Group: g},
		{Key: "client=override", Group: g}, {Key: "client=blocked", Group: g}}
	evs, ok, err := st.Peek(ctx, kas)
	require.NoError(t, err)
	require.Equal(t, []bool{true, false, false, false}, ok)
	require.Equal(t, int64(2), evs[0].Rules[0].Count)
}
