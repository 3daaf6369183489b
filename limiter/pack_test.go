package limiter_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/internal/testenv"
	"github.com/ratemon/ratemon/limiter"
)

// Calls whose messages are all compact go as one packed argument. A
// message already applied, one twice in a call and one without a sequence
// must count as in the per-message form: the first once, the second once,
// the third every time; and the seen set records only what was applied.
func TestStore_packedMessagesDeduplicate(t *testing.T) {
	now := time.Now().UnixMilli()
	st, rs, _, keys := newFixture(t, []limiter.Rule{{Name: "r", Limit: 1_000_000, Window: time.Hour}}, now)
	ctx := t.Context()
	g := &rs.Groups()[0]
	k := limiter.LimitKey("client=packed")
	msg := func(seq uint64, w int64) limiter.Message {
		return limiter.Message{Seq: seq, Events: []limiter.Event{{TS: now - int64(seq), Weight: w, Mask: 1}, {TS: now, Weight: w, Mask: 1}}}
	}
	send := func(msgs ...limiter.Message) (limiter.AppendResult, limiter.Evaluation) {
		res, evs, err := st.AppendEvaluate(ctx, 0, []limiter.KeyAppend{{Key: k, Group: g, Messages: msgs}})
		require.NoError(t, err)
		require.Len(t, evs, 1)
		return res, evs[0]
	}
	res, e := send(msg(1, 1), msg(2, 10))
	require.Equal(t, int64(22), res.Accepted)
	require.Equal(t, int64(22), e.Rules[0].Count)

	// 2 again, 3 twice, and a message without a sequence (counted always).
	res, e = send(msg(2, 10), msg(3, 100), msg(3, 100), msg(0, 1000))
	require.Equal(t, int64(2200), res.Accepted)
	require.Equal(t, int64(2), res.DupMessages, "2 applied before, 3's second copy")
	require.Equal(t, int64(2222), e.Rules[0].Count)

	// 3 once more: recorded by the previous call.
	res, e = send(msg(3, 100))
	require.Zero(t, res.Accepted)
	require.Equal(t, int64(1), res.DupMessages)
	require.Equal(t, int64(2222), e.Rules[0].Count)

	// Each call recorded the sequences it applied, and only those.
	rdb := testenv.Redis(t)
	members, err := rdb.ZRangeWithScores(ctx, keys.Seen(string(k)), 0, -1).Result()
	require.NoError(t, err)
	got := map[string]float64{}
	for _, m := range members {
		got[m.Member.(string)] = m.Score
	}
	require.Equal(t, map[string]float64{"1-2": 2, "3": 3}, got, "1-2 in the ranges form, 3 message by message")
}

// A call in the ranges form records its sequences as ranges. One whose
// ranges meet a member of an earlier call (of either form) is refused
// before it writes anything and sent again message by message, which
// reads the ranges and counts only the new messages.
func TestStore_rangesFormResendsSeenMessages(t *testing.T) {
	now := time.Now().UnixMilli()
	st, rs, _, keys := newFixture(t, []limiter.Rule{{Name: "r", Limit: 1_000_000, Window: time.Hour}}, now)
	ctx := t.Context()
	g := &rs.Groups()[0]
	k := limiter.LimitKey("client=ranges")
	send := func(seqs ...uint64) (limiter.AppendResult, int64) {
		t.Helper()
		msgs := make([]limiter.Message, len(seqs))
		for i, q := range seqs {
			msgs[i] = limiter.Message{Seq: q, Events: []limiter.Event{{TS: now - int64(q), Weight: 1, Mask: 1}}}
		}
		res, evs, err := st.AppendEvaluate(ctx, 0, []limiter.KeyAppend{{Key: k, Group: g, Messages: msgs}})
		require.NoError(t, err)
		return res, evs[0].Rules[0].Count
	}
	seqs := func(from, to uint64) []uint64 {
		var out []uint64
		for q := from; q <= to; q++ {
			out = append(out, q)
		}
		return out
	}
	res, count := send(seqs(10, 20)...)
	require.Equal(t, int64(11), res.Accepted)
	require.Equal(t, int64(11), count)

	res, count = send(seqs(18, 25)...) // 18-20 again
	require.Equal(t, int64(5), res.Accepted)
	require.Equal(t, int64(3), res.DupMessages)
	require.Equal(t, int64(16), count)

	res, count = send(30, 26, 28, 27, 29) // out of order: one range
	require.Equal(t, int64(5), res.Accepted)
	require.Zero(t, res.DupMessages)
	require.Equal(t, int64(21), count)

	res, count = send(append(seqs(5, 9), 28)...) // 28 inside the range 26-30
	require.Equal(t, int64(5), res.Accepted)
	require.Equal(t, int64(1), res.DupMessages)
	require.Equal(t, int64(26), count)

	members, err := testenv.Redis(t).ZRangeWithScores(ctx, keys.Seen(string(k)), 0, -1).Result()
	require.NoError(t, err)
	got := map[string]float64{}
	for _, m := range members {
		got[m.Member.(string)] = m.Score
	}
	require.Equal(t, map[string]float64{"10-20": 20, "21,22,23,24,25": 25, "26-30": 30, "5,6,7,8,9": 9}, got,
		"the ranges of the calls taken whole, the new sequences of those sent again")
}
