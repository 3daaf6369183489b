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
// message. Reported per event.
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
	b.ReportAllocs()
	for b.Loop() {
		bt := newBatch(rs)
		for i, m := range msgs {
			bt.addMessage(m, uint64(i+1), ts, "stocks", lim, 60_000, nil, nil)
		}
		if len(bt.appends) == 0 {
			b.Fatal("empty batch")
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(msgs)*perMsg), "ns/event")
}
