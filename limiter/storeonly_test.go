package limiter_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/internal/testenv"
	"github.com/ratemon/ratemon/limiter"
)

// A key appended StoreOnly has its events stored and counted at once (a
// check sees them), but is not evaluated: no flag, no trim. Its next
// evaluation slides the window from the boundary of the last one and
// trims the log, and counts exactly.
func TestStore_storeOnlyAppendsWithoutEvaluating(t *testing.T) {
	now := time.Now().UnixMilli()
	st, rs, clock, keys := newFixture(t, []limiter.Rule{{Name: "r", Limit: 5, Window: 10 * time.Second}}, now)
	ctx := t.Context()
	rdb := testenv.Redis(t)
	g := &rs.Groups()[0]
	k := limiter.LimitKey("client=far")
	appendOnce := func(seq uint64, storeOnly bool, evs ...limiter.Event) (limiter.AppendResult, limiter.Evaluation) {
		t.Helper()
		res, evals, err := st.AppendEvaluate(ctx, 0, []limiter.KeyAppend{{Key: k, Group: g, StoreOnly: storeOnly,
			Messages: []limiter.Message{{Seq: seq, Events: evs}}}})
		require.NoError(t, err)
		require.Len(t, evals, 1)
		require.Equal(t, k, evals[0].Key)
		return res, evals[0]
	}
	count := func() int64 {
		t.Helper()
		res, err := st.Check(ctx, rs, eventOf("far"))
		require.NoError(t, err)
		return res.Rules[0].Count
	}

	_, e := appendOnce(1, false, ev(now-9000))
	require.Equal(t, int64(1), e.Rules[0].Count)
	res, e := appendOnce(2, true, ev(now-8000), ev(now-7999))
	require.Equal(t, int64(2), res.Accepted)
	require.Empty(t, e.Rules, "stored, not evaluated")
	require.Equal(t, int64(3), count(), "a check counts them at once")

	// Past the window of the first events: the check slides it itself.
	clock.Set(now + 1500)
	_, e = appendOnce(3, true, ev(now+1500))
	require.Empty(t, e.Rules)
	require.Equal(t, int64(3), count(), "the event at -9 s left the window at +1 s")
	require.Equal(t, int64(3), rdb.XLen(ctx, keys.Log(string(k), "r")).Val(), "a stored-only append trims nothing")

	// Over the limit, stored only: the caller asked for no evaluation, so
	// no flag; the next evaluation writes it, and trims.
	clock.Set(now + 2500)
	_, e = appendOnce(4, true, ev(now+2500), ev(now+2501), ev(now+2502))
	require.Empty(t, e.Rules)
	require.Zero(t, rdb.Exists(ctx, keys.Deny(string(k))).Val(), "no evaluation, no flag")
	_, e = appendOnce(5, false, ev(now+2600))
	require.Equal(t, int64(5), e.Rules[0].Count, "those of -8 s left at +2 s: one at +1.5 s, four from +2.5 s")
	require.True(t, e.Rules[0].Over)
	require.Len(t, e.Changes, 1, "the deny flag")
	require.Equal(t, int64(1), rdb.Exists(ctx, keys.Deny(string(k))).Val())
	require.Equal(t, int64(3), rdb.XLen(ctx, keys.Log(string(k), "r")).Val(), "the evaluation trimmed the entries of -9 s and -8 s")
}
