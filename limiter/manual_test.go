package limiter_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/internal/testenv"
	"github.com/ratemon/ratemon/limiter"
)

func TestStore_manualPrecedence(t *testing.T) {
	now := time.Now().UnixMilli()
	st, rs, clock, keys := newFixture(t, []limiter.Rule{{Name: "r", Limit: 2, Window: time.Minute}}, now)
	rdb := testenv.Redis(t)
	ctx := t.Context()
	k := limiter.LimitKey("client=acme")
	flag := func() *limiter.Flag {
		v, err := rdb.Get(ctx, keys.Deny(string(k))).Result()
		if err != nil {
			return nil
		}
		f, err := limiter.ParseFlag([]byte(v))
		require.NoError(t, err)
		return &f
	}
	manual := func(op limiter.Op, d time.Duration) (limiter.Entry, *limiter.Decision) {
		e, dec, err := st.Manual(ctx, limiter.ManualRequest{Op: op, Key: k, Author: "ops@example", Reason: "test", For: d})
		require.NoError(t, err)
		return e, dec
	}

	// A manual block on a key nobody counted yet denies it at once.
	e, dec := manual(limiter.OpBlock, time.Hour)
	require.Equal(t, now+3_600_000, e.Until)
	require.Equal(t, "ops@example", e.Author)
	require.NotNil(t, dec)
	require.False(t, dec.Allowed)
	require.Equal(t, "manual", dec.Source)
	require.Equal(t, "manual", flag().Source)
	require.InDelta(t, time.Hour.Milliseconds(), rdb.PTTL(ctx, keys.State(string(k))).Val().Milliseconds(), 120_000)

	// A shorter block never ends the longer one early.
	e, dec = manual(limiter.OpBlock, time.Minute)
	require.Equal(t, now+3_600_000, e.Until)
	require.Nil(t, dec)

	// The rules push the key over its limit: the flag keeps the later end.
	g := &rs.Groups()[0]
	_, err := st.Append(ctx, 0, []limiter.KeyAppend{{Key: k, Group: g, Messages: []limiter.Message{{Seq: 1, Events: []limiter.Event{ev(now - 2000), ev(now - 1000)}}}}})
	require.NoError(t, err)
	evs, err := st.Evaluate(ctx, rs, []limiter.LimitKey{k})
	require.NoError(t, err)
	require.True(t, evs[0].Rules[0].Over)
	require.Empty(t, evs[0].Changes, "the manual block already ends later than the automatic deny")
	require.Equal(t, now+3_600_000, flag().Until)

	// Unblock: the automatic deny takes over.
	_, dec = manual(limiter.OpUnblock, 0)
	require.NotNil(t, dec)
	require.False(t, dec.Allowed)
	require.Equal(t, now-2000+60_000, dec.Until)
	require.Equal(t, "r", flag().Rule)

	// Allow beats the automatic deny; the key is still counted.
	_, dec = manual(limiter.OpAllow, 30*24*time.Hour)
	require.NotNil(t, dec)
	require.True(t, dec.Allowed)
	require.Nil(t, flag())
	manual(limiter.OpBlock, time.Hour)
	require.Nil(t, flag(), "allow beats a manual block too")
	clock.Set(now + 10)
	_, err = st.Append(ctx, 0, []limiter.KeyAppend{{Key: k, Group: g, Messages: []limiter.Message{{Seq: 2, Events: []limiter.Event{ev(now + 5)}}}}})
	require.NoError(t, err)
	evs, err = st.Evaluate(ctx, rs, []limiter.LimitKey{k})
	require.NoError(t, err)
	require.Equal(t, int64(3), evs[0].Rules[0].Count)
	require.Nil(t, flag())

	blocks, err := st.Entries(ctx, limiter.OpBlock)
	require.NoError(t, err)
	require.Len(t, blocks, 1)
	allows, err := st.Entries(ctx, limiter.OpAllow)
	require.NoError(t, err)
	require.Len(t, allows, 1)
	require.Equal(t, k, allows[0].Key)

	// Un-allow: the block is back in force.
	_, dec = manual(limiter.OpUnallow, 0)
	require.NotNil(t, dec)
	require.Equal(t, "manual", flag().Source)
}

func TestStore_overrides(t *testing.T) {
	now := time.Now().UnixMilli()
	st, rs, _, keys := newFixture(t, []limiter.Rule{
		{Name: "r", Limit: 5, Window: time.Minute},
		{Name: "s", Limit: 50, Window: time.Minute},
	}, now)
	rdb := testenv.Redis(t)
	ctx := t.Context()
	k := limiter.LimitKey("client=acme")
	g := &rs.Groups()[0]
	_, err := st.Append(ctx, 0, []limiter.KeyAppend{{Key: k, Group: g, Messages: []limiter.Message{{Seq: 1, Events: []limiter.Event{
		{TS: now - 3000, Weight: 3, Mask: 3}, {TS: now - 1000, Weight: 1, Mask: 3},
	}}}}})
	require.NoError(t, err)
	ds, err := st.SetOverride(ctx, rs, limiter.Override{Key: k, Rule: "r", Limit: 4}, 0)
	require.NoError(t, err)
	require.Len(t, ds, 1, "lowering the limit denies at once")
	require.False(t, ds[0].Allowed)
	require.Equal(t, int64(1), rdb.Exists(ctx, keys.Deny(string(k))).Val())

	ds, err = st.SetOverride(ctx, rs, limiter.Override{Key: k, Rule: limiter.AllRules, Factor: 2}, time.Hour)
	require.NoError(t, err)
	require.Empty(t, ds, "the rule's own override still wins over the factor for all rules")
	ds, err = st.ClearOverride(ctx, rs, k, "r")
	require.NoError(t, err)
	require.Len(t, ds, 1)
	require.True(t, ds[0].Allowed, "limit 5 x 2 = 10 > 4")

	res, err := st.Evaluate(ctx, rs, []limiter.LimitKey{k})
	require.NoError(t, err)
	require.Equal(t, int64(10), res[0].Rules[0].Limit)
	require.Equal(t, int64(100), res[0].Rules[1].Limit)
	list, err := st.Overrides(ctx)
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.InDelta(t, 2.0, list[0].Factor, 0)

	_, err = st.SetOverride(ctx, rs, limiter.Override{Key: k, Rule: "nope", Limit: 1}, 0)
	require.ErrorContains(t, err, `no rule "nope"`)
	_, err = st.SetOverride(ctx, rs, limiter.Override{Key: "ip=1.2.3.4", Rule: "r", Limit: 1}, 0)
	require.ErrorContains(t, err, "counts keys of client, not ip")
}

func TestParseKeyAndDuration(t *testing.T) {
	k, err := limiter.ParseKey("client=a{b|route=POST /login")
	require.NoError(t, err)
	require.Equal(t, limiter.LimitKey("client=a%7Bb|route=POST /login"), k)
	k, err = limiter.ParseKey("client=a%7Bb|method=get")
	require.NoError(t, err)
	require.Equal(t, limiter.LimitKey("client=a%7Bb|method=GET"), k)
	for _, bad := range []string{"", "acme", "user=x", "client=", "=x"} {
		_, err := limiter.ParseKey(bad)
		require.Error(t, err, bad)
	}
	d, err := limiter.ParseDuration("30d")
	require.NoError(t, err)
	require.Equal(t, 30*24*time.Hour, d)
	d, err = limiter.ParseDuration("1h30m")
	require.NoError(t, err)
	require.Equal(t, 90*time.Minute, d)
	_, err = limiter.ParseDuration("3xd")
	require.Error(t, err)
}
