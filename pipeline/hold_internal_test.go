package pipeline

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/limiter"
)

// rulesetOf is the ruleset of rules, their defaults set.
func rulesetOf(tb testing.TB, rules ...limiter.Rule) *limiter.Ruleset {
	tb.Helper()
	for i := range rules {
		rules[i].SetDefaults()
	}
	rs, err := limiter.NewRuleset(rules)
	require.NoError(tb, err)
	return rs
}

// holdFixture is a holder over one rule "r" (limit 10 per minute).
func holdFixture(t *testing.T) (*holder, *limiter.Ruleset) {
	t.Helper()
	return newHolder(time.Second, 100), rulesetOf(t, limiter.Rule{Name: "r", Limit: 10, Window: time.Minute})
}

// appendOf is one key's events of one message: n events of weight 1.
func appendOf(rs *limiter.Ruleset, key string, seq uint64, n int) limiter.KeyAppend {
	evs := make([]limiter.Event, n)
	for i := range evs {
		evs[i] = limiter.Event{TS: 1000, Weight: 1, Mask: 1}
	}
	return limiter.KeyAppend{Key: limiter.LimitKey(key), Group: &rs.Groups()[0],
		Messages: []limiter.Message{{Seq: seq, Events: evs}}}
}

// evalOf is an evaluation of the rule at count.
func evalOf(key string, count int64) limiter.Evaluation {
	return limiter.Evaluation{Key: limiter.LimitKey(key), Rules: []limiter.RuleState{{Rule: "r", Count: count, Limit: 10}}}
}

// overOf is an evaluation of the rule over its limit (count 12), its flag
// ending at until.
func overOf(key string, until int64) limiter.Evaluation {
	return limiter.Evaluation{Key: limiter.LimitKey(key), Rules: []limiter.RuleState{{Rule: "r", Count: 12, Limit: 10, Over: true, Until: until}}}
}

// sentOnce sends each key's first event (sequences 1, 2, ...) at now and
// answers it with a count of 1: each then knows its room (9).
func sentOnce(h *holder, rs *limiter.Ruleset, now time.Time, keys ...string) {
	for i, k := range keys {
		s, _ := h.plan(rs, []limiter.KeyAppend{appendOf(rs, k, uint64(i+1), 1)}, batchRecs(uint64(i+1)), now, 0)
		h.done(s, []limiter.Evaluation{evalOf(k, 1)}, false)
	}
}

func batchRecs(seqs ...uint64) map[uint64]*msgRec {
	recs := map[uint64]*msgRec{}
	for _, s := range seqs {
		recs[s] = &msgRec{seq: s, replies: []string{"ack.reply"}, pending: 1}
	}
	return recs
}

// A send that fails fails its messages: they are negatively acknowledged
// once and never acknowledged, even when their other shares, held, are
// stored later.
func TestHolder_failedMessageIsNeverAcknowledged(t *testing.T) {
	h, rs := holdFixture(t)
	now := time.Now()
	// Learn both keys' rooms (count 2, room 8).
	recs := batchRecs(1)
	sends, _ := h.plan(rs, []limiter.KeyAppend{appendOf(rs, "client=a", 1, 2), appendOf(rs, "client=b", 1, 2)}, recs, now, 0)
	require.Len(t, sends, 2)
	ack, nak := h.done(sends, []limiter.Evaluation{evalOf("client=a", 2), evalOf("client=b", 2)}, false)
	require.Empty(t, ack)
	require.Empty(t, nak)
	require.Len(t, h.release(recs, false), 1, "message 1 complete")

	// Message 2: a's share (1 < 8/2) is held, b's (9, not below 8/2) goes, and
	// its send fails.
	recs = batchRecs(2)
	sends, why := h.plan(rs, []limiter.KeyAppend{appendOf(rs, "client=a", 2, 1), appendOf(rs, "client=b", 2, 9)}, recs, now, 0)
	require.Equal(t, map[string]int{sendNear: 1}, why)
	require.Len(t, sends, 1)
	require.Equal(t, limiter.LimitKey("client=b"), sends[0].ka.Key)
	ack, nak = h.done(sends, nil, true)
	require.Empty(t, ack)
	require.Len(t, nak, 1, "message 2 negatively acknowledged")
	require.Empty(t, h.release(recs, true))

	// a's held share is stored later: message 2 stays unacknowledged.
	sends, why = h.takeAll()
	require.Equal(t, map[string]int{sendDrain: 1}, why)
	require.Len(t, sends, 1)
	ack, nak = h.done(sends, []limiter.Evaluation{evalOf("client=a", 3)}, false)
	require.Empty(t, ack)
	require.Empty(t, nak)
	// b's room is unknown after the failure: its next events go at once.
	recs = batchRecs(3)
	sends, _ = h.plan(rs, []limiter.KeyAppend{appendOf(rs, "client=b", 3, 1)}, recs, now, 0)
	require.Len(t, sends, 1)
}

// A key is held while what it holds stays below half its room, then sent
// with what it held; its next room is halved again: the steps shrink as
// the key comes near its limit, and the send that reaches the limit
// carries only what came since the last step.
func TestHolder_holdsBelowHalfTheRoom(t *testing.T) {
	h, rs := holdFixture(t)
	now := time.Now()
	k := "client=a"
	first, _ := h.plan(rs, []limiter.KeyAppend{appendOf(rs, k, 1, 2)}, batchRecs(1), now, 0)
	require.Len(t, first, 1, "room unknown: sent")
	h.done(first, []limiter.Evaluation{evalOf(k, 2)}, false) // room 8

	held, _ := h.plan(rs, []limiter.KeyAppend{appendOf(rs, k, 2, 3)}, batchRecs(2), now, 0)
	require.Empty(t, held, "3 < 8/2: held")
	step, why := h.plan(rs, []limiter.KeyAppend{appendOf(rs, k, 3, 1)}, batchRecs(3), now, 0)
	require.Equal(t, map[string]int{sendNear: 1}, why, "3 + 1 reaches half the room (4), far from the limit (8)")
	require.Len(t, step, 1)
	require.Equal(t, int64(4), step[0].weight, "what was held goes with it")
	h.done(step, []limiter.Evaluation{evalOf(k, 6)}, false) // room 4

	held, _ = h.plan(rs, []limiter.KeyAppend{appendOf(rs, k, 4, 1)}, batchRecs(4), now, 0)
	require.Empty(t, held, "1 < 4/2: held")
	step, _ = h.plan(rs, []limiter.KeyAppend{appendOf(rs, k, 5, 1)}, batchRecs(5), now, 0)
	require.Len(t, step, 1, "1 + 1 reaches half the room (2)")
	h.done(step, []limiter.Evaluation{evalOf(k, 8)}, false) // room 2: 2/2 = 1

	step, _ = h.plan(rs, []limiter.KeyAppend{appendOf(rs, k, 6, 1)}, batchRecs(6), now, 0)
	require.Len(t, step, 1, "near the limit every event goes")
	require.Equal(t, int64(1), step[0].weight)
}

// Sends in flight count against the room, and a room read by a send that
// may have run before an older one in Redis is reduced by the older one's
// weight.
func TestHolder_inflightWeightCountsAgainstTheRoom(t *testing.T) {
	h, rs := holdFixture(t)
	now := time.Now()
	k := "client=a"
	first, _ := h.plan(rs, []limiter.KeyAppend{appendOf(rs, k, 1, 1)}, batchRecs(1), now, 0)
	h.done(first, []limiter.Evaluation{evalOf(k, 1)}, false) // room 9

	held, _ := h.plan(rs, []limiter.KeyAppend{appendOf(rs, k, 2, 3)}, batchRecs(2), now, 0)
	require.Empty(t, held, "3 < 9/2: held")
	s1, _ := h.plan(rs, []limiter.KeyAppend{appendOf(rs, k, 3, 6)}, batchRecs(3), now, 0)
	require.Len(t, s1, 1, "3 + 6 reaches the room: sent with what was held")
	require.Equal(t, int64(9), s1[0].weight)
	s2, _ := h.plan(rs, []limiter.KeyAppend{appendOf(rs, k, 4, 1)}, batchRecs(4), now, 0)
	require.Len(t, s2, 1, "the first send's 9 in flight leave no room")
	require.Equal(t, int64(9), s2[0].prior)

	// The newer send answers first, its count (2) lacking the older one's
	// 9: the room it gives is 8 - 9, nothing.
	h.done(s2, []limiter.Evaluation{evalOf(k, 2)}, false)
	s3, _ := h.plan(rs, []limiter.KeyAppend{appendOf(rs, k, 5, 1)}, batchRecs(5), now, 0)
	require.Len(t, s3, 1)
	h.done(s1, []limiter.Evaluation{evalOf(k, 11)}, false) // older: only subtracts
	h.done(s3, []limiter.Evaluation{evalOf(k, 3)}, false)  // newest started: room 7 - prior
	require.Equal(t, int64(7-9), h.keys[limiter.LimitKey(k)].room.weight, "s1 was in flight when s3 started")
}

// A key over its limit holds its events for the hold, but never later
// than holdMargin before its flag ends, and sends them at once when that
// time has come.
func TestHolder_overKeyHoldsWhileItsFlagStands(t *testing.T) {
	h, rs := holdFixture(t)
	now := time.Now()
	k := "client=a"
	s, _ := h.plan(rs, []limiter.KeyAppend{appendOf(rs, k, 1, 12)}, batchRecs(1), now, 0)
	h.done(s, []limiter.Evaluation{overOf(k, 10_000)}, false)
	held, _ := h.plan(rs, []limiter.KeyAppend{appendOf(rs, k, 2, 5)}, batchRecs(2), now, 7_000)
	require.Empty(t, held, "due at 8 s: the 1 s hold ends before the flag's end less the 1 s margin")
	require.Equal(t, now.Add(time.Second), h.keys[limiter.LimitKey(k)].due)
	held, _ = h.plan(rs, []limiter.KeyAppend{appendOf(rs, k, 3, 1)}, batchRecs(3), now, 7_500)
	require.Empty(t, held, "held since 7 s: still within")
	sent, why := h.plan(rs, []limiter.KeyAppend{appendOf(rs, k, 4, 1)}, batchRecs(4), now, 8_000)
	require.Equal(t, map[string]int{sendNear: 1}, why, "held since 7 s: due at 8 s")
	require.Len(t, sent, 1)
	require.Len(t, sent[0].ka.Messages, 3, "with what was held")
	h.done(sent, []limiter.Evaluation{overOf(k, 10_000)}, false)

	held, _ = h.plan(rs, []limiter.KeyAppend{appendOf(rs, k, 5, 1)}, batchRecs(5), now, 8_600)
	require.Empty(t, held, "due at 9 s, the flag's end less the margin, before the hold ends")
	require.Equal(t, now.Add(400*time.Millisecond), h.keys[limiter.LimitKey(k)].due)
	sent, why = h.due(now.Add(399 * time.Millisecond))
	require.Empty(t, sent)
	require.Empty(t, why)
	sent, why = h.due(now.Add(400 * time.Millisecond))
	require.Equal(t, map[string]int{sendAge: 1}, why)
	require.Len(t, sent, 1)
	h.done(sent, []limiter.Evaluation{overOf(k, 10_000)}, false)
	sent, _ = h.plan(rs, []limiter.KeyAppend{appendOf(rs, k, 6, 1)}, batchRecs(6), now, 9_000)
	require.Len(t, sent, 1, "the flag ends within the margin: sent at once")
}

// A key whose due time comes closer while it holds events (its room was
// read again meanwhile) is queued again for the earlier time.
func TestHolder_dueTimeComesCloser(t *testing.T) {
	h, rs := holdFixture(t)
	now := time.Now()
	k := "client=a"
	s, _ := h.plan(rs, []limiter.KeyAppend{appendOf(rs, k, 1, 12)}, batchRecs(1), now, 0)
	h.done(s, []limiter.Evaluation{overOf(k, 60_000)}, false)
	held, _ := h.plan(rs, []limiter.KeyAppend{appendOf(rs, k, 2, 1)}, batchRecs(2), now, 0)
	require.Empty(t, held)
	require.Equal(t, now.Add(time.Second), h.keys[limiter.LimitKey(k)].due)
	// A manual unblock shortened the flag: the room of a later evaluation.
	h.keys[limiter.LimitKey(k)].room = roomOf(&rs.Groups()[0], &limiter.Evaluation{Key: limiter.LimitKey(k),
		Rules: []limiter.RuleState{{Rule: "r", Count: 12, Limit: 10, Over: true, Until: 1_300}}})
	held, _ = h.plan(rs, []limiter.KeyAppend{appendOf(rs, k, 3, 1)}, batchRecs(3), now, 100)
	require.Empty(t, held)
	require.Equal(t, now.Add(200*time.Millisecond), h.keys[limiter.LimitKey(k)].due)
	sent, why := h.due(now.Add(200 * time.Millisecond))
	require.Equal(t, map[string]int{sendAge: 1}, why)
	require.Len(t, sent, 1)
	require.Len(t, sent[0].ka.Messages, 2)
	sent, why = h.due(now.Add(2 * time.Second))
	require.Empty(t, sent, "the first ref finds its events gone")
	require.Empty(t, why)
}

// More than hold_messages messages waiting sends the keys due soonest
// (with one hold for all: those held longest), before they are due.
func TestHolder_fullSendsTheOldest(t *testing.T) {
	_, rs := holdFixture(t)
	h := newHolder(time.Minute, 2)
	now := time.Now()
	sentOnce(h, rs, now, "client=a", "client=b", "client=c")
	var sent []send
	for i, k := range []string{"client=a", "client=b", "client=c"} {
		s, why := h.plan(rs, []limiter.KeyAppend{appendOf(rs, k, uint64(10+i), 1)}, batchRecs(uint64(10+i)), now.Add(time.Duration(i)*time.Millisecond), 0)
		if len(s) > 0 {
			require.Equal(t, map[string]int{sendFull: 1}, why)
		}
		sent = append(sent, s...)
	}
	require.Len(t, sent, 1, "the third held message passes hold_messages 2")
	require.Equal(t, limiter.LimitKey("client=a"), sent[0].ka.Key)
	events, msgs := h.stats()
	require.Equal(t, 2, events)
	require.Equal(t, 2, msgs)
}

// The hold is cut to a quarter of the shortest window, so that a held
// event is still in every window that counts it when it is sent.
func TestHoldFor_quarterOfTheShortestWindow(t *testing.T) {
	rs := rulesetOf(t, limiter.Rule{Name: "a", Limit: 10, Window: time.Minute}, limiter.Rule{Name: "b", Limit: 10, Window: 2 * time.Second})
	require.Equal(t, 500*time.Millisecond, holdFor(time.Second, rs))
	require.Equal(t, 200*time.Millisecond, holdFor(200*time.Millisecond, rs))
}

// sweep forgets idle keys that hold nothing, and only those.
func TestHolder_sweepForgetsIdleEmptyKeys(t *testing.T) {
	h, rs := holdFixture(t)
	then := time.Now()
	sentOnce(h, rs, then, "client=a", "client=b")
	held, _ := h.plan(rs, []limiter.KeyAppend{appendOf(rs, "client=b", 3, 1)}, batchRecs(3), then, 0)
	require.Empty(t, held)
	h.sweep(then.Add(time.Second))
	require.NotContains(t, h.keys, limiter.LimitKey("client=a"), "idle and empty")
	require.Contains(t, h.keys, limiter.LimitKey("client=b"), "holds an event")
}

// Keys never sent are listed for a peek at their state; a room learnt
// from it holds their first events, and a key refused by the peek is sent.
// A key sent once learns from its own evaluations only.
func TestHolder_learnsRoomsOfKeysNeverSent(t *testing.T) {
	h, rs := holdFixture(t)
	now := time.Now()
	_, rs2 := holdFixture(t)
	require.Len(t, h.unknown(rs2, []limiter.KeyAppend{appendOf(rs2, "client=a", 1, 1)}), 1, "the first rules are taken at once")
	require.Nil(t, h.unknown(rs, []limiter.KeyAppend{appendOf(rs, "client=a", 1, 1)}), "new rules: plan starts over first")
	h.plan(rs, nil, nil, now, 0)

	batch := []limiter.KeyAppend{appendOf(rs, "client=a", 1, 1), appendOf(rs, "client=b", 1, 1)}
	kas := h.unknown(rs, batch)
	require.Len(t, kas, 2)
	require.Empty(t, kas[0].Messages, "a peek needs the key and its group only")
	learnt, unknown := h.learn(rs, kas, []limiter.Evaluation{evalOf("client=a", 2), {}}, []bool{true, false})
	require.Equal(t, 1, learnt)
	require.Equal(t, 1, unknown)

	sends, why := h.plan(rs, batch, batchRecs(1), now, 0)
	require.Equal(t, map[string]int{sendNear: 1}, why, "b's room is unknown")
	require.Len(t, sends, 1)
	require.Equal(t, limiter.LimitKey("client=b"), sends[0].ka.Key)
	require.Len(t, h.keys[limiter.LimitKey("client=a")].msgs, 1, "a (1 < room 8) is held")

	h.done(sends, nil, true) // b's send failed: its room stays unknown
	require.Empty(t, h.unknown(rs, batch), "a is known, b was sent")
	learnt, _ = h.learn(rs, kas[1:], []limiter.Evaluation{evalOf("client=b", 0)}, []bool{true})
	require.Zero(t, learnt, "a room read before b's failed send may lack its events")
}

// Keys learnt together (a start) hold their first events for a part of
// the hold drawn per key, from 1 ms to all of it, so that they do not all
// fall due together; after its first send a key holds for the whole hold.
func TestHolder_firstHoldsAreSpread(t *testing.T) {
	h, rs := holdFixture(t) // hold 1 s
	now := time.Now()
	h.plan(rs, nil, nil, now, 0)
	var batch []limiter.KeyAppend
	var evals []limiter.Evaluation
	for i := range 200 {
		k := fmt.Sprintf("client=%d", i)
		batch = append(batch, appendOf(rs, k, 1, 1))
		evals = append(evals, evalOf(k, 0))
	}
	kas := h.unknown(rs, batch)
	learnt, _ := h.learn(rs, kas, evals, slices.Repeat([]bool{true}, len(kas)))
	require.Equal(t, 200, learnt)
	sends, _ := h.plan(rs, batch, batchRecs(1), now, 0)
	require.Empty(t, sends, "all held")
	lo, hi := time.Hour, time.Duration(0)
	for _, hk := range h.keys {
		d := hk.due.Sub(now)
		require.GreaterOrEqual(t, d, time.Millisecond)
		require.LessOrEqual(t, d, time.Second)
		lo, hi = min(lo, d), max(hi, d)
	}
	require.Less(t, lo, 100*time.Millisecond, "spread over the hold")
	require.Greater(t, hi, 900*time.Millisecond, "spread over the hold")

	// Sent once (due), a key holds its next events for the whole hold.
	sends, _ = h.due(now.Add(time.Second))
	require.Len(t, sends, 200)
	h.done(sends, evals, false)
	next := now.Add(2 * time.Second)
	held, _ := h.plan(rs, []limiter.KeyAppend{appendOf(rs, "client=0", 2, 1)}, batchRecs(2), next, 2000)
	require.Empty(t, held)
	require.Equal(t, next.Add(time.Second), h.keys["client=0"].due)
}

// A batch does not send other keys' due events: the flusher does (due),
// so that a batch with keys near a threshold does not wait for them.
func TestHolder_dueKeysAreTheFlushers(t *testing.T) {
	h, rs := holdFixture(t)
	now := time.Now()
	sentOnce(h, rs, now, "client=a", "client=b")
	held, _ := h.plan(rs, []limiter.KeyAppend{appendOf(rs, "client=a", 3, 1)}, batchRecs(3), now, 0)
	require.Empty(t, held)
	later := now.Add(2 * time.Second)
	sends, why := h.plan(rs, []limiter.KeyAppend{appendOf(rs, "client=b", 4, 9)}, batchRecs(4), later, 2000)
	require.Equal(t, map[string]int{sendNear: 1}, why, "a is due, but not this batch's")
	require.Len(t, sends, 1)
	sends, why = h.due(later)
	require.Equal(t, map[string]int{sendAge: 1}, why)
	require.Len(t, sends, 1)
	require.Equal(t, limiter.LimitKey("client=a"), sends[0].ka.Key)
}

// A load generator waiting for acknowledgements lets twice the pull buffer
// wait, plus hold_messages when the daemon holds events.
func TestIngestConfig_loadBacklog(t *testing.T) {
	var c IngestConfig
	c.SetDefaults()
	require.Equal(t, 2*1000*2+12000, c.LoadBacklog())
	c.Hold = -time.Second
	require.Equal(t, 2*1000*2, c.LoadBacklog(), "no holding: nothing held")
	c.Hold = time.Second
	c.Evaluation = EvaluateWorkers
	require.Equal(t, 2*1000*2, c.LoadBacklog(), "workers evaluation never holds")
}

// mergeMessages against a model (a set of sequences, the first copy of each
// kept) on random arrivals: in order, late after a later one, redelivered.
func TestMergeMessages_keepsOneCopyInSequenceOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 200 {
		var msgs []limiter.Message
		var last uint64
		first := map[uint64]int64{} // seq -> TS of the copy kept
		for range 1 + rng.IntN(8) {
			var more []limiter.Message
			for range rng.IntN(6) {
				seq := uint64(1 + rng.IntN(30))
				ts := rng.Int64N(1000)
				more = append(more, limiter.Message{Seq: seq, Events: []limiter.Event{{TS: ts, Weight: 1, Mask: 1}}})
				if _, ok := first[seq]; !ok {
					first[seq] = ts
				}
			}
			msgs, last = mergeMessages(msgs, last, more)
			if len(msgs) > 0 {
				require.Equal(t, msgs[len(msgs)-1].Seq, last, "trial %d: last is the last message's sequence", trial)
			}
		}
		want := slices.Sorted(maps.Keys(first))
		var got []uint64
		for _, m := range msgs {
			got = append(got, m.Seq)
			require.Equal(t, first[m.Seq], m.Events[0].TS, "trial %d: seq %d keeps its first copy", trial, m.Seq)
		}
		require.Equal(t, want, got, "trial %d", trial)
	}
}

// A key's next hold starts with room for the messages its last hold took,
// and a quarter more, so that a steady key's lists do not grow from
// nothing every hold; a key that held many once does not start with more
// than maxHoldCap.
func TestHolder_holdStartsWithRoomForTheLastOne(t *testing.T) {
	h := newHolder(time.Second, 1000)
	rs := rulesetOf(t, limiter.Rule{Name: "r", Limit: 10000, Window: time.Minute})
	k := "client=a"
	now := time.Now()
	answer := func(sends []send) {
		evals := make([]limiter.Evaluation, len(sends))
		for i := range sends {
			evals[i] = limiter.Evaluation{Key: limiter.LimitKey(k), Rules: []limiter.RuleState{{Rule: "r", Count: 1, Limit: 10000}}}
		}
		h.done(sends, evals, false)
	}
	s, _ := h.plan(rs, []limiter.KeyAppend{appendOf(rs, k, 1, 1)}, batchRecs(1), now, 0)
	answer(s) // room 9999
	seq := uint64(1)
	holdN := func(n int) {
		for range n {
			seq++
			held, _ := h.plan(rs, []limiter.KeyAppend{appendOf(rs, k, seq, 1)}, batchRecs(seq), now, 0)
			require.Empty(t, held)
		}
	}
	holdN(8)
	require.Len(t, h.keys[limiter.LimitKey(k)].msgs, 8)
	due, _ := h.due(now.Add(2 * time.Second))
	require.Len(t, due, 1)
	require.Len(t, due[0].ka.Messages, 8)
	answer(due)

	holdN(1)
	hk := h.keys[limiter.LimitKey(k)]
	require.Equal(t, 10, cap(hk.msgs), "8 and a quarter")
	require.Equal(t, 10, cap(hk.recs))

	require.Equal(t, 1, holdCap(0, 0))
	require.Equal(t, 5, holdCap(0, 5), "at least the first batch's messages")
	require.Equal(t, maxHoldCap, holdCap(10*maxHoldCap, 1))
}
