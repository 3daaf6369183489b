package inline

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/ratemon/ratemon/limiter"
	"github.com/ratemon/ratemon/pipeline/event"
)

// fallback answers checks from the deny flags in Redis while the feed is
// lost: one pipelined round trip (GET and PTTL of each limit key's flag)
// with a short timeout, and a small cache of the answers. After a Redis
// failure it answers by policy, without asking, for RedisRetry.
type fallback struct {
	c *Checker

	mu    sync.Mutex
	cache map[string]cached // limit key → answer; guarded by mu

	downUntil atomic.Int64 // Unix ns: do not ask Redis before
}

// cached is one fallback answer about one limit key.
type cached struct {
	e       *entry // nil: not denied
	expires int64  // Unix ns
}

func newFallback(c *Checker) *fallback {
	return &fallback{c: c, cache: map[string]cached{}}
}

// check answers from the cache and Redis.
func (f *fallback) check(cr *compiled, e *event.Event) Result {
	c := f.c
	keys := limitKeys(cr, e)
	if len(keys) == 0 {
		c.m.Checks.add(SourceLocal, false, 0)
		return Result{Source: SourceLocal}
	}
	now := c.opts.Clock.Now()
	nowMS, nowNS := now.UnixMilli(), now.UnixNano()
	var best *entry
	better := func(e *entry) {
		if e != nil && e.until > nowMS && (best == nil || e.until > best.until) {
			best = e
		}
	}
	var miss []string
	f.mu.Lock()
	for _, k := range keys {
		ca, ok := f.cache[k]
		if !ok || ca.expires <= nowNS {
			miss = append(miss, k)
			continue
		}
		better(ca.e)
	}
	f.mu.Unlock()
	if len(miss) > 0 {
		if f.downUntil.Load() > nowNS {
			return c.byPolicy()
		}
		ctx, cancel := context.WithTimeout(context.Background(), c.opts.FallbackTimeout)
		got, err := c.readFlags(ctx, c.opts.Redis, miss, nowMS)
		cancel()
		if err != nil {
			f.downUntil.Store(nowNS + int64(c.opts.RedisRetry))
			c.log.Warn("read deny flags from redis; checks answer by policy", "err", err,
				"policy", string(c.opts.Policy), "retry_in", c.opts.RedisRetry.String())
			return c.byPolicy()
		}
		f.store(miss, got, nowNS)
		for _, e := range got {
			better(e)
		}
	}
	c.m.Checks.add(SourceRedis, best != nil, 0)
	res := Result{Source: SourceRedis}
	if best != nil {
		best.fill(&res)
	}
	return res
}

func (f *fallback) store(keys []string, got []*entry, nowNS int64) {
	exp := nowNS + int64(f.c.opts.FallbackCacheTTL)
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.cache)+len(keys) > f.c.opts.FallbackCacheSize {
		clear(f.cache) // small and short-lived: starting over is cheaper than evicting
	}
	for i, k := range keys {
		f.cache[k] = cached{e: got[i], expires: exp}
	}
}

// forget drops the cached answer about k: the feed said something newer.
func (f *fallback) forget(k string) {
	f.mu.Lock()
	delete(f.cache, k)
	f.mu.Unlock()
}

// clear empties the cache once the local set is in sync again.
func (f *fallback) clear() {
	f.mu.Lock()
	clear(f.cache)
	f.mu.Unlock()
}

// sweep deletes the expired answers.
func (f *fallback) sweep() {
	now := f.c.opts.Clock.Now().UnixNano()
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, ca := range f.cache {
		if ca.expires <= now {
			delete(f.cache, k)
		}
	}
}

// limitKeys returns the limit keys of e, one per key shape some rule
// counts e for (as if e were not refused).
func limitKeys(cr *compiled, e *event.Event) []string {
	if cr.hashes != nil {
		h := *e
		cr.hashes.apply(&h)
		e = &h
	}
	var q request
	q.init(e)
	var keys []string
	var buf [256]byte
	for gi := range cr.groups {
		g := &cr.groups[gi]
		if !g.matchesAny(&q) {
			continue
		}
		if k, ok := limiter.AppendKey(buf[:0], g.shape, e); ok {
			keys = append(keys, string(k))
		}
	}
	return keys
}
