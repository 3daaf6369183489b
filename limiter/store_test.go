package limiter_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/internal/keyspace"
	"github.com/ratemon/ratemon/internal/testenv"
	"github.com/ratemon/ratemon/limiter"
)

// testClock is a settable clock.
type testClock struct{ ms atomic.Int64 }

func newTestClock(ms int64) *testClock {
	c := &testClock{}
	c.ms.Store(ms)
	return c
}

func (c *testClock) Now() time.Time { return time.UnixMilli(c.ms.Load()) }
func (c *testClock) Set(ms int64)   { c.ms.Store(ms) }

func newFixture(t testing.TB, rules []limiter.Rule, now int64) (*limiter.Store, *limiter.Ruleset, *testClock, keyspace.Redis) {
	t.Helper()
	rdb := testenv.Redis(t)
	keys, err := keyspace.NewRedis(testenv.Prefix(t, rdb))
	require.NoError(t, err)
	for i := range rules {
		rules[i].SetDefaults()
	}
	rs, err := limiter.NewRuleset(rules)
	require.NoError(t, err)
	clock := newTestClock(now)
	st, err := limiter.NewStore(limiter.StoreOptions{Client: rdb, Keys: keys, Clock: clock})
	require.NoError(t, err)
	// Loaded as the daemon loads it: the ingestion scripts then run as
	// Redis Functions (FCALL), the daemon's way where Redis has them.
	require.NoError(t, st.Load(t.Context()))
	return st, rs, clock, keys
}

func ev(ts int64) limiter.Event { return limiter.Event{TS: ts, Weight: 1, Mask: 1} }

func TestStore_windowDenyAndFree(t *testing.T) {
	now := time.Now().UnixMilli()
	st, rs, clock, keys := newFixture(t, []limiter.Rule{{Name: "r", Limit: 3, Window: time.Minute}}, now)
	ctx := t.Context()
	g := &rs.Groups()[0]
	k := limiter.LimitKey("client=acme")
	app := func(seq uint64, ts ...int64) {
		var evs []limiter.Event
		for _, x := range ts {
			evs = append(evs, ev(x))
		}
		_, err := st.Append(ctx, 0, []limiter.KeyAppend{{Key: k, Group: g, Messages: []limiter.Message{{Seq: seq, Events: evs}}}})
		require.NoError(t, err)
	}
	app(1, now-50_000, now-30_000)
	evs, err := st.Evaluate(ctx, rs, []limiter.LimitKey{k})
	require.NoError(t, err)
	require.Len(t, evs, 1)
	require.Empty(t, evs[0].Changes)
	require.Equal(t, int64(2), evs[0].Rules[0].Count)

	app(2, now-10_000)
	evs, err = st.Evaluate(ctx, rs, []limiter.LimitKey{k})
	require.NoError(t, err)
	require.Len(t, evs[0].Changes, 1)
	ch := evs[0].Changes[0]
	require.Equal(t, limiter.FlagDeny, ch.Kind)
	require.False(t, ch.Allowed)
	require.Equal(t, now+10_000, ch.Until, "the flag ends when the oldest of the 3 leaves the window")

	rdb := testenv.Redis(t)
	val, err := rdb.Get(ctx, keys.Deny(string(k))).Result()
	require.NoError(t, err)
	f, err := limiter.ParseFlag([]byte(val))
	require.NoError(t, err)
	require.Equal(t, "r", f.Rule)
	require.Equal(t, now+10_000, f.Until)
	pttl, err := rdb.PTTL(ctx, keys.Deny(string(k))).Result()
	require.NoError(t, err)
	require.InDelta(t, 10_000, pttl.Milliseconds(), 1000)

	// The same message redelivered counts once.
	app(2, now-10_000)
	evs, err = st.Evaluate(ctx, rs, []limiter.LimitKey{k})
	require.NoError(t, err)
	require.Equal(t, int64(3), evs[0].Rules[0].Count)
	require.Empty(t, evs[0].Changes)

	// Once the window frees up the key is under its limit again.
	clock.Set(now + 10_000)
	evs, err = st.Evaluate(ctx, rs, []limiter.LimitKey{k})
	require.NoError(t, err)
	require.Equal(t, int64(2), evs[0].Rules[0].Count)
	require.False(t, evs[0].Rules[0].Over)
}

func TestStore_denyForTrips(t *testing.T) {
	now := time.Now().UnixMilli()
	st, rs, _, _ := newFixture(t, []limiter.Rule{{Name: "login", Key: []limiter.Field{limiter.FieldIP}, Limit: 3, Window: 10 * time.Second, DenyFor: 15 * time.Minute}}, now)
	ctx := t.Context()
	g := &rs.Groups()[0]
	k := limiter.LimitKey("ip=10.0.0.1")
	// Three attempts within 10 s, five minutes ago: blocked until 15 min after the third.
	trip := now - 300_000
	_, err := st.Append(ctx, 0, []limiter.KeyAppend{{Key: k, Group: g, Messages: []limiter.Message{{Seq: 7, Events: []limiter.Event{ev(trip - 8000), ev(trip - 4000), ev(trip)}}}}})
	require.NoError(t, err)
	evs, err := st.Evaluate(ctx, rs, []limiter.LimitKey{k})
	require.NoError(t, err)
	require.Len(t, evs[0].Changes, 1, "%+v", evs)
	require.Equal(t, trip+15*60_000, evs[0].Changes[0].Until)
	require.Equal(t, int64(0), evs[0].Rules[0].Count, "the attempts left the window long ago")
}

// TestStore_packedEventsCountAsTheLongForm appends the same events to two
// keys: packed (every rule counts them, no id) and in the long form (one
// event carries an id, which forces it for the whole message). Weights and
// times that use every byte of the packed form must count the same, a
// duplicate message once, in both.
func TestStore_packedEventsCountAsTheLongForm(t *testing.T) {
	now := time.Now().UnixMilli()
	st, rs, _, _ := newFixture(t, []limiter.Rule{
		{Name: "a", Limit: 100_000_000, Window: time.Hour},
		{Name: "b", Limit: 100_000_000, Window: 10 * time.Minute},
	}, now)
	ctx := t.Context()
	g := &rs.Groups()[0]
	weights := []int64{1, 255, 256, 65_535, 65_536, 999_999, 1_000_000, 7}
	offsets := []int64{0, 1, 255, 256, 65_536, 300_000, 3_599_000, 42}
	var packed, long []limiter.Event
	var want int64
	for i, w := range weights {
		e := limiter.Event{TS: now - offsets[i], Weight: w, Mask: 3}
		packed = append(packed, e)
		long = append(long, e)
		want += w
	}
	long[0].ID = "first"
	kp, kl := limiter.LimitKey("client=packed"), limiter.LimitKey("client=long")
	batch := []limiter.KeyAppend{
		{Key: kp, Group: g, Messages: []limiter.Message{{Seq: 10, Events: packed}, {Seq: 11, Events: packed[:1]}}},
		{Key: kl, Group: g, Messages: []limiter.Message{{Seq: 10, Events: long}, {Seq: 11, Events: packed[:1]}}},
	}
	var inTen int64 = 1 // rule b's window: the second message's event, at now, and those of the last 10 minutes
	for i, w := range weights {
		if offsets[i] < 600_000 {
			inTen += w
		}
	}
	res, evs, err := st.AppendEvaluate(ctx, 0, batch)
	require.NoError(t, err)
	// Accepted sums the weight each rule took: rule b drops the event
	// older than its retention.
	require.Equal(t, 2*(want+1+inTen), res.Accepted)
	// The same messages again: duplicates, nothing counted.
	res2, _, err := st.AppendEvaluate(ctx, 0, batch)
	require.NoError(t, err)
	require.Zero(t, res2.Accepted)
	require.Equal(t, 4, int(res2.DupMessages))
	require.Len(t, evs, 2)
	for _, e := range evs {
		require.Equal(t, want+1, e.Rules[0].Count, "%s, rule a", e.Key)
		require.Equal(t, inTen, e.Rules[1].Count, "%s, rule b", e.Key)
		require.Equal(t, now, e.Rules[0].Newest, "%s", e.Key)
	}
}

// TestStore_untilOfAKeyFarOverItsLimit: a key with no out-of-order event
// and a log of many entries gets, for each rule it is over, the until of
// the reference model, wherever the limit is reached: in the newest entry,
// in the first read of entries, in the second or third (the script reads 8
// entries, then 16, then 32), in the entry straddling the window's start
// or at its oldest pair; and a rule it is under gets none.
func TestStore_untilOfAKeyFarOverItsLimit(t *testing.T) {
	now := time.Now().UnixMilli()
	at := now + 700 // evaluated then: the window starts inside an entry
	// 60 calls of 5 events 20 ms apart, one call every 160 ms: one log
	// entry each, weights 1 to 90 (past 63 a pair takes 8 bytes).
	var calls [][]limiter.Event
	inWindow := int64(0)
	for i := range 60 {
		var evs []limiter.Event
		for j := range 5 {
			e := limiter.Event{TS: now - 9_900 + int64(i)*160 + int64(j)*20, Weight: 1 + int64(i*7+j*13)%90}
			if e.TS > at-10_000 {
				inWindow += e.Weight
			}
			evs = append(evs, e)
		}
		calls = append(calls, evs)
	}
	limits := []int64{30, 1500, 3000, 7000, inWindow - 20, inWindow, inWindow + 1}
	var rules []limiter.Rule
	for i, l := range limits {
		rules = append(rules, limiter.Rule{Name: fmt.Sprintf("r%d", i), Limit: l, Window: 10 * time.Second})
	}
	st, rs, clock, keys := newFixture(t, rules, now)
	ctx := t.Context()
	g := &rs.Groups()[0]
	all := uint64(1)<<len(limits) - 1
	k := limiter.LimitKey("client=busy")
	model := limiter.NewModel(rs)
	for i, evs := range calls {
		for j := range evs {
			evs[j].Mask = all
		}
		msgs := []limiter.Message{{Seq: uint64(i + 1), Events: evs}}
		_, err := st.Append(ctx, 0, []limiter.KeyAppend{{Key: k, Group: g, Messages: msgs}})
		require.NoError(t, err)
		model.Add(now, k, msgs)
	}
	rdb := testenv.Redis(t)
	for _, r := range rules {
		n, err := rdb.Exists(ctx, keys.Late(string(k), r.Name)).Result()
		require.NoError(t, err)
		require.Zero(t, n, "rule %s: no out-of-order entry", r.Name)
		entries, err := rdb.XLen(ctx, keys.Log(string(k), r.Name)).Result()
		require.NoError(t, err)
		require.Equal(t, int64(60), entries, "rule %s: one log entry per call", r.Name)
	}
	clock.Set(at)
	evs, err := st.Evaluate(ctx, rs, []limiter.LimitKey{k})
	require.NoError(t, err)
	require.Len(t, evs, 1)
	want := model.Evaluate(at, k)
	require.Len(t, evs[0].Rules, len(limits))
	over := 0
	for i, got := range evs[0].Rules {
		w := want.Rules[i]
		require.Equal(t, inWindow, got.Count, "rule %s: count", got.Rule)
		require.Equal(t, w.Count, got.Count, "rule %s: count", got.Rule)
		require.Equal(t, w.Over, got.Over, "rule %s: over", got.Rule)
		require.Equal(t, w.Until, got.Until, "rule %s: until", got.Rule)
		if got.Over {
			over++
		}
	}
	require.Equal(t, len(limits)-1, over, "every rule but the last is over its limit")
}
