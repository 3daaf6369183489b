package inline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"

	"github.com/ratemon/ratemon/internal/backoff"
	"github.com/ratemon/ratemon/limiter"
)

// sourceManual is the source of a flag set by ratemon block.
const sourceManual = "manual"

// reloadTimeout bounds one load of the deny set from Redis.
const reloadTimeout = 30 * time.Second

// sweepEvery bounds the time between two sweeps of the local set; a sweep
// also runs at the earliest end of an entry.
const sweepEvery = time.Second

// Run keeps the local deny set current until ctx is cancelled, then
// returns nil. It reads the rules (with RulesURL), subscribes to the
// decisions, loads the set from Redis, and watches the feed: when the NATS
// connection drops, a probe fails or the subscription drops messages,
// checks fall back to Redis until the feed is back and the set reloaded.
// It returns an error only when it cannot subscribe at all.
func (c *Checker) Run(ctx context.Context) error {
	if c.opts.RulesURL != "" && c.rules.Load() == nil {
		if err := c.fetchRules(ctx); err != nil {
			return nil // ctx ended before the rules could be read
		}
	}
	nc := c.opts.NATS
	sub, err := nc.Subscribe(c.subjects.Decisions(), c.onDecision)
	if err != nil {
		return fmt.Errorf("inline checker: subscribe to %s: %w", c.subjects.Decisions(), err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	status := nc.StatusChanged()
	defer nc.RemoveStatusListener(status)

	// The sweeper has its own goroutine: a check trusts the set, so ended
	// entries must go on time even while this loop waits on Redis or NATS.
	sctx, stopSweep := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { c.sweepLoop(sctx) })
	defer wg.Wait()
	defer stopSweep()

	beat := time.NewTicker(c.opts.Heartbeat)
	defer beat.Stop()
	var refresh <-chan time.Time
	if c.opts.RulesURL != "" {
		t := time.NewTicker(c.opts.RulesRefresh)
		defer t.Stop()
		refresh = t.C
	}
	// retry fires when a resync is due; next is the earliest time of the
	// next attempt after a failure (backoff).
	retry := time.NewTimer(0)
	defer retry.Stop()
	back := backoff.New(100*time.Millisecond, 5*time.Second)
	var next time.Time
	var dropped int
	for {
		select {
		case <-ctx.Done():
			c.setFeed(false, "")
			return nil
		case s := <-status:
			if s != nats.CONNECTED {
				c.setFeed(false, "nats "+s.String())
				continue
			}
			retry.Reset(time.Until(next))
		case <-retry.C:
			if c.synced.Load() || !nc.IsConnected() {
				continue
			}
			if err := c.resync(ctx); err != nil {
				if ctx.Err() != nil {
					continue // stopping
				}
				wait := back.Next()
				next = time.Now().Add(wait)
				c.log.Warn("load deny flags from redis; checks keep using redis", "err", err, "retry_in", wait.String())
				retry.Reset(wait)
				continue
			}
			back.Reset()
			dropped, _ = sub.Dropped()
		case <-beat.C:
			if why := c.probe(sub, &dropped); why != "" {
				c.setFeed(false, why)
			}
			if !c.synced.Load() && nc.IsConnected() && !time.Now().Before(next) {
				retry.Reset(0)
			}
		case <-refresh:
			c.refreshRules(ctx)
		}
	}
}

// sweepLoop deletes the entries of the local set when they end: a timer
// is armed at the earliest end, and re-armed when an earlier one arrives.
func (c *Checker) sweepLoop(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.fb.sweep()
		case <-c.set.wake:
		}
		t.Reset(c.sweepNow())
	}
}

// sweepNow deletes the entries that ended and returns how long to wait
// until the next end (at most sweepEvery).
func (c *Checker) sweepNow() time.Duration {
	now := limiter.NowMS(c.opts.Clock)
	c.m.DeniedKeys.Set(float64(c.set.sweep(now)))
	wait := sweepEvery
	if next := c.set.next(); next > 0 {
		wait = min(wait, time.Duration(next-now)*time.Millisecond)
	}
	return max(wait, 0)
}

// probe checks a live feed: connected, a round trip to the server within
// HeartbeatTimeout, no decision dropped. It returns why the feed is lost,
// or "".
func (c *Checker) probe(sub *nats.Subscription, dropped *int) string {
	nc := c.opts.NATS
	if !c.synced.Load() {
		return ""
	}
	if !nc.IsConnected() {
		return "nats " + nc.Status().String()
	}
	if err := nc.FlushTimeout(c.opts.HeartbeatTimeout); err != nil {
		return "nats probe: " + err.Error()
	}
	if n, err := sub.Dropped(); err == nil && n > *dropped {
		*dropped = n
		return fmt.Sprintf("dropped %d decisions (slow consumer)", n)
	}
	return ""
}

// setFeed records the state of the feed; why says why it was lost.
func (c *Checker) setFeed(up bool, why string) {
	if c.synced.Swap(up) == up {
		return
	}
	if up {
		c.m.FeedUp.Set(1)
		c.log.Info("decision feed up; checks use the local deny set")
		return
	}
	c.m.FeedUp.Set(0)
	if why != "" {
		c.m.FeedLosses.Inc()
		c.log.Warn("decision feed lost; checks fall back to redis", "err", why)
	}
}

// resync makes sure the subscription is live on the server, then reloads
// the set from Redis and marks the feed up. Decisions that arrive during
// the reload win over the snapshot.
func (c *Checker) resync(ctx context.Context) error {
	if err := c.opts.NATS.FlushTimeout(c.opts.HeartbeatTimeout); err != nil {
		return fmt.Errorf("nats flush: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, reloadTimeout)
	defer cancel()
	c.set.beginReload()
	snap, err := c.loadFlags(ctx)
	if err != nil {
		c.set.abortReload()
		c.m.Reloads.WithLabelValues("error").Inc()
		return err
	}
	n := c.set.finishReload(snap)
	c.m.Reloads.WithLabelValues("ok").Inc()
	c.m.DeniedKeys.Set(float64(n))
	c.fb.clear()
	c.setFeed(true, "")
	c.log.Debug("deny set loaded", "keys", n)
	return nil
}

// loadFlags reads every deny flag from Redis (SCAN of the flag keys, then
// GET and PTTL of each, pipelined), on every master of a cluster.
func (c *Checker) loadFlags(ctx context.Context) ([]*entry, error) {
	var snap []*entry
	var mu sync.Mutex // guards snap
	now := limiter.NowMS(c.opts.Clock)
	one := func(ctx context.Context, rdb redis.UniversalClient) error {
		var cursor uint64
		for {
			keys, next, err := rdb.Scan(ctx, cursor, c.keys.DenyPattern(), 1000).Result()
			if err != nil {
				return fmt.Errorf("scan deny flags: %w", err)
			}
			lks := make([]string, 0, len(keys))
			for _, k := range keys {
				if lk, ok := c.keys.LimitKeyOf(k); ok {
					lks = append(lks, lk)
				}
			}
			got, err := c.readFlags(ctx, rdb, lks, now)
			if err != nil {
				return err
			}
			mu.Lock() // ForEachMaster reads every master at once
			for _, e := range got {
				if e != nil {
					snap = append(snap, e)
				}
			}
			mu.Unlock()
			if next == 0 {
				return nil
			}
			cursor = next
		}
	}
	if cc, ok := c.opts.Redis.(*redis.ClusterClient); ok {
		err := cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error { return one(ctx, m) })
		return snap, err
	}
	return snap, one(ctx, c.opts.Redis)
}

// readFlags reads the deny flags of the limit keys lks (GET and PTTL,
// pipelined); the entry of a key that is not denied is nil.
func (c *Checker) readFlags(ctx context.Context, rdb redis.UniversalClient, lks []string, now int64) ([]*entry, error) {
	out := make([]*entry, len(lks))
	if len(lks) == 0 {
		return out, nil
	}
	pipe := rdb.Pipeline()
	gets := make([]*redis.StringCmd, len(lks))
	ttls := make([]*redis.DurationCmd, len(lks))
	for i, lk := range lks {
		dk := c.keys.Deny(lk)
		gets[i] = pipe.Get(ctx, dk)
		ttls[i] = pipe.PTTL(ctx, dk)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read deny flags: %w", err)
	}
	for i, lk := range lks {
		raw, err := gets[i].Bytes()
		if err != nil {
			continue // not denied, or gone since the scan
		}
		var until int64
		var f limiter.Flag
		if f, err = limiter.ParseFlag(raw); err == nil {
			until = f.Until
		}
		switch d, err := ttls[i].Result(); {
		case err != nil || d == -2:
			continue
		case d == -1: // no TTL: until deleted
			until = math.MaxInt64
		case until <= now:
			until = now + d.Milliseconds()
		}
		if until <= now {
			continue
		}
		if e, ok := c.set.newEntry(lk, until, f.Rule, f.Source == sourceManual); ok {
			out[i] = e
		}
	}
	return out, nil
}

// onDecision applies one decision of the feed to the set. It runs on the
// subscription's goroutine.
func (c *Checker) onDecision(msg *nats.Msg) {
	var d limiter.Decision
	if err := json.Unmarshal(msg.Data, &d); err != nil || d.Key == "" {
		c.m.Decisions.WithLabelValues("invalid").Inc()
		return
	}
	if d.Kind != limiter.FlagDeny {
		c.m.Decisions.WithLabelValues("ignored").Inc()
		return
	}
	k := string(d.Key)
	e, ok := c.set.newEntry(k, d.Until, d.Rule, d.Source == sourceManual)
	switch {
	case !ok:
		c.m.Decisions.WithLabelValues("invalid").Inc()
		return
	case d.Allowed || d.Until <= limiter.NowMS(c.opts.Clock): // allowed, or a deny that has ended already
		c.set.remove(e)
		c.m.Decisions.WithLabelValues("allow").Inc()
	default:
		c.set.set(e)
		c.m.Decisions.WithLabelValues("deny").Inc()
	}
	c.fb.forget(k)
	if c.opts.OnDecision != nil {
		c.opts.OnDecision(d)
	}
}

// fetchRules reads the rules from RulesURL, retrying until it works or ctx
// ends.
func (c *Checker) fetchRules(ctx context.Context) error {
	back := backoff.New(200*time.Millisecond, 5*time.Second)
	for {
		rs, err := c.getRules(ctx)
		if err == nil {
			c.rules.Store(compile(rs, &c.set.seed))
			c.log.Info("rules loaded", "rules", len(rs.Rules()))
			return nil
		}
		wait := back.Next()
		c.log.Warn("read rules from the daemon; checks answer by policy", "err", err, "retry_in", wait.String())
		if err := backoff.Sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// refreshRules reads the rules again; on failure the old ones stay.
func (c *Checker) refreshRules(ctx context.Context) {
	rs, err := c.getRules(ctx)
	if err != nil {
		c.log.Warn("refresh rules from the daemon; keeping the old ones", "err", err)
		return
	}
	c.rules.Store(compile(rs, &c.set.seed))
}

func (c *Checker) getRules(ctx context.Context) (*limiter.Ruleset, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return FetchRules(ctx, c.opts.HTTPClient, c.opts.RulesURL, c.opts.HashKey)
}
