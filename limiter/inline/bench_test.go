package inline

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/internal/keyspace"
	"github.com/ratemon/ratemon/internal/testenv"
	"github.com/ratemon/ratemon/limiter"
	"github.com/ratemon/ratemon/pipeline/event"
)

// benchRules is a three-rule config whose three key shapes all apply to
// one stocks request: client, ip, and client|route.
func benchRules(t testing.TB) *limiter.Ruleset {
	t.Helper()
	rs, err := limiter.NewRuleset([]limiter.Rule{
		{Name: "per-client-minute", Match: limiter.Match{Service: "stocks"}, Key: []limiter.Field{limiter.FieldClient},
			Limit: 100, Window: time.Minute, Action: limiter.ActionDeny},
		{Name: "per-ip-minute", Match: limiter.Match{Service: "stocks"}, Key: []limiter.Field{limiter.FieldIP},
			Limit: 1000, Window: time.Minute, Action: limiter.ActionDeny},
		{Name: "history-per-client", Match: limiter.Match{Route: "GET /stocks/*/history"},
			Key: []limiter.Field{limiter.FieldClient, limiter.FieldRoute}, Limit: 10, Window: time.Second, Action: limiter.ActionDeny},
	})
	require.NoError(t, err)
	return rs
}

// syncedChecker returns a checker whose local set is in sync, without
// NATS or Redis: the unit under test is the local check alone.
func syncedChecker(t testing.TB, rs *limiter.Ruleset, clock limiter.Clock) *Checker {
	t.Helper()
	opts := CheckerOptions{Rules: rs, Clock: clock}
	_ = opts.validate() // NATS and Redis are not needed here
	c := &Checker{opts: opts, m: opts.Metrics, set: newDenySet()}
	c.fb = newFallback(c)
	c.rules.Store(compile(rs, &c.set.seed))
	c.synced.Store(true)
	return c
}

// fill denies n keys, a third of each shape, until until.
func fill(c *Checker, n int, until int64) {
	for i := range n {
		var k string
		switch i % 3 {
		case 0:
			k = fmt.Sprintf("client=key-%07d", i)
		case 1:
			k = fmt.Sprintf("ip=10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
		default:
			k = fmt.Sprintf("client=key-%07d|route=%s", i, keyspace.Escape("GET /stocks/{symbol}/history"))
		}
		e, ok := c.set.newEntry(k, until, "per-client-minute", false)
		if !ok {
			panic("bad key " + k)
		}
		c.set.set(e)
	}
}

// BenchmarkChecker_Check checks one request against a local deny set of
// 100,000 keys, denied by each key shape in turn, and allowed.
func BenchmarkChecker_Check(b *testing.B) {
	c := syncedChecker(b, benchRules(b), limiter.WallClock{})
	fill(c, 100_000, time.Now().Add(time.Hour).UnixMilli())
	route := "GET /stocks/{symbol}/history"
	cases := []struct {
		name string
		ev   event.Event
		deny bool
	}{
		{"denied_by_client", event.Event{Client: "key-0000300", IP: "192.0.2.1", Service: "stocks", Route: route, Method: "GET"}, true},
		{"denied_by_ip", event.Event{Client: "calm", IP: "10.0.1.45", Service: "stocks", Route: route, Method: "GET"}, true},
		{"denied_by_client_route", event.Event{Client: "key-0000302", IP: "192.0.2.1", Service: "stocks", Route: route, Method: "GET"}, true},
		{"allowed", event.Event{Client: "calm", IP: "192.0.2.1", Service: "stocks", Route: route, Method: "GET"}, false},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			ev := tc.ev
			require.Equal(b, tc.deny, c.Check(&ev).Denied)
			b.ReportAllocs()
			cpu := startCPU(b)
			for b.Loop() {
				if c.Check(&ev).Denied != tc.deny {
					b.Fatal("wrong answer")
				}
			}
			cpu.report(b)
		})
	}
	b.Run("allowed_privacy_hash", func(b *testing.B) {
		h, err := limiter.NewHasher([]limiter.Field{limiter.FieldClient, limiter.FieldIP}, []byte("0123456789abcdef"))
		require.NoError(b, err)
		ch := syncedChecker(b, benchRules(b).WithHasher(h), limiter.WallClock{})
		fill(ch, 100_000, time.Now().Add(time.Hour).UnixMilli())
		ev := cases[3].ev
		b.ReportAllocs()
		cpu := startCPU(b)
		for b.Loop() {
			if ch.Check(&ev).Denied {
				b.Fatal("wrong answer")
			}
		}
		cpu.report(b)
	})
	b.Run("parallel_allowed", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			ev := cases[3].ev
			for pb.Next() {
				if c.Check(&ev).Denied {
					b.Fatal("wrong answer")
				}
			}
		})
	})
}

// TestChecker_Check_doesNotAllocate checks with a fresh event each time,
// as the middleware does: neither the check nor the event allocates.
func TestChecker_Check_doesNotAllocate(t *testing.T) {
	h, err := limiter.NewHasher([]limiter.Field{limiter.FieldClient, limiter.FieldIP}, []byte("0123456789abcdef"))
	require.NoError(t, err)
	for name, rs := range map[string]*limiter.Ruleset{"plain": benchRules(t), "privacy hash": benchRules(t).WithHasher(h)} {
		c := syncedChecker(t, rs, limiter.WallClock{})
		fill(c, 1000, time.Now().Add(time.Hour).UnixMilli())
		for _, client := range []string{"key-0000300", "key-0000302", "calm"} {
			c.Check(&event.Event{Client: client, IP: "10.0.1.45"}) // warm the hash cache
			allocs := testing.AllocsPerRun(1000, func() {
				ev := event.Event{Client: client, IP: "10.0.1.45", Service: "stocks", Route: "GET /stocks/{symbol}/history", Method: "GET"}
				c.Check(&ev)
			})
			require.Zero(t, allocs, "%s, client %s", name, client)
		}
	}
}

// BenchmarkPublisher_Publish is the request-path cost of reporting one
// request: Publish appends it to the open batch and hands full batches
// over. Instead of a sender, the loop itself recycles each full batch (once
// per 256 events), so that the benchmark measures the request path alone
// and nothing is dropped; TestPublisher_overheadAt100k measures Publish
// with the real sender and NATS.
func BenchmarkPublisher_Publish(b *testing.B) {
	n := testenv.StartNATS(b)
	p, err := NewPublisher(PublisherOptions{NATS: n.Connect(b), Service: "stocks"})
	require.NoError(b, err)
	e := event.Event{Client: "key-0000300", TS: 1_767_225_600_000, Service: "stocks", Route: "GET /stocks/{symbol}/history",
		Method: "GET", IP: "192.0.2.1", Status: 200, Weight: 1}
	b.ReportAllocs()
	cpu := startCPU(b)
	for b.Loop() {
		if !p.PublishTimed(&e, 1234*time.Microsecond) {
			b.Fatal("dropped")
		}
		if len(p.ready) > 0 {
			p.recycle(<-p.ready)
		}
	}
	cpu.report(b)
}
