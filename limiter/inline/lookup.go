package inline

import "github.com/ratemon/ratemon/limiter"

// lookupAll returns, of the request's limit keys for the matching groups,
// the denied one whose flag ends last. Without the read lock, ok is false
// when a writer changed the set meanwhile or a hash collision needs the
// lock: ask again locked. An entry is denied until Run's sweep deletes it,
// at its until (within a timer's precision): no clock read on the request
// path.
//
// This is the whole hot path of a check, written as one loop: the table's
// slots are loaded once, and each group's key hash is folded from the
// request's field hashes here rather than through a chain of calls.
func (s *denySet) lookupAll(groups []group, q *request, locked bool) (best *entry, ok bool) {
	seq := s.seq.Load()
	if !locked && seq&1 == 1 {
		return nil, false
	}
	tab := s.m.Load().slots()
	for gi := range groups {
		g := &groups[gi]
		// A request that lacks a field of the shape has no key of it:
		// testing that first, on a bit mask, skips matching the rules.
		if g.need&^q.present != 0 || !g.matchesAny(q) {
			continue
		}
		if m := g.need &^ q.hashed; m != 0 {
			q.hashFields(&s.seed, m)
		}
		h := g.hash0
		for _, i := range g.index {
			h = mixHash(h, q.hashes[i&(numIdx-1)])
		}
		ent := tab.get(h)
		if ent == nil {
			continue
		}
		if ent.code != g.code || !q.sameValues(g, ent) {
			if ent, ok = s.lookupDup(g, q, locked); !ok {
				return nil, false
			}
			if ent == nil {
				continue
			}
		}
		if best == nil || ent.until > best.until {
			best = ent
		}
	}
	if !locked && s.seq.Load() != seq {
		return nil, false
	}
	return best, true
}

// lookupDup returns the entry of the limit key of g's shape for q from
// dup, after the table held another key under the same hash. Without the
// read lock (locked false) it reports ok false when dup is not empty: the
// caller then takes the lock and asks again.
func (s *denySet) lookupDup(g *group, q *request, locked bool) (e *entry, ok bool) {
	if s.ndup.Load() == 0 {
		return nil, true
	}
	if !locked {
		return nil, false
	}
	ev := q.event()
	k, has := limiter.KeyOf(g.shape, &ev) // allocates; only after a hash collision
	if !has {
		return nil, true
	}
	return s.dup[string(k)], true
}
