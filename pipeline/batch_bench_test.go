package pipeline

import (
	"fmt"
	"testing"
	"time"

	"github.com/ratemon/ratemon/limiter"
	"github.com/ratemon/ratemon/pipeline/event"
)

// BenchmarkBatch_addMessage builds one ingest batch as the bench load makes
// it: NATS messages of 100 NDJSON events over 10,000 clients, decoded,
// matched against one per-client rule and grouped per limit key and
// message. Reported per event. One batch is reset and reused, as each batch
// loop reuses its own; msgs=8 is a batch of a paced load (about 200,000
// events/s), msgs=1000 a full one.
func BenchmarkBatch_addMessage(b *testing.B) {
	rs := rulesetOf(b, limiter.Rule{Name: "per-client", Limit: 1000, Window: 10 * time.Second})
	const perMsg = 100
	msgs := make([][]byte, 1000)
	ts := time.Now().UnixMilli()
	for i := range msgs {
		var m []byte
		for j := range perMsg {
			m = fmt.Appendf(m, `{"client":"k%06d","route":"GET /stocks/{symbol}/history","ts":%d}`+"\n", (i*perMsg+j*7919)%10000, ts)
		}
		msgs[i] = m
	}
	var lim event.Limits // the defaults
	for _, n := range []int{8, 1000} {
		b.Run(fmt.Sprintf("msgs=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			bt := newBatch(nil)
			for b.Loop() {
				bt.reset(rs)
				for i, m := range msgs[:n] {
					bt.addMessage(m, uint64(i+1), ts, "stocks", lim, 60_000, nil, nil)
				}
				if len(bt.appends) == 0 {
					b.Fatal("empty batch")
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n*perMsg), "ns/event")
		})
	}
}
