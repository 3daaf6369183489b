package chaos

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/limiter"
)

func TestJudgeFlag(t *testing.T) {
	const at = 1_000_000
	for _, c := range []struct {
		name      string
		got, want int64
		ok        bool
	}{
		{"both absent", 0, 0, true},
		{"same end", at + 5000, at + 5000, true},
		{"model's ends right now", 0, at + 100, true},
		{"redis's ends right now", at + 100, 0, true},
		{"missing", 0, at + 5000, false},
		{"false flag", at + 5000, 0, false},
		{"other end", at + 5000, at + 6000, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			require.Equal(t, c.ok, judgeFlag(at, c.got, c.want) == "", judgeFlag(at, c.got, c.want))
		})
	}
}

// TestFalseDecisions: a decision may end before the model's flag (it was
// taken on part of the events) but never after it, nor where the model
// has no flag.
func TestFalseDecisions(t *testing.T) {
	rules := faultRules(1)
	rs, err := limiter.NewRuleset(rules)
	require.NoError(t, err)
	now := time.Now().UnixMilli()
	m := limiter.NewModel(rs)
	var evs []limiter.Event
	for i := range 150 {
		evs = append(evs, limiter.Event{TS: now - 60_000 + int64(i)*100, Weight: 1, Mask: 1})
	}
	m.Add(now, "client=a", []limiter.Message{{Events: evs}})
	tr := &trace{now: now, model: m}
	want, _ := tr.flagsAt(now, "client=a")
	require.Positive(t, want)
	bad := falseDecisions(tr, []limiter.Decision{
		{Key: "client=a", Kind: limiter.FlagDeny, Until: want, Source: "rule"},
		{Key: "client=a", Kind: limiter.FlagDeny, Until: want - 1000, Source: "rule"},
		{Key: "client=a", Kind: limiter.FlagDeny, Allowed: true, Source: "rule"},
		{Key: "client=a", Kind: limiter.FlagDeny, Until: want + 1, Source: "rule"},
		{Key: "client=b", Kind: limiter.FlagDeny, Until: now + 1000, Source: "rule"},
		{Key: "client=b", Kind: limiter.FlagDeny, Until: now + 1000, Source: "manual"},
	})
	require.Len(t, bad, 2)
	require.Contains(t, bad[0], "client=a deny flag")
	require.Contains(t, bad[1], "client=b deny flag")
}

func TestJudgeResources(t *testing.T) {
	samples := func(redis func(i int) int64) []SoakSample {
		var out []SoakSample
		for i := range 120 { // ten minutes
			rss := int64(200+40*(i%3)) << 20 // a garbage collector's swing
			out = append(out, SoakSample{AtS: float64(i * 5), RedisBytes: redis(i), RSSBytes: rss})
		}
		return out
	}
	flat := &LoadResult{Pass: true, WarmUp: 4 * time.Minute, Samples: samples(func(i int) int64 {
		if i < 48 {
			return int64(i) << 20 // warm-up
		}
		return int64(100+5*(i%2)) << 20
	})}
	judgeResources(flat)
	require.True(t, flat.Pass, flat.Problems)
	require.InDelta(t, 0, flat.Redis.Drift, 0.01)
	require.Equal(t, int64(280)<<20, flat.RSS.Max)

	falling := &LoadResult{Pass: true, WarmUp: 4 * time.Minute, Samples: samples(func(i int) int64 { return int64(300-i) << 20 })}
	judgeResources(falling)
	require.True(t, falling.Pass, "memory given back is no failure: %v", falling.Problems)

	growing := &LoadResult{Pass: true, WarmUp: 4 * time.Minute, Samples: samples(func(i int) int64 { return int64(100+i) << 20 })}
	judgeResources(growing)
	require.False(t, growing.Pass)
	require.Contains(t, growing.Problems[0], "redis used_memory")
	require.InDelta(t, 0.30, growing.Redis.Drift, 0.01)
}

// TestProxy_delaysReplies: a reply crosses the proxy no sooner than the
// delay, and holding tells while it waits.
func TestProxy_delaysReplies(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		b := make([]byte, 4)
		for {
			if _, err := c.Read(b); err != nil {
				return
			}
			_, _ = c.Write([]byte("pong"))
		}
	}()
	p, err := startProxy(ln.Addr().String(), testLogger(t))
	require.NoError(t, err)
	defer p.close()
	p.setDelay(100 * time.Millisecond)
	c, err := net.Dial("tcp", p.addr())
	require.NoError(t, err)
	defer c.Close()
	start := time.Now()
	_, err = c.Write([]byte("ping"))
	require.NoError(t, err)
	require.Eventually(t, p.holding, time.Second, time.Millisecond)
	b := make([]byte, 4)
	_, err = c.Read(b)
	require.NoError(t, err)
	require.Equal(t, "pong", string(b))
	require.GreaterOrEqual(t, time.Since(start), 100*time.Millisecond)
	// The proxy lets go of the reply once it has written it, which may be
	// a moment after the client has read it.
	require.Eventually(t, func() bool { return !p.holding() }, time.Second, time.Millisecond)
}
