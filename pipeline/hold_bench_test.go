package pipeline

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ratemon/ratemon/limiter"
	"github.com/ratemon/ratemon/pipeline/event"
)

// BenchmarkHolder_paced runs the holder as a paced load drives it: batches
// of 8 messages of 100 events over 10,000 clients picked at random, one
// batch every 2.86 ms (280,000 events/s), every key far below its limit,
// so that each holds its events for the 2.5 s hold and is sent when due
// (by the flusher, here right after each batch) or with a batch that
// brings it events after that. Per batch: plan, the batch's release, the
// due keys, and the answers of both (done). Reported per event.
func BenchmarkHolder_paced(b *testing.B) {
	rs := rulesetOf(b, limiter.Rule{Name: "per-client", Limit: 1000, Window: 10 * time.Second})
	const (
		perMsg   = 100
		perBatch = 8
		batches  = 1200 // 3.4 s: every key is held and sent at least once
		step     = 2857 * time.Microsecond
		// passes: the batches are planned this many times over (10.3 s),
		// so that most holds are steady ones, not a key's first (drawn
		// shorter, and with nothing learnt from an earlier hold).
		passes = 3
	)
	var lim event.Limits
	appends := make([][]limiter.KeyAppend, batches)
	seq := uint64(0)
	rng := rand.New(rand.NewPCG(1, 2)) // keys at random: each comes due at its own time
	for i := range appends {
		bt := newBatch(rs)
		for range perBatch {
			seq++
			var m []byte
			for range perMsg {
				m = fmt.Appendf(m, `{"client":"k%06d","ts":%d}`+"\n", rng.IntN(10000), 1000+i*3)
			}
			bt.addMessage(m, seq, 0, "svc", lim, 60_000, nil, nil)
		}
		appends[i] = bt.appends
	}
	perRun := 0
	for _, kas := range appends {
		for _, ka := range kas {
			for _, m := range ka.Messages {
				perRun += len(m.Events)
			}
		}
	}
	perRun *= passes
	eval := func(s send) limiter.Evaluation {
		return limiter.Evaluation{Key: s.ka.Key, Rules: []limiter.RuleState{{Rule: "per-client", Count: 150, Limit: 1000}}}
	}
	answer := func(h *holder, sends []send) {
		evals := make([]limiter.Evaluation, len(sends))
		for i, s := range sends {
			evals[i] = eval(s)
		}
		h.done(sends, evals, false)
	}
	b.ReportAllocs()
	var runs, sent, dueSent int
	for b.Loop() {
		runs++
		h := newHolder(2500*time.Millisecond, 12000)
		now := time.Unix(1_800_000_000, 0)
		seq := uint64(0)
		for i := range passes * len(appends) {
			kas := appends[i%len(appends)]
			if i%len(appends) == 0 {
				seq = 0 // each pass's messages are those of the first
			}
			recs := map[uint64]*msgRec{}
			for range perBatch {
				seq++
				recs[seq] = &msgRec{seq: seq, replies: []string{"ack"}, pending: 1}
			}
			sends, _ := h.plan(rs, kas, recs, now, now.UnixMilli())
			answer(h, sends)
			sent += len(sends)
			h.release(recs, false)
			due, _ := h.due(now)
			answer(h, due)
			dueSent += len(due)
			now = now.Add(step)
		}
	}
	if sent == 0 || dueSent == 0 {
		b.Fatalf("sent %d keys with their batch and %d when due: the load does not exercise holding", sent, dueSent)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(runs*perRun), "ns/event")
}
