package limiter

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
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

// seenRanges sorts the sequences, joins consecutive ones as first-last,
// skips 0 and refuses a sequence twice.
func TestSeenRanges(t *testing.T) {
	msgs := func(seqs ...uint64) []Message {
		out := make([]Message, len(seqs))
		for i, q := range seqs {
			out[i] = Message{Seq: q}
		}
		return out
	}
	for _, c := range []struct {
		seqs []uint64
		want string
	}{
		{nil, ""},
		{[]uint64{0, 0}, ""},
		{[]uint64{7}, "7"},
		{[]uint64{5, 0, 7}, "5,7"},
		{[]uint64{12, 10, 11, 14, 20, 21}, "10-12,14,20-21"},
		{[]uint64{maxPackedSeq, maxPackedSeq - 1}, "281474976710654-281474976710655"},
	} {
		got, ok := seenRanges(msgs(c.seqs...))
		require.True(t, ok, "%v", c.seqs)
		require.Equal(t, c.want, got, "%v", c.seqs)
	}
	// More than the 64 sorted on the stack, out of order.
	var many []uint64
	var want []string
	for q := uint64(200); q >= 2; q -= 2 {
		many = append(many, q)
		want = append([]string{strconv.FormatUint(q, 10)}, want...)
	}
	got, ok := seenRanges(msgs(many...))
	require.True(t, ok)
	require.Equal(t, strings.Join(want, ","), got)
	for _, seqs := range [][]uint64{{3, 3}, {1, 2, 3, 2}, {9, 4, 9}} {
		_, ok := seenRanges(msgs(seqs...))
		require.False(t, ok, "%v: a sequence twice", seqs)
	}
}

// A packed argument of the wrong length is refused before anything is
// written: a script error does not undo the writes made before it.
func TestWindowScript_refusesMalformedPackedMessages(t *testing.T) {
	now := time.Now().UnixMilli()
	st, rdb, _, g := oneRuleStore(t, 10, now)
	msgs := []Message{{Seq: 1, Events: []Event{{TS: now, Weight: 1, Mask: 1}}}, {Seq: 2, Events: []Event{{TS: now, Weight: 1, Mask: 1}}}}
	// The arguments end with the messages (per-message form only), the
	// seen-set member and the log entries.
	const blobArg, memberArg, runsArg = 3, 2, 1
	refusedIn := func(perMessage bool, arg int, change func(string) string, want, what string) {
		t.Helper()
		ks, args := st.windowCallArgs(now, 0, "client=bad", g, msgs, perMessage)
		switch v := args[len(args)-arg].(type) {
		case string:
			args[len(args)-arg] = change(v)
		case []byte:
			args[len(args)-arg] = change(string(v))
		}
		err := st.scripts.ingest.Run(t.Context(), rdb, ks, args...).Err()
		require.ErrorContains(t, err, want, what)
		n, err := rdb.Exists(t.Context(), ks...).Result()
		require.NoError(t, err)
		require.Zero(t, n, "%s: nothing written", what)
	}
	refused := func(arg int, change func(string) string, want, what string) {
		t.Helper()
		refusedIn(true, arg, change, want, what)
	}
	for _, cut := range []int{1, 9, 10} {
		refused(blobArg, func(b string) string { return b[:len(b)-cut] }, "packed messages", fmt.Sprintf("messages cut %d bytes", cut))
	}
	refused(blobArg, func(b string) string { return b + "x" }, "packed messages", "messages one byte long")
	for _, cut := range []int{1, 5, 14} {
		refused(runsArg, func(b string) string { return b[:len(b)-cut] }, "packed entries", fmt.Sprintf("entries cut %d bytes", cut))
	}
	refused(runsArg, func(b string) string { return b + "x" }, "packed entries", "entries one byte long")

	// The ranges form: the same entries, and a member of ranges.
	ranges := func(arg int, change func(string) string, want, what string) {
		t.Helper()
		refusedIn(false, arg, change, want, what)
	}
	ranges(runsArg, func(b string) string { return b[:len(b)-1] }, "packed entries", "ranges form: entries cut")
	ranges(runsArg, func(string) string { return "" }, "without log entries", "ranges form: no entries")
	for _, bad := range []string{"2,1", "3-1", "0", "1-x", "a", "x-2"} {
		ranges(memberArg, func(string) string { return bad }, "sequence ranges", "ranges form: member "+bad)
	}

	// A member's items between its first and last sequence are read, and
	// checked, when the seen set holds a member they could overlap: here
	// one applied before.
	ks, args := st.windowCallArgs(now, 0, "client=bad2", g, msgs, false)
	require.Equal(t, "1-2", args[len(args)-memberArg])
	require.NoError(t, st.scripts.ingest.Run(t.Context(), rdb, ks, args...).Err())
	before := dumpKeys(t, rdb, ks)
	args[len(args)-memberArg] = "1-2,2"
	err := st.scripts.ingest.Run(t.Context(), rdb, ks, args...).Err()
	require.ErrorContains(t, err, "sequence ranges: item 2 is not a sequence or range after 2")
	require.Equal(t, before, dumpKeys(t, rdb, ks), "nothing written")
}

// dumpKeys returns the serialized values of keys (DUMP), absent ones
// empty.
func dumpKeys(t *testing.T, rdb *redis.Client, keys []string) []string {
	t.Helper()
	out := make([]string, len(keys))
	for i, k := range keys {
		v, err := rdb.Dump(t.Context(), k).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			require.NoError(t, err)
		}
		out[i] = v
	}
	return out
}

// packRuns sums the events per millisecond, in order, and cuts them into
// entries of at most logPairs milliseconds spanning at most logSpanMS;
// each entry's body is its total weight, then per pair its offset from
// the entry's newest time, with the weight in the same two bytes when it
// is 1 to 63 and in six more otherwise.
func TestPackRuns_layout(t *testing.T) {
	got := packRuns([]Message{
		{Seq: 2, Events: []Event{{TS: 5000, Weight: 1}, {TS: 4990, Weight: 70}}},
		{Seq: 1, Events: []Event{{TS: 5000, Weight: 2}, {TS: 6001, Weight: 1}}},
	})
	le := func(x uint64, n int) []byte { return appendUint(nil, x, n) }
	var want []byte
	want = append(want, le(4990, 6)...) // oldest
	want = append(want, le(6001, 6)...) // newest
	want = append(want, le(74, 6)...)   // total
	want = append(want, le(2, 3)...)    // entries: 6001 is more than 1000 ms after 4990
	body1 := append(le(73, 6), le(10, 2)...)
	body1 = append(body1, le(70, 6)...)               // 4990: weight 70 in 6 more bytes
	body1 = append(body1, le(0+1024*3, 2)...)         // 5000: 1 + 2
	want = append(want, le(5000, 6)...)               // the first entry's id time
	want = append(want, le(uint64(len(body1)), 3)...) // its body's length
	want = append(want, body1...)
	body2 := append(le(1, 6), le(0+1024*1, 2)...)
	want = append(want, le(6001, 6)...)
	want = append(want, le(uint64(len(body2)), 3)...)
	want = append(want, body2...)
	require.Equal(t, want, got)
	require.Nil(t, packRuns([]Message{{Seq: 1}}), "no event: no entries")

	var evs []Event
	for i := range 300 {
		evs = append(evs, Event{TS: int64(1000 + i), Weight: 1})
	}
	runs := packRuns([]Message{{Events: evs}})
	require.Equal(t, uint64(2), uint64(runs[18])|uint64(runs[19])<<8|uint64(runs[20])<<16, "at most logPairs milliseconds an entry")
}

// oneRuleStore is a store on the test Redis, under a fresh prefix, whose
// clock stands at now, with one rule "r" (limit per minute): the store,
// its client, its keys and the rule's group.
func oneRuleStore(t *testing.T, limit int64, now int64) (*Store, *redis.Client, keyspace.Redis, *Group) {
	t.Helper()
	rdb := testenv.Redis(t)
	keys, err := keyspace.NewRedis(testenv.Prefix(t, rdb))
	require.NoError(t, err)
	rules := []Rule{{Name: "r", Limit: limit, Window: time.Minute}}
	rules[0].SetDefaults()
	rs, err := NewRuleset(rules)
	require.NoError(t, err)
	st, err := NewStore(StoreOptions{Client: rdb, Keys: keys, Clock: FixedClock(time.UnixMilli(now))})
	require.NoError(t, err)
	return st, rdb, keys, &rs.Groups()[0]
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

// BenchmarkPackRuns builds the log entries of one due send of a key held
// 2.5 s at a paced load: 25 messages of 2 events each, 50 ms apart (three
// entries, as a hold of 2.5 s makes). Reported per event.
func BenchmarkPackRuns(b *testing.B) {
	msgs := make([]Message, 25)
	for i := range msgs {
		ts := int64(1_800_000_000_000 + 100*i)
		msgs[i] = Message{Seq: uint64(i + 1), Events: []Event{{TS: ts, Weight: 1, Mask: 1}, {TS: ts + 50, Weight: 1, Mask: 1}}}
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		n += len(packRuns(msgs))
	}
	if n == 0 {
		b.Fatal("no entries built")
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*50), "ns/event")
}

// BenchmarkSeenRanges builds the seen-set member of one due send of a key
// held 2.5 s at a paced load: 25 messages, about 80 sequences apart.
func BenchmarkSeenRanges(b *testing.B) {
	msgs := make([]Message, 25)
	for i := range msgs {
		msgs[i] = Message{Seq: uint64(1_000_000 + 80*i + i%3)}
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		m, _ := seenRanges(msgs)
		n += len(m)
	}
	if n == 0 {
		b.Fatal("no member built")
	}
}
