package limiter_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/internal/testenv"
	"github.com/ratemon/ratemon/limiter"
	"github.com/ratemon/ratemon/pipeline/event"
)

// A limit key's keys expire, all of them, and none before its events have
// left every window: the state hash of a key seen once gets a TTL (HSET
// creates it without one), at least as long as its logs', and each log
// lives its retention, a refresh period and a minute, so that a write just
// before the next refresh is due is still kept its retention.
func TestStore_everyKeyOfALimitKeyExpires(t *testing.T) {
	now := time.Now().UnixMilli()
	st, rs, clock, keys := newFixture(t, []limiter.Rule{
		{Name: "burst", Limit: 100, Window: 10 * time.Second},
		{Name: "hourly", Limit: 10000, Window: time.Hour},
	}, now)
	ctx := t.Context()
	rdb := testenv.Redis(t)
	g := &rs.Groups()[0]
	require.Len(t, g.Rules, 2, "one group: both rules key on the client")
	k := limiter.LimitKey("client=once")
	_, _, err := st.AppendEvaluate(ctx, 0, []limiter.KeyAppend{{Key: k, Group: g,
		Messages: []limiter.Message{{Seq: 1, Events: []limiter.Event{{TS: now, Weight: 1, Mask: 3}}}}}})
	require.NoError(t, err)

	maxRet := rs.MaxRetention()
	period := (maxRet + 60_000) / 2
	pttl := func(key string) int64 {
		t.Helper()
		d, err := rdb.PTTL(ctx, key).Result()
		require.NoError(t, err)
		require.Positive(t, d, "%s has a TTL", key)
		return d.Milliseconds()
	}
	stTTL := pttl(keys.State(string(k)))
	require.InDelta(t, limiter.StateTTL(maxRet).Milliseconds(), stTTL, 5000)
	for _, r := range g.Rules {
		for _, key := range []string{keys.Log(string(k), r.Name)} {
			got := pttl(key)
			require.GreaterOrEqual(t, got, r.RetentionMS()+period+60_000-5000, "%s lives past a write made a period after the refresh", key)
			require.LessOrEqual(t, got, stTTL, "%s does not outlive the state it is read with", key)
		}
	}

	// A write just before the next refresh is due refreshes nothing, and
	// the keys still outlive it by the retention.
	clock.Set(now + period - 1)
	_, _, err = st.AppendEvaluate(ctx, 0, []limiter.KeyAppend{{Key: k, Group: g,
		Messages: []limiter.Message{{Seq: 2, Events: []limiter.Event{{TS: now + period - 1, Weight: 1, Mask: 3}}}}}})
	require.NoError(t, err)
	for _, r := range g.Rules {
		left := pttl(keys.Log(string(k), r.Name)) - (period - 1)
		require.GreaterOrEqual(t, left, r.RetentionMS()+60_000-5000, "rule %s: the log outlives the write by its retention", r.Name)
	}

	// A state hash left without a TTL (as every one was before) gets one
	// at the key's next refresh.
	require.NoError(t, rdb.Persist(ctx, keys.State(string(k))).Err())
	clock.Set(now + period)
	_, _, err = st.AppendEvaluate(ctx, 0, []limiter.KeyAppend{{Key: k, Group: g,
		Messages: []limiter.Message{{Seq: 3, Events: []limiter.Event{{TS: now + period, Weight: 1, Mask: 3}}}}}})
	require.NoError(t, err)
	require.InDelta(t, limiter.StateTTL(maxRet).Milliseconds(), pttl(keys.State(string(k))), 5000)
}

// A key idle for longer than its logs live comes back counting only its new
// events. Its logs expired (Redis drops them as it would after their TTL),
// so nothing is left to subtract its old events with: before the fix, its
// state hash, which never expired, still counted them, and the key's first
// event after the pause was a false deny.
func TestStore_keyBackAfterItsLogsExpired(t *testing.T) {
	for _, expired := range []bool{true, false} {
		name := "logs kept"
		if expired {
			name = "logs expired"
		}
		t.Run(name, func(t *testing.T) {
			now := time.Now().UnixMilli()
			// 300 events, one under the limit; counted again after the
			// pause, the first new one would trip it.
			st, rs, clock, keys := newFixture(t, []limiter.Rule{{Name: "r", Limit: 301, Window: time.Minute}}, now)
			ctx := t.Context()
			rdb := testenv.Redis(t)
			g := &rs.Groups()[0]
			k := limiter.LimitKey("client=back")
			for i := range 100 {
				clock.Set(now + int64(i)*100)
				ts := now + int64(i)*100
				_, evs, err := st.AppendEvaluate(ctx, 0, []limiter.KeyAppend{{Key: k, Group: g,
					Messages: []limiter.Message{{Seq: uint64(i + 1), Events: []limiter.Event{ev(ts), ev(ts + 1), ev(ts + 2)}}}}})
				require.NoError(t, err)
				require.Equal(t, int64(3*(i+1)), evs[0].Rules[0].Count)
			}
			if expired {
				require.NoError(t, rdb.Del(ctx, keys.Log(string(k), "r"), keys.Late(string(k), "r")).Err())
			}
			later := now + 10*time.Minute.Milliseconds()
			clock.Set(later)
			res, err := st.Check(ctx, rs, eventOf("back"))
			require.NoError(t, err)
			require.Equal(t, int64(0), res.Rules[0].Count, "every event has left the window")

			_, evs, err := st.AppendEvaluate(ctx, 0, []limiter.KeyAppend{{Key: k, Group: g,
				Messages: []limiter.Message{{Seq: 500, Events: []limiter.Event{ev(later)}}}}})
			require.NoError(t, err)
			require.Equal(t, int64(1), evs[0].Rules[0].Count)
			require.Empty(t, evs[0].Changes, "no deny: the key sent one event this minute")
			res, err = st.Check(ctx, rs, eventOf("back"))
			require.NoError(t, err)
			require.Equal(t, int64(1), res.Rules[0].Count)
			require.True(t, res.Allowed)
		})
	}
}

// The state hash of a key with an override lives as long as the override:
// persistent while a permanent one exists, and past a temporary one's end.
func TestStore_stateOfAKeyWithAnOverride(t *testing.T) {
	now := time.Now().UnixMilli()
	st, rs, _, keys := newFixture(t, []limiter.Rule{{Name: "r", Limit: 300, Window: time.Minute}}, now)
	ctx := t.Context()
	rdb := testenv.Redis(t)
	g := &rs.Groups()[0]
	app := func(k limiter.LimitKey) {
		t.Helper()
		_, _, err := st.AppendEvaluate(ctx, 0, []limiter.KeyAppend{{Key: k, Group: g,
			Messages: []limiter.Message{{Seq: 1, Events: []limiter.Event{ev(now)}}}}})
		require.NoError(t, err)
	}
	_, err := st.SetOverride(ctx, rs, limiter.Override{Key: "client=forever", Rule: "r", Limit: 5}, 0)
	require.NoError(t, err)
	app("client=forever")
	require.Equal(t, time.Duration(-1), rdb.PTTL(ctx, keys.State("client=forever")).Val(), "persistent with the override")

	_, err = st.SetOverride(ctx, rs, limiter.Override{Key: "client=day", Rule: "r", Limit: 5}, 24*time.Hour)
	require.NoError(t, err)
	require.Greater(t, rdb.PTTL(ctx, keys.State("client=day")).Val(), 24*time.Hour, "a state made by the override gets its TTL")
	app("client=day")
	require.Greater(t, rdb.PTTL(ctx, keys.State("client=day")).Val(), 24*time.Hour, "not shortened to the events' TTL")
}

func eventOf(client string) event.Event { return event.Event{Client: client, Service: "api"} }

// Keys that a call between two TTL refreshes creates get their TTL at once:
// a rule's log at its first event, a late set at its first out-of-order
// event, the id set at its first id. Before, they waited for the next
// refresh, which never comes for a key that falls idle.
func TestStore_keysCreatedBetweenRefreshesExpire(t *testing.T) {
	now := time.Now().UnixMilli()
	st, rs, clock, keys := newFixture(t, []limiter.Rule{
		{Name: "all", Limit: 1000, Window: time.Minute},
		{Name: "some", Limit: 1000, Window: time.Minute},
	}, now)
	ctx := t.Context()
	rdb := testenv.Redis(t)
	g := &rs.Groups()[0]
	require.Len(t, g.Rules, 2)
	k := limiter.LimitKey("client=later")
	app := func(seq uint64, evs ...limiter.Event) {
		t.Helper()
		_, _, err := st.AppendEvaluate(ctx, 0, []limiter.KeyAppend{{Key: k, Group: g, Messages: []limiter.Message{{Seq: seq, Events: evs}}}})
		require.NoError(t, err)
	}
	app(1, limiter.Event{TS: now, Weight: 1, Mask: 1}) // the first call refreshes every TTL
	for _, key := range []string{keys.Log(string(k), "some"), keys.Late(string(k), "all"), keys.IDs(string(k))} {
		require.Equal(t, int64(0), rdb.Exists(ctx, key).Val(), "%s does not exist yet", key)
	}
	clock.Set(now + 1000) // the next refresh is a period away
	app(2,
		limiter.Event{TS: now + 1000, Weight: 1, Mask: 2},              // the first event of "some": its log
		limiter.Event{TS: now - 500, Weight: 1, Mask: 1},               // older than "all"'s newest: its late set
		limiter.Event{TS: now + 1000, Weight: 1, Mask: 1, ID: "req-1"}, // the first id: the id set
	)
	for _, key := range []string{keys.Log(string(k), "some"), keys.Late(string(k), "all"), keys.IDs(string(k))} {
		d, err := rdb.PTTL(ctx, key).Result()
		require.NoError(t, err)
		require.Positive(t, d, "%s has a TTL", key)
	}
}
