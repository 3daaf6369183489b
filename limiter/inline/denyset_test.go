package inline

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/limiter"
	"github.com/ratemon/ratemon/pipeline/event"
)

func mustEntry(t *testing.T, s *denySet, k string, until int64) *entry {
	t.Helper()
	e, ok := s.newEntry(k, until, "r", false)
	require.True(t, ok, k)
	return e
}

// has reports whether the client's key is denied at now.
func has(s *denySet, client string, now int64) bool {
	g := newGroup(limiter.Shape{limiter.FieldClient})
	g.rules = []matcher{{}} // matches every request
	var q request
	q.init(&event.Event{Client: client})
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, _ := s.lookupAll([]group{g}, &q, true)
	return e != nil && e.until > now
}

func TestDenySet_sweepDeletesEndedKeys(t *testing.T) {
	s := newDenySet()
	s.set(mustEntry(t, s, "client=a", 100))
	s.set(mustEntry(t, s, "client=b", 200))
	s.set(mustEntry(t, s, "client=b", 300)) // extended: one heap item, re-queued when it comes up
	s.set(mustEntry(t, s, "client=c", 300))
	s.set(mustEntry(t, s, "client=c", 150)) // shortened: queued again at the earlier end
	require.Equal(t, 3, s.sweep(99))
	require.Equal(t, 2, s.sweep(100))
	require.False(t, has(s, "a", 100))
	require.Equal(t, 1, s.sweep(250))
	require.True(t, has(s, "b", 250))
	require.False(t, has(s, "c", 250))
	require.Zero(t, s.sweep(300))
	require.Empty(t, s.exp, "no heap item is left behind")
}

func TestDenySet_malformedKeysAreRefused(t *testing.T) {
	s := newDenySet()
	for _, k := range []string{"", "client", "client=", "bogus=x", "client=a|", "client=a|ip"} {
		_, ok := s.newEntry(k, 1, "", false)
		require.False(t, ok, "%q", k)
	}
}

func TestDenySet_reloadKeepsWhatTheFeedSaidMeanwhile(t *testing.T) {
	s := newDenySet()
	s.set(mustEntry(t, s, "client=stale", 1000))     // gone from Redis: dropped by the reload
	s.set(mustEntry(t, s, "client=kept", 1000))      // still in Redis
	s.set(mustEntry(t, s, "client=unblocked", 1000)) // in the snapshot, unblocked during the reload
	s.beginReload()
	snap := []*entry{mustEntry(t, s, "client=kept", 1000), mustEntry(t, s, "client=unblocked", 1000), mustEntry(t, s, "client=new", 1000)}
	s.remove(mustEntry(t, s, "client=unblocked", 0))
	s.set(mustEntry(t, s, "client=fresh", 1000)) // denied during the reload, after the scan passed it
	require.Equal(t, 3, s.finishReload(snap))
	for client, want := range map[string]bool{"stale": false, "kept": true, "unblocked": false, "new": true, "fresh": true} {
		require.Equal(t, want, has(s, client, 0), client)
	}
	require.Nil(t, s.touched)
}

func TestDenySet_hashCollisionsAreKeptApart(t *testing.T) {
	s := newDenySet()
	a, b := mustEntry(t, s, "client=a", 100), mustEntry(t, s, "client=b", 200)
	a.hash = b.hash // force a onto b's hash: b then collides with a
	s.set(a)
	s.set(b)
	require.Len(t, s.dup, 1)
	// A check for b computes b's hash, finds a there, sees the key differ,
	// and finds b in dup: a hit is never trusted on the hash alone.
	require.True(t, has(s, "b", 0))
	s.remove(a)
	require.Empty(t, s.dup, "b is promoted into the table when a leaves")
	require.True(t, has(s, "b", 0))
	require.Equal(t, 1, s.len())
	require.Equal(t, 1, s.sweep(100))
	require.Zero(t, s.sweep(200))
}
