package inline

import (
	"strings"
	"sync/atomic"

	"github.com/ratemon/ratemon/limiter"
	"github.com/ratemon/ratemon/pipeline/event"
)

// hashCacheSlots is the number of values a hashCache remembers at most: a
// power of two (512KiB of pointers).
const hashCacheSlots = 1 << 16

// hashCache remembers the keyed hash (privacy.hash) of client ids and
// addresses, so that a check of a known client costs a hash and a load
// instead of an HMAC. It is two-way set-associative: each value may sit in
// one of two slots (a pair on one cache line) chosen by its seeded hash,
// and a new value takes an empty one, else evicts one of the two. A flood
// of new ids thus costs an HMAC each, never memory, and checks never take
// a lock: each slot is an atomic pointer to an immutable hashed.
//
// Each remembered value also carries the hash a check needs of its hashed
// form, under the deny set's seed, so that a check of a known client does
// not hash the 34-byte hashed id again.
type hashCache struct {
	h          *limiter.Hasher
	client, ip bool     // the fields the daemon hashes
	seed       hashSeed // the deny set's seed: see hashed.sum
	slots      []atomic.Pointer[hashed]
}

// hashed is one remembered value; it is never changed once stored.
type hashed struct {
	raw   string // the value the request gives
	value string // limiter.Hasher.Value(raw)
	sum   uint64 // hashValue(seed, value), the field hash of keyHash
}

// newHashCache returns the cache of rs's hasher for a deny set of the
// given seed, with slots slots (a power of two, at least 2), nil when rs
// hashes nothing.
func newHashCache(rs *limiter.Ruleset, seed *hashSeed, slots int) *hashCache {
	h := rs.Hasher()
	if h == nil {
		return nil
	}
	c := &hashCache{h: h, seed: *seed, slots: make([]atomic.Pointer[hashed], slots)}
	for _, f := range limiter.DocOf(rs).Hash {
		c.client = c.client || f == limiter.FieldClient
		c.ip = c.ip || f == limiter.FieldIP
	}
	return c
}

// apply hashes the fields the daemon hashes in e, in place, as
// limiter.Hasher.Apply does.
func (c *hashCache) apply(e *event.Event) {
	if c.client && e.Client != "" {
		e.Client = c.get(e.Client).value
	}
	if c.ip && e.IP != "" {
		e.IP = c.get(e.IP).value
	}
}

// applyRequest is apply for a prepared request: it also records the
// field hashes of the hashed values, which the cache knows already.
func (c *hashCache) applyRequest(q *request) {
	if v := q.vals[idxClient]; c.client && v != "" {
		p := c.get(v)
		q.vals[idxClient], q.hashes[idxClient] = p.value, p.sum
		q.hashed |= 1 << idxClient
	}
	if v := q.vals[idxIP]; c.ip && v != "" {
		p := c.get(v)
		q.vals[idxIP], q.hashes[idxIP] = p.value, p.sum
		q.hashed |= 1 << idxIP
	}
}

// get returns the remembered hash of v, computing and storing it when v
// is in neither of its slots. Two checks that miss at once both compute
// it; the later store wins, and both answers are right.
func (c *hashCache) get(v string) *hashed {
	h := hashValue(&c.seed, v)
	i := h & uint64(len(c.slots)-1) &^ 1
	pair := c.slots[i : i+2]
	for w := range pair {
		if p := pair[w].Load(); p != nil && p.raw == v {
			return p
		}
	}
	hv := c.h.Value(v)
	p := &hashed{raw: strings.Clone(v), value: hv, sum: hashValue(&c.seed, hv)}
	// An empty slot if there is one, so that any two values of a pair
	// stay; else the one a bit of the hash picks, which the index did not
	// use.
	w := &pair[h>>63]
	switch {
	case pair[0].Load() == nil:
		w = &pair[0]
	case pair[1].Load() == nil:
		w = &pair[1]
	}
	w.Store(p)
	return p
}
