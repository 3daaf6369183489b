package inline

import (
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/limiter"
	"github.com/ratemon/ratemon/pipeline/event"
)

func privacyRules(t testing.TB) (*limiter.Ruleset, *limiter.Hasher) {
	t.Helper()
	h, err := limiter.NewHasher([]limiter.Field{limiter.FieldClient, limiter.FieldIP}, []byte("0123456789abcdef"))
	require.NoError(t, err)
	return benchRules(t).WithHasher(h), h
}

func TestHashCache_sameAsHasher_throughConflicts(t *testing.T) {
	rs, h := privacyRules(t)
	seed := newHashSeed()
	c := newHashCache(rs, &seed, 8) // 8 slots for 200 values: most gets replace another value
	for round := range 3 {
		for i := range 200 {
			v := "client-" + strconv.Itoa(i)
			p := c.get(v)
			require.Equal(t, v, p.raw, "round %d", round)
			require.Equal(t, h.Value(v), p.value, "round %d", round)
			require.Equal(t, hashValue(&seed, p.value), p.sum, "the field hash a check needs")
		}
	}
}

func TestHashCache_keepsAnyTwoValuesOfAPair(t *testing.T) {
	rs, _ := privacyRules(t)
	seed := newHashSeed()
	c := newHashCache(rs, &seed, 2) // one pair: every value lands on it
	a, b := c.get("a"), c.get("b")
	require.Same(t, a, c.get("a"), "remembered, not computed again")
	require.Same(t, b, c.get("b"))
	cv := c.get("c") // evicts one of them
	require.Same(t, cv, c.get("c"))
}

func TestHashCache_applyRequest_sameAsHasherApply(t *testing.T) {
	rs, h := privacyRules(t)
	seed := newHashSeed()
	c := newHashCache(rs, &seed, hashCacheSlots)
	for _, e := range []event.Event{
		{Client: "acme", IP: "10.0.0.1", Service: "stocks"},
		{Client: "acme", IP: "", Service: "stocks"},
		{Client: "", IP: "::1"},
		{Client: "a|b{c}%", IP: "10.0.0.1"},
	} {
		want := e
		h.Apply(&want)
		var q request
		q.init(&e)
		c.applyRequest(&q)
		require.Equal(t, want, q.event(), "%+v", e)
		for _, i := range []uint8{idxClient, idxIP} {
			if q.hashed&(1<<i) != 0 {
				require.Equal(t, hashValue(&seed, q.vals[i]), q.hashes[i], "%+v field %d", e, i)
			}
		}
		got := e
		c.apply(&got)
		require.Equal(t, want, got, "apply, for the fallback path")
	}
}

func TestHashCache_concurrentGets(t *testing.T) {
	rs, h := privacyRules(t)
	seed := newHashSeed()
	c := newHashCache(rs, &seed, 16)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 500 {
				v := strconv.Itoa((i + w) % 40)
				if got := c.get(v).value; got != h.Value(v) {
					t.Errorf("value of %q: got %q", v, got)
					return
				}
			}
		})
	}
	wg.Wait()
}
