package inline

import "sync/atomic"

// table is an open-addressing hash table of entries by their 64-bit key
// hash, with linear probing, kept at most half full. The hashes come from
// a seeded hash (hashValue), well mixed and unknown to clients, so a
// lookup is usually one probe and nobody can line keys up to collide.
//
// Writers (put, del) must be serialised by the caller (denySet.mu). get
// may run at the same time as a writer: every slot is read and written
// atomically, so it never sees a torn slot, but it may miss an entry that
// a writer is moving; denySet's sequence counter tells the reader to try
// again.
type table struct {
	arr atomic.Pointer[slots]
	n   int // entries; writers only
}

// slots is the array of a table; len(s) is a power of two.
type slots []slot

// slot holds one entry and its hash; a nil entry means empty.
type slot struct {
	hash atomic.Uint64
	e    atomic.Pointer[entry]
}

// get returns the entry whose hash is h, or nil.
func (t *table) get(h uint64) *entry {
	return t.slots().get(h)
}

// slots returns the table's current array, nil when it has none. A check
// loads it once and probes it for each of its keys; it stays valid for as
// long as denySet.seq does not move.
func (t *table) slots() slots {
	if a := t.arr.Load(); a != nil {
		return *a
	}
	return nil
}

// get returns the entry of s whose hash is h, or nil.
func (s slots) get(h uint64) *entry {
	if len(s) == 0 {
		return nil
	}
	mask := uint64(len(s) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		e := s[i].e.Load()
		if e == nil {
			return nil
		}
		if s[i].hash.Load() == h {
			return e
		}
	}
}

// put stores e under h, replacing the entry of the same hash.
func (t *table) put(h uint64, e *entry) {
	a := t.arr.Load()
	if a == nil || 2*(t.n+1) > len(*a) {
		a = t.grow()
	}
	s := *a
	mask := uint64(len(s) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		if s[i].e.Load() == nil {
			s[i].hash.Store(h) // before the entry: a reader that sees the entry sees its hash
			s[i].e.Store(e)
			t.n++
			return
		}
		if s[i].hash.Load() == h {
			s[i].e.Store(e)
			return
		}
	}
}

// del removes the entry of hash h, shifting back the entries after it so
// that no probe sequence is broken (no tombstones).
func (t *table) del(h uint64) {
	a := t.arr.Load()
	if a == nil {
		return
	}
	s := *a
	mask := uint64(len(s) - 1)
	i := h & mask
	for ; s[i].hash.Load() != h || s[i].e.Load() == nil; i = (i + 1) & mask {
		if s[i].e.Load() == nil {
			return
		}
	}
	s[i].e.Store(nil)
	t.n--
	for j := (i + 1) & mask; s[j].e.Load() != nil; j = (j + 1) & mask {
		home := s[j].hash.Load() & mask
		// The entry at j stays when its home lies cyclically in (i, j].
		if (i < j && i < home && home <= j) || (i > j && (i < home || home <= j)) {
			continue
		}
		s[i].hash.Store(s[j].hash.Load())
		s[i].e.Store(s[j].e.Load())
		s[j].e.Store(nil)
		i = j
	}
}

// grow doubles the array (at least 16 slots) and returns the new one.
func (t *table) grow() *slots {
	old := t.arr.Load()
	n := 16
	if old != nil {
		n = 2 * len(*old)
	}
	fresh := make(slots, n)
	mask := uint64(n - 1)
	if old != nil {
		for k := range *old {
			e := (*old)[k].e.Load()
			if e == nil {
				continue
			}
			h := (*old)[k].hash.Load()
			i := h & mask
			for fresh[i].e.Load() != nil {
				i = (i + 1) & mask
			}
			fresh[i].hash.Store(h)
			fresh[i].e.Store(e)
		}
	}
	t.arr.Store(&fresh)
	return &fresh
}

// len returns the number of entries.
func (t *table) len() int { return t.n }
