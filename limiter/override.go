package limiter

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// AllRules is the Override rule that applies to every rule of a key.
const AllRules = "*"

// Override changes the limit of one limit key at runtime, without a
// reload: workers apply it at the key's next evaluation, which Store
// triggers at once. Either Limit (an absolute limit, for one rule) or
// Factor (a multiplier, for one rule or AllRules) is set.
type Override struct {
	Key    LimitKey `json:"key"`
	Rule   string   `json:"rule"`             // a rule name, or "*" for every rule of the key
	Limit  int64    `json:"limit,omitempty"`  // absolute limit
	Factor float64  `json:"factor,omitempty"` // multiplier of the configured limit
	Until  int64    `json:"until,omitempty"`  // Unix ms the key's overrides end; 0: never
}

func (o Override) validate(rs *Ruleset) error {
	var errs []error
	if _, err := ParseKey(string(o.Key)); err != nil {
		errs = append(errs, err)
	}
	switch {
	case o.Rule == "":
		errs = append(errs, errors.New("rule: required (a rule name, or * for every rule)"))
	case o.Rule != AllRules:
		r, ok := rs.Rule(o.Rule)
		if !ok {
			errs = append(errs, fmt.Errorf("rule: no rule %q", o.Rule))
			break
		}
		if shape, ok := ShapeOf(o.Key); ok && !shape.Equal(r.Key) {
			errs = append(errs, fmt.Errorf("rule: %s counts keys of %s, not %s", o.Rule, Shape(r.Key), shape))
		}
	}
	switch {
	case o.Limit != 0 && o.Factor != 0:
		errs = append(errs, errors.New("give a limit or a factor, not both"))
	case o.Limit < 0 || o.Limit > MaxLimit:
		errs = append(errs, fmt.Errorf("limit: must be between 1 and %d, got %d", int64(MaxLimit), o.Limit))
	case o.Factor < 0 || o.Factor > 1e6 || math.IsNaN(o.Factor):
		errs = append(errs, fmt.Errorf("factor: must be above 0 and at most 1000000, got %g", o.Factor))
	case o.Limit == 0 && o.Factor == 0:
		errs = append(errs, errors.New("give a limit or a factor"))
	case o.Limit != 0 && o.Rule == AllRules:
		errs = append(errs, errors.New("an absolute limit needs one rule; use a factor for every rule"))
	}
	return errors.Join(errs...)
}

// SetOverride stores an override for d (0: until removed) and evaluates the
// key at once, so that its flag follows; the caller publishes the returned
// decisions.
func (s *Store) SetOverride(ctx context.Context, rs *Ruleset, o Override, d time.Duration) ([]Decision, error) {
	if err := o.validate(rs); err != nil {
		return nil, invalid(err)
	}
	if d < 0 || d > MaxManual {
		return nil, invalid(fmt.Errorf("for: must be between 0 and %v, got %v", MaxManual, d))
	}
	lk := string(o.Key)
	k := s.keys.Overrides(lk)
	st := s.keys.State(lk)
	v := strconv.FormatInt(o.Limit, 10)
	if o.Factor != 0 {
		v = "x" + strconv.FormatFloat(o.Factor, 'g', -1, 64)
	}
	// The _o marker in the state tells evaluations to read the overrides;
	// the state must live as long as they do.
	pipe := s.rdb.TxPipeline()
	pipe.HSet(ctx, k, o.Rule, v)
	pipe.HSet(ctx, st, "_o", "1")
	if d > 0 {
		pipe.PExpire(ctx, k, d)
		// GT extends a TTL; NX sets one on a state without (a key never
		// evaluated yet), which GT alone leaves persistent.
		pipe.ExpireGT(ctx, st, d+time.Minute)
		pipe.ExpireNX(ctx, st, d+time.Minute)
	} else {
		pipe.Persist(ctx, k)
		pipe.Persist(ctx, st)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("set override of %s: %w", o.Key, err)
	}
	return s.reevaluate(ctx, rs, o.Key)
}

// ClearOverride removes the override of one rule (or "*") of a key, or all
// of them when rule is empty, and evaluates the key at once.
func (s *Store) ClearOverride(ctx context.Context, rs *Ruleset, key LimitKey, rule string) ([]Decision, error) {
	if _, err := ParseKey(string(key)); err != nil {
		return nil, invalid(err)
	}
	k := s.keys.Overrides(string(key))
	st := s.keys.State(string(key))
	var err error
	if rule == "" {
		err = s.rdb.Del(ctx, k).Err()
	} else {
		err = s.rdb.HDel(ctx, k, rule).Err()
	}
	if err == nil && s.rdb.Exists(ctx, k).Val() == 0 {
		// No override left: the state may expire again, once no event and
		// no manual entry needs it.
		ttl := StateTTL(rs.MaxRetention())
		for _, mk := range []string{s.keys.Block(string(key)), s.keys.Allow(string(key))} {
			if d, e := s.rdb.PTTL(ctx, mk).Result(); e == nil && d+time.Minute > ttl {
				ttl = d + time.Minute
			}
		}
		pipe := s.rdb.TxPipeline()
		pipe.HDel(ctx, st, "_o")
		pipe.PExpire(ctx, st, ttl)
		_, err = pipe.Exec(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("clear override of %s: %w", key, err)
	}
	return s.reevaluate(ctx, rs, key)
}

func (s *Store) reevaluate(ctx context.Context, rs *Ruleset, key LimitKey) ([]Decision, error) {
	evals, err := s.Evaluate(ctx, rs, []LimitKey{key})
	if err != nil {
		return nil, err
	}
	var ds []Decision
	for _, e := range evals {
		ds = append(ds, e.Changes...)
	}
	return ds, nil
}

// Overrides lists every override in force, by key and rule.
func (s *Store) Overrides(ctx context.Context) ([]Override, error) {
	var keys []string
	err := s.scanKeys(ctx, s.keys.OverridesPattern(), func(k string) { keys = append(keys, k) })
	if err != nil {
		return nil, err
	}
	var out []Override
	for _, k := range keys {
		lk, ok := s.keys.LimitKeyOf(k)
		if !ok {
			continue
		}
		m, err := s.rdb.HGetAll(ctx, k).Result()
		if err != nil {
			return nil, fmt.Errorf("read overrides of %s: %w", lk, err)
		}
		var until int64
		if ttl, err := s.rdb.PTTL(ctx, k).Result(); err == nil && ttl > 0 {
			until = NowMS(s.clock) + ttl.Milliseconds()
		}
		for rule, v := range m {
			o := Override{Key: LimitKey(lk), Rule: rule, Until: until}
			if f, ok := strings.CutPrefix(v, "x"); ok {
				o.Factor, _ = strconv.ParseFloat(f, 64)
			} else {
				o.Limit, _ = strconv.ParseInt(v, 10, 64)
			}
			out = append(out, o)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Key != out[j].Key {
			return out[i].Key < out[j].Key
		}
		return out[i].Rule < out[j].Rule
	})
	return out, nil
}

// StateTTL is the TTL that window.lua gives the state hash of a limit key
// whose longest rule retention is maxRetentionMS (its ttls function): the
// retention, the period between two refreshes (half of the retention plus
// a minute) and a minute.
func StateTTL(maxRetentionMS int64) time.Duration {
	period := (maxRetentionMS + 60000) / 2
	return time.Duration(maxRetentionMS+period+60000) * time.Millisecond
}
