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
	require.Equal(t, map[string]float64{"1,2": 2, "3": 3}, got)
}
