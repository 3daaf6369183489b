package inline

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/limiter"
	"github.com/ratemon/ratemon/pipeline/event"
)

// TestChecker_Check_findsKeysWithEscapedBytes denies, one at a time, keys
// whose values hold the bytes keyspace escapes ({ } | = % and others,
// control and non-ASCII bytes) or none of them, written as the daemon
// writes them, and checks that a check finds each one from the raw
// request, and not a request that differs by one byte.
func TestChecker_Check_findsKeysWithEscapedBytes(t *testing.T) {
	rs, _ := privacyRules(t)
	for name, rs := range map[string]*limiter.Ruleset{"plain": benchRules(t), "privacy hash": rs} {
		t.Run(name, func(t *testing.T) {
			c := syncedChecker(t, rs, limiter.WallClock{})
			until := time.Now().Add(time.Hour).UnixMilli()
			r := rand.New(rand.NewPCG(9, 10))
			gen := func() string {
				const plain, special = "abcXYZ019-._/:", "{}|=% \x00\n\x7f\xff\xc3\xa9*?"
				b := make([]byte, 1+r.IntN(60))
				for i := range b {
					if r.IntN(4) == 0 {
						b[i] = special[r.IntN(len(special))]
					} else {
						b[i] = plain[r.IntN(len(plain))]
					}
				}
				if r.IntN(3) == 0 { // a third of the values need no escaping
					for i := range b {
						b[i] = plain[r.IntN(len(plain))]
					}
				}
				return string(b)
			}
			var denied uint64
			for i := range 3000 {
				ev := event.Event{Client: gen(), IP: gen(), Service: "stocks", Route: "GET /stocks/" + gen() + "/history", Method: "GET"}
				g := &c.rules.Load().groups[i%3]
				hashed := ev
				rs.Hasher().Apply(&hashed)
				k, ok := limiter.KeyOf(g.shape, &hashed)
				require.True(t, ok)
				en, ok := c.set.newEntry(string(k), until, "r", false)
				require.True(t, ok, "%q", k)
				c.set.set(en)

				res := c.Check(&ev)
				require.True(t, res.Denied, "%q", k)
				require.Equal(t, k, res.Key)
				denied++
				other := ev
				if g.shape[0] == limiter.FieldIP {
					other.IP += "x"
				} else {
					other.Client = other.Client[:len(other.Client)-1] + "\x01"
				}
				require.False(t, c.Check(&other).Denied, "%q", k)
				c.set.remove(en)
				require.False(t, c.Check(&ev).Denied, "%q removed", k)
			}
			require.Equal(t, denied, c.m.Checks.Count(SourceLocal, true), "every check is counted")
			require.Equal(t, 2*denied, c.m.Checks.Count(SourceLocal, false))
		})
	}
}

func TestChecker_Check_hashCollisionTakesTheLockedPath(t *testing.T) {
	c := syncedChecker(t, benchRules(t), limiter.WallClock{})
	s := c.set
	until := time.Now().Add(time.Hour).UnixMilli()
	a, b := mustEntry(t, s, "client=a", until), mustEntry(t, s, "client=b", until+1)
	a.hash = b.hash // a holds b's hash in the table: b goes to dup
	s.set(a)
	s.set(b)
	require.Len(t, s.dup, 1)
	// The check of b finds a under b's hash, sees the values differ, and
	// reads dup under the read lock.
	res := c.Check(&event.Event{Client: "b", Service: "stocks"})
	require.True(t, res.Denied)
	require.Equal(t, limiter.LimitKey("client=b"), res.Key)
	require.Equal(t, time.UnixMilli(until+1), res.Until)
	require.False(t, c.Check(&event.Event{Client: "c", Service: "stocks"}).Denied)
}

func TestChecker_Check_duringAWriteTakesTheLockedPath(t *testing.T) {
	c := syncedChecker(t, benchRules(t), limiter.WallClock{})
	s := c.set
	s.set(mustEntry(t, s, "ip=10.0.0.1", time.Now().Add(time.Hour).UnixMilli()))
	ev := event.Event{Client: "calm", IP: "10.0.0.1", Service: "stocks"}
	s.seq.Add(1) // odd, as while a writer changes the table
	var q request
	q.init(&ev)
	_, ok := s.lookupAll(c.rules.Load().groups, &q, false)
	require.False(t, ok, "the lock-free read gives up")
	res := c.Check(&ev)
	s.seq.Add(1)
	require.True(t, res.Denied, "answered under the read lock")
	require.Equal(t, limiter.LimitKey("ip=10.0.0.1"), res.Key)
	require.Equal(t, SourceLocal, res.Source)
}

func TestStripeHint_isAStripe(t *testing.T) {
	var q request
	require.Less(t, stripeHint(&q), uint64(16))
}
