package limiter_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/internal/testenv"
	"github.com/ratemon/ratemon/limiter"
)

// TestStore_seenTrim_redeliveryAfterTrimCountsOnce: once a live append has
// trimmed the seen set at the ack floor, a late redelivered copy of a message
// at or below that floor is a duplicate (it was acknowledged, so its events
// are stored), although the trim dropped its record. A rebuild (floor 0)
// replays such a message, as it must after Redis lost its data.
func TestStore_seenTrim_redeliveryAfterTrimCountsOnce(t *testing.T) {
	now := time.Now().UnixMilli()
	st, rs, _, keys := newFixture(t, []limiter.Rule{{Name: "r", Limit: 1000, Window: time.Minute}}, now)
	ctx := t.Context()
	g := &rs.Groups()[0]
	k := limiter.LimitKey("client=acme")
	app := func(floor, seq uint64) limiter.AppendResult {
		t.Helper()
		res, err := st.Append(ctx, floor, []limiter.KeyAppend{{Key: k, Group: g,
			Messages: []limiter.Message{{Seq: seq, Events: []limiter.Event{ev(now)}}}}})
		require.NoError(t, err)
		return res
	}
	require.EqualValues(t, 1, app(0, 5).Accepted)
	require.EqualValues(t, 1, app(0, 6).Accepted)
	// The ack floor passes 5 and 6 by more than the trim step: this append
	// trims the seen set.
	require.EqualValues(t, 1, app(3000, 3001).Accepted)
	rdb := testenv.Redis(t)
	n, err := rdb.ZCard(ctx, keys.Seen(string(k))).Result()
	require.NoError(t, err)
	require.EqualValues(t, 1, n, "the trim left only 3001")

	res := app(3000, 5)
	require.Zero(t, res.Accepted, "a copy of 5 redelivered after the trim")
	require.EqualValues(t, 1, res.DupMessages)
	require.EqualValues(t, 1, app(0, 6).Accepted, "a rebuild (floor 0) replays 6")
}

// TestStore_flagExpiresAtUntil: a flag expires at its until by Redis's clock
// (PXAT), not until-minus-the-store's-clock after the write: a store whose
// clock runs 20 s behind writes a flag that still ends at its until.
func TestStore_flagExpiresAtUntil(t *testing.T) {
	wall := time.Now().UnixMilli()
	behind := wall - 20_000
	st, rs, _, keys := newFixture(t, []limiter.Rule{{Name: "r", Limit: 1, Window: time.Minute}}, behind)
	ctx := t.Context()
	g := &rs.Groups()[0]
	_, evs, err := st.AppendEvaluate(ctx, 0, []limiter.KeyAppend{{Key: "client=late", Group: g,
		Messages: []limiter.Message{{Seq: 1, Events: []limiter.Event{ev(behind)}}}}})
	require.NoError(t, err)
	require.Len(t, evs[0].Changes, 1)
	until := evs[0].Changes[0].Until
	require.Equal(t, behind+60_000, until)
	pttl, err := testenv.Redis(t).PTTL(ctx, keys.Deny("client=late")).Result()
	require.NoError(t, err)
	// PX would give about 60 s; PXAT gives until minus Redis's now, about 40 s.
	require.InDelta(t, float64(until-time.Now().UnixMilli()), float64(pttl.Milliseconds()), 2000)
}

// TestStore_seenSet_oneMemberPerCall: a call records the messages it
// applied as one member of the seen set, scored by the highest sequence;
// a message that comes again later, out of order or in a call with new
// ones, is found in it and counted once.
func TestStore_seenSet_oneMemberPerCall(t *testing.T) {
	now := time.Now().UnixMilli()
	st, rs, _, keys := newFixture(t, []limiter.Rule{{Name: "r", Limit: 1000, Window: time.Minute}}, now)
	ctx := t.Context()
	g := &rs.Groups()[0]
	k := limiter.LimitKey("client=acme")
	app := func(seqs ...uint64) limiter.AppendResult {
		t.Helper()
		msgs := make([]limiter.Message, len(seqs))
		for i, s := range seqs {
			msgs[i] = limiter.Message{Seq: s, Events: []limiter.Event{ev(now)}}
		}
		res, err := st.Append(ctx, 1, []limiter.KeyAppend{{Key: k, Group: g, Messages: msgs}})
		require.NoError(t, err)
		return res
	}
	require.EqualValues(t, 3, app(10, 12, 11).Accepted)
	res := app(9, 12, 13, 13) // 12 again, 13 twice in one call
	require.EqualValues(t, 2, res.Accepted, "9 and 13 are new")
	require.EqualValues(t, 2, res.DupMessages)
	res = app(11, 9, 10)
	require.Zero(t, res.Accepted)
	require.EqualValues(t, 3, res.DupMessages)

	seen, err := testenv.Redis(t).ZRangeWithScores(ctx, keys.Seen(string(k)), 0, -1).Result()
	require.NoError(t, err)
	require.Len(t, seen, 2, "one member per call that applied something")
	require.Equal(t, "10-12", seen[0].Member, "the ranges form")
	require.InDelta(t, 12, seen[0].Score, 0)
	require.Equal(t, "9,13", seen[1].Member, "13 twice: message by message, the new ones")
	require.InDelta(t, 13, seen[1].Score, 0)
}
