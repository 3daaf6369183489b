package inline

import (
	"strings"
	"sync"

	"github.com/ratemon/ratemon/limiter"
	"github.com/ratemon/ratemon/pipeline/event"
)

// maxHashCache bounds the hashed values a checker remembers.
const maxHashCache = 1 << 16

// hashCache remembers the keyed hash (privacy.hash) of client ids and
// addresses, so that a check of a known client costs a map lookup instead
// of an HMAC. When it is full it starts over: a flood of new ids costs an
// HMAC each, never memory.
type hashCache struct {
	h          *limiter.Hasher
	client, ip bool              // the fields the daemon hashes
	mu         sync.RWMutex      // guards m
	m          map[string]string // raw value → hashed
}

// newHashCache returns the cache of rs's hasher, nil when rs hashes
// nothing.
func newHashCache(rs *limiter.Ruleset) *hashCache {
	h := rs.Hasher()
	if h == nil {
		return nil
	}
	c := &hashCache{h: h, m: map[string]string{}}
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
		e.Client = c.value(e.Client)
	}
	if c.ip && e.IP != "" {
		e.IP = c.value(e.IP)
	}
}

func (c *hashCache) value(v string) string {
	c.mu.RLock()
	hv, ok := c.m[v]
	c.mu.RUnlock()
	if ok {
		return hv
	}
	hv = c.h.Value(v)
	c.mu.Lock()
	if len(c.m) >= maxHashCache {
		clear(c.m)
	}
	c.m[strings.Clone(v)] = hv
	c.mu.Unlock()
	return hv
}
