package limiter

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/internal/testenv"
)

// logReadScript runs lib.lua's readers over one log (KEYS[1]) for the
// range (ARGV[1], ARGV[2]]: log_sum, then the pairs of the merged cursor
// ascending and descending, flat ts, weight, then free_at for each limit
// of ARGV[3..] with a window of 1000 (-1: nil).
const logReadScript = `
local lo, hi = tonumber(ARGV[1]), tonumber(ARGV[2])
local frees = {}
for i = 3, #ARGV do
  frees[#frees + 1] = free_at(KEYS[1], false, lo, hi, tonumber(ARGV[i]), 1000) or -1
end
local function walk(asc)
  local out = {}
  local c = cursor(KEYS[1], false, lo, hi, asc)
  while true do
    local ts, w = c.peek()
    if ts == nil then return out end
    out[#out + 1] = ts
    out[#out + 1] = w
    c.advance()
  end
end
return {log_sum(KEYS[1], lo, hi), walk(true), walk(false), frees}`

// The log readers of lib.lua read every form of entry: the packed body
// (field p, written since 2026-12-07) and the two earlier forms (one field
// n = weight; per pair a field "<m - ts>" = weight), mixed in one log, as
// a log written before an upgrade and after it is. Compared with the pairs
// written, over random ranges.
func TestLogReaders_readEveryEntryForm(t *testing.T) {
	rdb := testenv.Redis(t)
	ctx := t.Context()
	log := testenv.Prefix(t, rdb) + ":log"
	rng := rand.New(rand.NewPCG(7, 11))
	type pair struct{ ts, w int64 }
	var all []pair
	var edges [][2]int64 // per entry: its oldest and newest time
	ts := int64(1_796_000_000_000)
	for e := range 300 {
		n := 1 + rng.IntN(40)
		if e%7 == 0 {
			n = logPairs // a full entry
		}
		var ps []pair
		first := ts
		for len(ps) < n && ts-first <= logSpanMS {
			w := int64(1 + rng.IntN(63))
			switch rng.IntN(8) {
			case 0:
				w = int64(64 + rng.IntN(1_000_000)) // the long form
			case 1:
				w = 0
			}
			ps = append(ps, pair{ts, w})
			ts += int64(rng.IntN(12)) // several pairs may share nothing but order
			if len(ps) > 1 && ps[len(ps)-1].ts == ps[len(ps)-2].ts {
				ps = ps[:len(ps)-1]
			}
		}
		m := ps[len(ps)-1].ts
		var values []any
		switch form := e % 3; {
		case form == 0 && len(ps) == 1:
			values = []any{"n", ps[0].w}
		case form <= 1:
			for _, p := range ps {
				values = append(values, strconv.FormatInt(m-p.ts, 10), p.w)
			}
		default:
			ws := make([]msWeight, len(ps))
			for i, p := range ps {
				ws[i] = msWeight(p)
			}
			values = []any{"p", appendEntry(nil, m, ws)}
		}
		require.NoError(t, rdb.XAdd(ctx, &redis.XAddArgs{Stream: log, ID: fmt.Sprintf("%d-*", m), Values: values}).Err())
		all = append(all, ps...)
		edges = append(edges, [2]int64{ps[0].ts, m})
		ts = m + int64(rng.IntN(300))
	}
	script := redis.NewScript(luaLib + "\n" + logReadScript)
	lo0, hi0 := all[0].ts, all[len(all)-1].ts
	// Random ranges, and ranges ending on the edges of entries (an entry
	// wholly inside is summed from its total).
	var ranges [][2]int64
	for range 200 {
		lo := lo0 - 5 + rng.Int64N(hi0-lo0+10)
		ranges = append(ranges, [2]int64{lo, lo + rng.Int64N(20_000)})
	}
	for _, e := range edges[:60] {
		for _, d := range [][2]int64{{-1, 0}, {0, 0}, {-1, -1}, {-1, 1}} {
			ranges = append(ranges, [2]int64{e[0] + d[0], e[1] + d[1]})
		}
	}
	for _, r := range ranges {
		lo, hi := r[0], r[1]
		var sum int64
		asc := []int64{}
		for _, p := range all {
			if p.ts > lo && p.ts <= hi {
				sum += p.w
				asc = append(asc, p.ts, p.w)
			}
		}
		desc := make([]int64, 0, len(asc))
		for i := len(asc) - 2; i >= 0; i -= 2 {
			desc = append(desc, asc[i], asc[i+1])
		}
		// free_at: the newest time from which the pairs, newest first,
		// add up to the limit, plus the window; limits reached in the
		// newest pair, anywhere in the range, at its oldest pair, and not.
		args := []any{lo, hi}
		var frees []int64
		for _, limit := range []int64{1, 1 + rng.Int64N(max(sum, 1)), sum, sum + 1} {
			want, acc := int64(-1), int64(0)
			for i := 0; i < len(desc); i += 2 {
				acc += desc[i+1]
				if acc >= limit {
					want = desc[i] + 1000
					break
				}
			}
			args = append(args, limit)
			frees = append(frees, want)
		}
		v, err := script.Run(ctx, rdb, []string{log}, args...).Slice()
		require.NoError(t, err)
		require.Equal(t, sum, v[0], "log_sum (%d, %d]", lo, hi)
		require.Equal(t, asc, ints(t, v[1]), "ascending (%d, %d]", lo, hi)
		require.Equal(t, desc, ints(t, v[2]), "descending (%d, %d]", lo, hi)
		require.Equal(t, frees, ints(t, v[3]), "free_at (%d, %d], limits %v", lo, hi, args[2:])
	}
}

func ints(t *testing.T, v any) []int64 {
	t.Helper()
	xs, ok := v.([]any)
	require.True(t, ok, "want an array, got %T", v)
	out := make([]int64, 0, len(xs))
	for _, x := range xs {
		n, ok := x.(int64)
		require.True(t, ok, "want integers, got %T", x)
		out = append(out, n)
	}
	return out
}

// A call of compact, new messages in order stores the entries the daemon
// built (packRuns) as they are; a call with an event before the log's
// newest counts the messages itself: the late event goes to the late set,
// the others to a packed entry, and the count takes both.
func TestWindowScript_storesTheDaemonsEntries(t *testing.T) {
	ctx := t.Context()
	now := time.Now().UnixMilli()
	st, rdb, keys, g := oneRuleStore(t, 1000, now)
	lk := LimitKey("client=fast")
	msgs := []Message{
		{Seq: 1, Events: []Event{{TS: now - 20, Weight: 1, Mask: 1}, {TS: now - 10, Weight: 2, Mask: 1}}},
		{Seq: 2, Events: []Event{{TS: now - 20, Weight: 4, Mask: 1}, {TS: now - 5, Weight: 100, Mask: 1}}},
	}
	_, evs, err := st.AppendEvaluate(ctx, 0, []KeyAppend{{Key: lk, Group: g, Messages: msgs}})
	require.NoError(t, err)
	require.Equal(t, int64(107), evs[0].Rules[0].Count)
	entries, err := rdb.XRange(ctx, keys.Log(string(lk), "r"), "-", "+").Result()
	require.NoError(t, err)
	require.Len(t, entries, 1)
	body := appendEntry(nil, now-5, []msWeight{{now - 20, 5}, {now - 10, 2}, {now - 5, 100}})
	require.Equal(t, map[string]any{"p": string(body)}, entries[0].Values)
	require.True(t, strings.HasPrefix(entries[0].ID, strconv.FormatInt(now-5, 10)+"-"))

	late := []Message{{Seq: 3, Events: []Event{{TS: now - 30, Weight: 3, Mask: 1}, {TS: now, Weight: 1, Mask: 1}}}}
	_, evs, err = st.AppendEvaluate(ctx, 0, []KeyAppend{{Key: lk, Group: g, Messages: late}})
	require.NoError(t, err)
	require.Equal(t, int64(111), evs[0].Rules[0].Count)
	n, err := rdb.ZCard(ctx, keys.Late(string(lk), "r")).Result()
	require.NoError(t, err)
	require.Equal(t, int64(1), n, "the event before the log's newest")
	entries, err = rdb.XRange(ctx, keys.Log(string(lk), "r"), "-", "+").Result()
	require.NoError(t, err)
	require.Len(t, entries, 2)
	require.Equal(t, map[string]any{"p": string(appendEntry(nil, now, []msWeight{{now, 1}}))}, entries[1].Values)

	// With its state gone (no newest time known), a call takes the built
	// entries; the stream refuses one older than its last id, and its
	// pairs go to the late set instead.
	require.NoError(t, rdb.Del(ctx, keys.State(string(lk))).Err())
	old := []Message{{Seq: 4, Events: []Event{{TS: now - 40, Weight: 7, Mask: 1}}}}
	res, _, err := st.AppendEvaluate(ctx, 0, []KeyAppend{{Key: lk, Group: g, Messages: old}})
	require.NoError(t, err)
	require.Equal(t, int64(7), res.Accepted)
	late2, err := rdb.ZRangeWithScores(ctx, keys.Late(string(lk), "r"), 0, -1).Result()
	require.NoError(t, err)
	require.Len(t, late2, 2)
	require.Equal(t, now-40, int64(late2[0].Score))
	require.True(t, strings.HasPrefix(late2[0].Member.(string), "7:"), "weight 7: %v", late2[0].Member)
	entries, err = rdb.XRange(ctx, keys.Log(string(lk), "r"), "-", "+").Result()
	require.NoError(t, err)
	require.Len(t, entries, 2, "nothing added to the log")
}
