// Package modelcheck compares what the Redis store holds with what the
// in-memory reference model (limiter.Model) says it must hold: per rule the
// count, whether the key is over and when its flag ends, and per key the
// deny and shadow flags themselves. Tests, the fault checker and the
// benchmark all judge ratemon with it.
package modelcheck

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ratemon/ratemon/internal/keyspace"
	"github.com/ratemon/ratemon/limiter"
)

// Options names what to compare.
type Options struct {
	Store *limiter.Store
	Rules *limiter.Ruleset
	Redis redis.UniversalClient
	Keys  keyspace.Redis
	Model *limiter.Model
	Now   int64 // Unix ms the store's clock reads (frozen in tests)
	// Started is the real time the store's clock was frozen at Now. A flag
	// the model expects may have expired in real time since then: its TTL
	// was set relative to Now. Zero means the clock is not frozen.
	Started time.Time
}

// Report is the outcome of a comparison.
type Report struct {
	Keys       int      // limit keys compared
	Over       int      // (rule, key) pairs over their limit
	Flags      int      // flags found and checked
	Mismatches []string // one line per difference; empty when the store agrees
}

// Compare evaluates every limit key the model has seen, in the store, and
// compares the results and the flags with the model.
func Compare(ctx context.Context, o Options) (Report, error) {
	var rep Report
	keys := o.Model.Keys()
	rep.Keys = len(keys)
	evals, err := o.Store.Evaluate(ctx, o.Rules, keys)
	if err != nil {
		return rep, fmt.Errorf("evaluate: %w", err)
	}
	if len(evals) != len(keys) {
		return rep, fmt.Errorf("evaluated %d keys of %d", len(evals), len(keys))
	}
	bad := func(format string, args ...any) {
		rep.Mismatches = append(rep.Mismatches, fmt.Sprintf(format, args...))
	}
	for _, got := range evals {
		want := o.Model.Evaluate(o.Now, got.Key)
		if len(got.Rules) != len(want.Rules) {
			bad("%s: %d rules evaluated, model has %d", got.Key, len(got.Rules), len(want.Rules))
			continue
		}
		for i, w := range want.Rules {
			g := got.Rules[i]
			if g.Rule != w.Rule || g.Count != w.Count || g.Over != w.Over || g.Until != w.Until {
				bad("%s %s: store count=%d over=%v until=%d, model count=%d over=%v until=%d",
					got.Key, w.Rule, g.Count, g.Over, g.Until, w.Count, w.Over, w.Until)
			}
			if w.Over {
				rep.Over++
			}
		}
		for _, c := range []struct {
			key  string
			want limiter.ModelFlag
		}{{o.Keys.Deny(string(got.Key)), want.Deny}, {o.Keys.Shadow(string(got.Key)), want.Shadow}} {
			if err := o.flag(ctx, c.key, got.Key, c.want, &rep); err != nil {
				bad("%s", err)
			}
		}
	}
	return rep, nil
}

func (o Options) flag(ctx context.Context, key string, lk limiter.LimitKey, want limiter.ModelFlag, rep *Report) error {
	val, err := o.Redis.Get(ctx, key).Result()
	switch {
	case errors.Is(err, redis.Nil) && want.Until == 0:
		return nil
	case errors.Is(err, redis.Nil):
		if !o.Started.IsZero() && want.Until-o.Now <= time.Since(o.Started).Milliseconds() {
			return nil // its TTL ran out in real time while the check ran
		}
		return fmt.Errorf("%s: missing, model expects it until %d (rule %s)", key, want.Until, want.Rule)
	case err != nil:
		return fmt.Errorf("%s: %w", key, err)
	case want.Until == 0:
		return fmt.Errorf("%s: present (%s), model expects none", key, val)
	}
	f, err := limiter.ParseFlag([]byte(val))
	if err != nil {
		return err
	}
	rep.Flags++
	if f.Until != want.Until || f.Rule != want.Rule || f.Key != lk {
		return fmt.Errorf("%s: store until=%d rule=%s key=%s, model until=%d rule=%s", key, f.Until, f.Rule, f.Key, want.Until, want.Rule)
	}
	return nil
}

// CompareNow is Compare on a store of o.Redis whose clock is frozen at the
// current time (o.Store, o.Now and o.Started are set here). It writes flags,
// as every evaluation does, so it runs once the daemons have stopped. Flags
// whose own until has passed are deleted first: they have ended by
// contract, but Redis may hold one a few milliseconds longer (its TTL
// counts from before the script ran), which Compare would report as a flag
// the model does not have.
func CompareNow(ctx context.Context, o Options) (Report, error) {
	now := time.Now()
	if err := DropEnded(ctx, o.Redis, o.Keys, now.UnixMilli()); err != nil {
		return Report{}, err
	}
	store, err := limiter.NewStore(limiter.StoreOptions{Client: o.Redis, Keys: o.Keys, Clock: limiter.FixedClock(now)})
	if err != nil {
		return Report{}, err
	}
	if err := store.Load(ctx); err != nil {
		return Report{}, err
	}
	o.Store, o.Now, o.Started = store, now.UnixMilli(), now
	rep, err := Compare(ctx, o)
	if err != nil {
		return rep, fmt.Errorf("compare with the model: %w", err)
	}
	return rep, nil
}

// DropEnded deletes the deny and shadow flags whose until is at or before
// now (Unix ms).
func DropEnded(ctx context.Context, rdb redis.UniversalClient, keys keyspace.Redis, now int64) error {
	for _, pattern := range []string{keys.DenyPattern(), keys.ShadowPattern()} {
		iter := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
		for iter.Next(ctx) {
			v, err := rdb.Get(ctx, iter.Val()).Bytes()
			if errors.Is(err, redis.Nil) {
				continue
			}
			if err != nil {
				return fmt.Errorf("read %s: %w", iter.Val(), err)
			}
			if f, err := limiter.ParseFlag(v); err == nil && f.Until <= now {
				if err := rdb.Del(ctx, iter.Val()).Err(); err != nil {
					return fmt.Errorf("delete ended flag %s: %w", iter.Val(), err)
				}
			}
		}
		if err := iter.Err(); err != nil {
			return fmt.Errorf("scan flags %s: %w", pattern, err)
		}
	}
	return nil
}
