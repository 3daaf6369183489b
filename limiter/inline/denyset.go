package inline

import (
	"container/heap"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/ratemon/ratemon/internal/keyspace"
	"github.com/ratemon/ratemon/limiter"
)

// entry is one denied limit key in the local set.
type entry struct {
	key    string        // the limit key, as the daemon writes it
	shape  limiter.Shape // its fields
	code   uint64        // shapeCode(shape)
	vals   []string      // its values, unescaped, in shape order
	hash   uint64        // keyHash of shape and vals
	until  int64         // Unix ms the flag ends
	rule   string        // rule that set the flag; "" for a manual block
	manual bool          // a manual block (ratemon block)
	queued int64         // the until under which the key sits in the expiry heap; 0: not queued
}

// denySet is the local copy of the deny flags. An entry in the set means
// denied: the checker's Run deletes each entry at its until (sweep, woken
// by a timer at the earliest end), so that a check needs no clock. A
// min-heap of ends lets sweep find them without scanning the table.
//
// The set is keyed by a 64-bit hash of the key's shape and unescaped
// values, which a check computes from the request without building the
// escaped key; a hit is confirmed by comparing the values. Two keys with
// the same hash (about one chance in 10^9 with 100,000 keys) are kept
// apart: the second one lives in dup, under its string, and is looked up
// only when the first one does not match.
//
// Concurrency: writers (the feed, sweep, reload) hold mu and make seq odd
// while they change the table. Checks read without a lock: they note seq,
// look up (every table slot is atomic, every entry immutable once
// published, except queued which only writers touch), and accept the
// answer if seq did not move; otherwise, and on the rare hash-collision
// path (dup is a plain map), they look up again under the read lock.
type denySet struct {
	mu   sync.RWMutex
	seq  atomic.Uint64 // odd while a writer changes m or dup
	seed hashSeed
	m    atomic.Pointer[table]
	dup  map[string]*entry // keys whose hash is taken in m by another key; guarded by mu
	ndup atomic.Int64      // len(dup), readable without mu
	exp  expiryHeap        // guarded by mu
	// touched is non-nil while a reload runs: the keys the feed changed
	// since it started, whose state is newer than the reload's snapshot.
	touched map[string]struct{}
	// wake tells the sweeper that the earliest end moved earlier.
	wake chan struct{}
}

// lock takes the write lock and marks a change in progress; unlock ends
// both.
func (s *denySet) lock() {
	s.mu.Lock()
	s.seq.Add(1)
}

func (s *denySet) unlock() {
	s.ndup.Store(int64(len(s.dup)))
	s.seq.Add(1)
	s.mu.Unlock()
}

func newDenySet() *denySet {
	s := &denySet{seed: newHashSeed(), dup: map[string]*entry{}, wake: make(chan struct{}, 1)}
	s.m.Store(&table{})
	return s
}

// next returns the earliest end in the heap, 0 when empty.
func (s *denySet) next() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.exp) == 0 {
		return 0
	}
	return s.exp[0].at
}

// signal wakes the sweeper without waiting.
func (s *denySet) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// newEntry parses the limit key k into an entry; ok is false when k is not
// well formed (no request can have such a key).
func (s *denySet) newEntry(k string, until int64, rule string, manual bool) (*entry, bool) {
	e := &entry{key: k, until: until, rule: rule, manual: manual}
	for part := range strings.SplitSeq(k, "|") {
		f, v, ok := strings.Cut(part, "=")
		if !ok || v == "" || limiter.Field(f).Validate() != nil {
			return nil, false
		}
		e.shape = append(e.shape, limiter.Field(f))
		e.vals = append(e.vals, keyspace.Unescape(v))
	}
	e.code = shapeCode(e.shape)
	h := shapeSeed(e.shape)
	for i := range e.vals {
		h = mixHash(h, hashValue(&s.seed, e.vals[i]))
	}
	e.hash = h
	return e, true
}

// shapeCode numbers a shape exactly: its field indexes (1..5) as digits
// in base 8. Two shapes are equal when their codes are.
func shapeCode(shape limiter.Shape) uint64 {
	var c uint64
	for _, f := range shape {
		c = c<<3 | fieldIndex(f)
	}
	return c
}

// shapeSeed starts a key hash with its shape.
func shapeSeed(shape limiter.Shape) uint64 {
	h := uint64(len(shape))
	for _, f := range shape {
		h = mixHash(h, fieldIndex(f))
	}
	return h
}

// fieldIndex numbers the fields 1..5 (0 for an unknown one): the index
// of the field in request.vals and request.hashes.
func fieldIndex(f limiter.Field) uint64 {
	switch f {
	case limiter.FieldClient:
		return idxClient
	case limiter.FieldIP:
		return idxIP
	case limiter.FieldService:
		return idxService
	case limiter.FieldRoute:
		return idxRoute
	case limiter.FieldMethod:
		return idxMethod
	}
	return 0
}

// mixHash folds v into h. The values are seeded hashValue outputs, uniform
// and unknown to clients, so one odd multiply suffices: it keeps the low
// bits (the table's index) uniform and makes the order of fields matter.
func mixHash(h, v uint64) uint64 {
	return (h ^ v) * 0x9e3779b97f4a7c15
}

// getLocked returns the entry of the limit key k, whose hash is h.
func (s *denySet) getLocked(k string, h uint64) *entry {
	if e := s.m.Load().get(h); e != nil && e.key == k {
		return e
	}
	return s.dup[k]
}

// set records that a limit key is denied until e.until.
func (s *denySet) set(e *entry) {
	s.lock()
	defer s.unlock()
	s.setLocked(e)
	if s.touched != nil {
		s.touched[e.key] = struct{}{}
	}
}

func (s *denySet) setLocked(e *entry) {
	e.queued = 0
	if old := s.getLocked(e.key, e.hash); old != nil {
		e.queued = old.queued
	}
	// One heap item per key: a later end keeps the earlier item, which is
	// re-queued at the new end when it comes up (see sweep).
	if e.queued == 0 || e.until < e.queued {
		if len(s.exp) == 0 || e.until < s.exp[0].at {
			s.signal()
		}
		heap.Push(&s.exp, expiry{key: e.key, hash: e.hash, at: e.until})
		e.queued = e.until
	}
	if cur := s.m.Load().get(e.hash); cur != nil && cur.key != e.key {
		s.dup[e.key] = e
		return
	}
	s.m.Load().put(e.hash, e)
}

// remove forgets the limit key of e (its flag was deleted before its end).
func (s *denySet) remove(e *entry) {
	s.lock()
	defer s.unlock()
	s.removeLocked(e.key, e.hash)
	if s.touched != nil {
		s.touched[e.key] = struct{}{}
	}
}

func (s *denySet) removeLocked(k string, h uint64) {
	m := s.m.Load()
	if cur := m.get(h); cur != nil && cur.key == k {
		m.del(h)
		for dk, d := range s.dup { // promote a key of the same hash
			if d.hash == h {
				delete(s.dup, dk)
				m.put(h, d)
				break
			}
		}
		return
	}
	delete(s.dup, k)
}

// sweep deletes the entries that ended at or before now and returns how
// many keys remain.
func (s *denySet) sweep(now int64) int {
	s.lock()
	defer s.unlock()
	for s.exp.Len() > 0 && s.exp[0].at <= now {
		it := heap.Pop(&s.exp).(expiry)
		e := s.getLocked(it.key, it.hash)
		if e == nil || e.queued != it.at {
			continue // removed, or queued again under another end
		}
		if e.until <= now {
			s.removeLocked(it.key, it.hash)
			continue
		}
		heap.Push(&s.exp, expiry{key: it.key, hash: it.hash, at: e.until})
		e.queued = e.until
	}
	return s.m.Load().len() + len(s.dup)
}

// len returns the number of keys held, ended or not.
func (s *denySet) len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.m.Load().len() + len(s.dup)
}

// beginReload starts recording the keys the feed changes, so that a
// snapshot read from Redis meanwhile does not undo them.
func (s *denySet) beginReload() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.touched = map[string]struct{}{}
}

// abortReload stops recording after a failed reload.
func (s *denySet) abortReload() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.touched = nil
}

// finishReload replaces the set by snap, the flags read from Redis since
// beginReload, keeping the state of the keys the feed changed meanwhile.
// The new maps and heap are built before the lock is taken, so checks wait
// only for the swap.
func (s *denySet) finishReload(snap []*entry) int {
	m := &table{}
	dup := map[string]*entry{}
	exp := make(expiryHeap, 0, len(snap))
	for _, e := range snap {
		e.queued = e.until
		exp = append(exp, expiry{key: e.key, hash: e.hash, at: e.until})
		if cur := m.get(e.hash); cur != nil && cur.key != e.key {
			dup[e.key] = e
			continue
		}
		m.put(e.hash, e)
	}
	heap.Init(&exp)
	s.lock()
	defer s.unlock()
	oldM, oldDup := s.m.Load(), s.dup
	s.m.Store(m)
	s.dup, s.exp = dup, exp
	for k := range s.touched {
		probe, ok := s.newEntry(k, 0, "", false)
		if !ok {
			continue
		}
		old := oldM.get(probe.hash)
		if old == nil || old.key != k {
			old = oldDup[k]
		}
		if old != nil {
			s.setLocked(old)
			continue
		}
		s.removeLocked(k, probe.hash)
	}
	s.touched = nil
	s.signal()
	return s.m.Load().len() + len(s.dup)
}

// expiry is one heap item: the key ends at at.
type expiry struct {
	key  string
	hash uint64
	at   int64
}

// expiryHeap is a min-heap of ends, for container/heap.
type expiryHeap []expiry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}
