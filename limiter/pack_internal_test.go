package limiter

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/internal/keyspace"
	"github.com/ratemon/ratemon/internal/testenv"
)

// packMessages lays out each message as its sequence (6 bytes) and event
// count (3), then its events (time 6, weight 3), little-endian.
func TestPackMessages_layout(t *testing.T) {
	got := packMessages([]Message{
		{Seq: 0x0102030405, Events: []Event{{TS: 0x0a0b0c0d0e0f, Weight: 0x010203}}},
		{Seq: 7},
	})
	want := []byte{
		0x05, 0x04, 0x03, 0x02, 0x01, 0x00, 1, 0, 0,
		0x0f, 0x0e, 0x0d, 0x0c, 0x0b, 0x0a, 0x03, 0x02, 0x01,
		7, 0, 0, 0, 0, 0, 0, 0, 0,
	}
	require.Equal(t, string(want), got)
	require.Empty(t, seenMember([]Message{{Seq: 0}}))
	require.Equal(t, "5,7", seenMember([]Message{{Seq: 5}, {Seq: 0}, {Seq: 7}}))
	require.False(t, packable([]Message{{Seq: maxPackedSeq + 1}}), "a sequence past 6 bytes")
}

// A packed argument of the wrong length is refused before anything is
// written: a script error does not undo the writes made before it.
func TestWindowScript_refusesMalformedPackedMessages(t *testing.T) {
	rdb := testenv.Redis(t)
	keys, err := keyspace.NewRedis(testenv.Prefix(t, rdb))
	require.NoError(t, err)
	rules := []Rule{{Name: "r", Limit: 10, Window: time.Minute}}
	rules[0].SetDefaults()
	rs, err := NewRuleset(rules)
	require.NoError(t, err)
	st, err := NewStore(StoreOptions{Client: rdb, Keys: keys})
	require.NoError(t, err)
	g := &rs.Groups()[0]
	now := time.Now().UnixMilli()
	msgs := []Message{{Seq: 1, Events: []Event{{TS: now, Weight: 1, Mask: 1}}}, {Seq: 2, Events: []Event{{TS: now, Weight: 1, Mask: 1}}}}
	for _, cut := range []int{1, 9, 10} {
		ks, args := st.windowCallArgs(now, 0, "client=bad", g, msgs)
		blob := args[len(args)-2].(string)
		args[len(args)-2] = blob[:len(blob)-cut]
		err := st.scripts.ingest.Run(t.Context(), rdb, ks, args...).Err()
		require.ErrorContains(t, err, "packed messages", "cut %d bytes", cut)
		n, err := rdb.Exists(t.Context(), ks...).Result()
		require.NoError(t, err)
		require.Zero(t, n, "cut %d bytes: nothing written", cut)
	}
	ks, args := st.windowCallArgs(now, 0, "client=bad", g, msgs)
	args[len(args)-2] = args[len(args)-2].(string) + "x"
	require.ErrorContains(t, st.scripts.ingest.Run(t.Context(), rdb, ks, args...).Err(), "packed messages")
}

// decodeRuleState reads lib.lua's packed rule state ('<i6i8i6i6i6i8i6i6i6'):
// the running count c and the trip f, an unset time (-2^46) included, and
// refuses anything of another length (the decimal text of the in-process
// stand-in).
func TestDecodeRuleState(t *testing.T) {
	le := func(x int64, n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(uint64(x) >> (8 * i))
		}
		return b
	}
	pack := func(count, trip int64) string {
		var b []byte
		for i, x := range []int64{1796608886389, count, 1796608876389, unsetMS, unsetMS, 0, trip, unsetMS, 3} {
			n := 6
			if i == 1 || i == 5 {
				n = 8
			}
			b = append(b, le(x, n)...)
		}
		require.Len(t, b, ruleStateLen)
		return string(b)
	}
	rs, ok := decodeRuleState(pack(1234, unsetMS))
	require.True(t, ok)
	require.Equal(t, packedRule{count: 1234, trip: unsetMS}, rs)
	rs, ok = decodeRuleState(pack(1<<40, 1796608886000))
	require.True(t, ok)
	require.Equal(t, packedRule{count: 1 << 40, trip: 1796608886000}, rs)
	_, ok = decodeRuleState("1796608886389,5,1796608876389")
	require.False(t, ok)
}
