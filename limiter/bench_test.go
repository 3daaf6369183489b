package limiter_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/internal/keyspace"
	"github.com/ratemon/ratemon/internal/testenv"
	"github.com/ratemon/ratemon/limiter"
	"github.com/ratemon/ratemon/pipeline/event"
)

func benchRules(b *testing.B) *limiter.Ruleset {
	rules := []limiter.Rule{
		{Name: "per-client-minute", Match: limiter.Match{Service: "stocks"}, Limit: 100, Window: time.Minute},
		{Name: "per-route", Key: []limiter.Field{limiter.FieldClient, limiter.FieldRoute}, Limit: 20, Window: 10 * time.Second},
		{Name: "login-burst", Key: []limiter.Field{limiter.FieldIP}, Match: limiter.Match{Route: "POST /login"}, Limit: 5, Window: 10 * time.Second, DenyFor: 15 * time.Minute},
	}
	for i := range rules {
		rules[i].SetDefaults()
	}
	rs, err := limiter.NewRuleset(rules)
	require.NoError(b, err)
	return rs
}

func BenchmarkRuleset_Match(b *testing.B) {
	rs := benchRules(b)
	e := event.Event{Client: "client-000123", Service: "stocks", Route: "GET /stocks/{symbol}/history", Method: "GET", IP: "10.1.2.3", Weight: 1}
	hits := make([]limiter.Hit, 0, 4)
	b.ReportAllocs()
	for b.Loop() {
		hits = rs.Match(hits[:0], &e)
	}
	require.Len(b, hits, 2)
}

func BenchmarkAppendKey(b *testing.B) {
	e := event.Event{Client: "client-000123", Route: "POST /login"}
	shape := limiter.Shape{limiter.FieldClient, limiter.FieldRoute}
	buf := make([]byte, 0, 128)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = limiter.AppendKey(buf[:0], shape, &e)
	}
}

// BenchmarkStore_appendEvaluate measures one ingest batch of 1000 events
// over 200 limit keys: one append call and one evaluation per key, against
// the real Redis.
func BenchmarkStore_appendEvaluate(b *testing.B) {
	now := time.Now().UnixMilli()
	st, rs, clock, _ := newFixture(b, []limiter.Rule{{Name: "r", Limit: 1000, Window: time.Minute}}, now)
	g := &rs.Groups()[0]
	ctx := b.Context()
	seq := uint64(0)
	b.ReportAllocs()
	for b.Loop() {
		now++
		clock.Set(now)
		batch := make([]limiter.KeyAppend, 200)
		keys := make([]limiter.LimitKey, 200)
		for i := range batch {
			seq++
			keys[i] = limiter.LimitKey(fmt.Sprintf("client=c%d", i))
			evs := make([]limiter.Event, 5)
			for j := range evs {
				evs[j] = limiter.Event{TS: now - int64(j), Weight: 1, Mask: 1}
			}
			batch[i] = limiter.KeyAppend{Key: keys[i], Group: g, Messages: []limiter.Message{{Seq: seq, Events: evs}}}
		}
		if _, err := st.Append(ctx, 0, batch); err != nil {
			b.Fatal(err)
		}
		if _, err := st.Evaluate(ctx, rs, keys); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkStore_inlineBatch is one ingest batch as the uniform load of
// `ratemon bench` makes it: 1000 limit keys, each with events from as many
// different messages at as many different milliseconds (1, 10 or 100 per
// key and batch: the sub-benchmark), appended and evaluated in one call per
// key (ingest.evaluation: inline), on a private redis-server; every key
// stays under its limit. redis-us/event and redis-us/call are the server's
// CPU time (INFO cpu): the figures that bound throughput, since Redis runs
// on one core.
func BenchmarkStore_inlineBatch(b *testing.B) {
	for _, perKey := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("events_per_key=%d", perKey), func(b *testing.B) { benchInline(b, perKey, false) })
	}
	for _, perKey := range []int{10, 100} {
		b.Run(fmt.Sprintf("events_per_key=%d/one_message", perKey), func(b *testing.B) { benchInline(b, perKey, true) })
	}
}

// benchInline appends perKey events to each of 1000 keys per call, each
// event from another message, or all from one message (oneMsg).
func benchInline(b *testing.B, perKey int, oneMsg bool) {
	rdb := testenv.StartPrivateRedis(b).Client(b)
	keys, err := keyspace.NewRedis("bench")
	require.NoError(b, err)
	rules := []limiter.Rule{{Name: "r", Limit: 100_000, Window: 10 * time.Second}}
	rules[0].SetDefaults()
	rs, err := limiter.NewRuleset(rules)
	require.NoError(b, err)
	now := time.Now().UnixMilli()
	clock := newTestClock(now)
	st, err := limiter.NewStore(limiter.StoreOptions{Client: rdb, Keys: keys, Clock: clock})
	require.NoError(b, err)
	g := &rs.Groups()[0]
	ctx := b.Context()
	const nkeys = 1000
	seq := uint64(0)
	cpu0 := redisCPU(b, rdb)
	b.ReportAllocs()
	for b.Loop() {
		now += 1000
		clock.Set(now)
		batch := make([]limiter.KeyAppend, nkeys)
		for i := range batch {
			msgs := make([]limiter.Message, perKey)
			for j := range msgs {
				msgs[j] = limiter.Message{Seq: seq + uint64(j) + 1, Events: []limiter.Event{{TS: now - int64(j*1000/perKey), Weight: 1, Mask: 1}}}
			}
			if oneMsg {
				for j := 1; j < perKey; j++ {
					msgs[0].Events = append(msgs[0].Events, msgs[j].Events[0])
				}
				msgs = msgs[:1]
			}
			batch[i] = limiter.KeyAppend{Key: limiter.LimitKey(fmt.Sprintf("client=c%d", i)), Group: g, Messages: msgs}
		}
		seq += uint64(perKey)
		if _, _, err := st.AppendEvaluate(ctx, seq, batch); err != nil {
			b.Fatal(err)
		}
	}
	calls := float64(b.N * nkeys)
	events := calls * float64(perKey)
	cpu := redisCPU(b, rdb) - cpu0
	b.ReportMetric(events/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(cpu*1e6/events, "redis-us/event")
	b.ReportMetric(cpu*1e6/calls, "redis-us/call")
}

// redisCPU is the server's used_cpu_user + used_cpu_sys, in seconds.
func redisCPU(b *testing.B, rdb *redis.Client) float64 {
	info, err := rdb.Info(b.Context(), "cpu").Result()
	require.NoError(b, err)
	var total float64
	for _, line := range strings.Split(info, "\r\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && (k == "used_cpu_user" || k == "used_cpu_sys") {
			f, err := strconv.ParseFloat(v, 64)
			require.NoError(b, err)
			total += f
		}
	}
	return total
}

// BenchmarkStore_flagWrite measures evaluations that write a deny flag: each
// iteration sends 200 fresh limit keys one event each over a limit of 1,
// appended and evaluated in one call per key, so every call sets the flag
// (SET with PX) and returns the change. Reported per flag written.
func BenchmarkStore_flagWrite(b *testing.B) {
	now := time.Now().UnixMilli()
	st, rs, _, _ := newFixture(b, []limiter.Rule{{Name: "r", Limit: 1, Window: time.Minute}}, now)
	g := &rs.Groups()[0]
	ctx := b.Context()
	const nkeys = 200
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		batch := make([]limiter.KeyAppend, nkeys)
		for i := range batch {
			n++
			batch[i] = limiter.KeyAppend{Key: limiter.LimitKey(fmt.Sprintf("client=f%d", n)), Group: g,
				Messages: []limiter.Message{{Seq: uint64(n), Events: []limiter.Event{{TS: now, Weight: 1, Mask: 1}}}}}
		}
		_, evs, err := st.AppendEvaluate(ctx, 0, batch)
		if err != nil {
			b.Fatal(err)
		}
		if len(evs[0].Changes) != 1 {
			b.Fatalf("no flag written: %+v", evs[0])
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*nkeys), "ns/flag")
}
