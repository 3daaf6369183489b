package limiter

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// TopEntry is one of a rule's busiest limit keys, with its count now.
type TopEntry struct {
	Rule       string   `json:"rule"`
	Key        LimitKey `json:"key"`
	Count      int64    `json:"count"`
	Limit      int64    `json:"limit"` // after overrides
	State      string   `json:"state"` // "ok", "over" (quota used up), "denied" or "shadow" (a flag is in force)
	FlagLeftMS int64    `json:"flag_left_ms,omitempty"`
}

// RecordTop writes the counts of a set of evaluations into the per-rule top
// sets, each key in the set of its work shard (of shards), pipelined. A
// count of zero is written too, not removed: reports of concurrent batches
// can arrive out of order, and a late zero must not erase a key that is
// busy now. Top re-reads the counts, and trimming drops the lowest.
func (s *Store) RecordTop(ctx context.Context, shards int, evals []Evaluation) error {
	if len(evals) == 0 {
		return nil
	}
	pipe := s.rdb.Pipeline()
	for _, ev := range evals {
		shard := ShardOf(ev.Key, shards)
		for _, r := range ev.Rules {
			pipe.ZAdd(ctx, s.keys.Top(r.Rule, shard), redis.Z{Score: float64(r.Count), Member: string(ev.Key)})
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("record top keys: %w", err)
	}
	return nil
}

// ShardOf maps a limit key to one of n work shards (FNV-1a). Every replica
// must use the same n so that they agree.
func ShardOf(k LimitKey, n int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(k))
	return int(h.Sum32() % uint32(n))
}

// TrimTop keeps the keep highest keys of every rule's top set of a shard.
func (s *Store) TrimTop(ctx context.Context, rs *Ruleset, shard, keep int) error {
	pipe := s.rdb.Pipeline()
	for _, r := range rs.Rules() {
		pipe.ZRemRangeByRank(ctx, s.keys.Top(r.Name, shard), 0, int64(-keep-1))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("trim top keys: %w", err)
	}
	return nil
}

// Top returns the k busiest limit keys of a rule: the 2k best candidates of
// every shard's set, each re-read now (counts decay as windows slide), the
// highest counts first.
func (s *Store) Top(ctx context.Context, rs *Ruleset, rule string, k, shards int) ([]TopEntry, error) {
	r, ok := rs.Rule(rule)
	if !ok {
		return nil, fmt.Errorf("top: no rule %q", rule)
	}
	if k < 1 || k > 1000 {
		return nil, fmt.Errorf("top: k must be between 1 and 1000, got %d", k)
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StringSliceCmd, shards)
	for sh := range shards {
		cmds[sh] = pipe.ZRevRange(ctx, s.keys.Top(rule, sh), 0, int64(2*k-1))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read top keys of %s: %w", rule, err)
	}
	seen := map[string]bool{}
	var cands []LimitKey
	for _, c := range cmds {
		for _, m := range c.Val() {
			if !seen[m] {
				seen[m] = true
				cands = append(cands, LimitKey(m))
			}
		}
	}
	out, err := s.counts(ctx, r, cands)
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Key < out[j].Key
	})
	for len(out) > 0 && out[len(out)-1].Count == 0 {
		out = out[:len(out)-1]
	}
	return out[:min(k, len(out))], nil
}

// counts reads the current count of one rule for a set of keys.
func (s *Store) counts(ctx context.Context, r *Rule, keys []LimitKey) ([]TopEntry, error) {
	now := NowMS(s.clock)
	calls := make([]*call, len(keys))
	for i, k := range keys {
		lk := string(k)
		calls[i] = &call{script: s.scripts.inspect,
			keys: []string{s.keys.State(lk), s.keys.Deny(lk), s.keys.Shadow(lk), s.keys.Overrides(lk), s.keys.Log(lk, r.Name), s.keys.Late(lk, r.Name)},
			args: []any{now, 1, r.Name, r.Limit, r.WindowMS(), r.DenyForMS()}}
	}
	if err := s.exec(ctx, calls); err != nil {
		return nil, fmt.Errorf("read counts of %s: %w", r.Name, err)
	}
	out := make([]TopEntry, 0, len(keys))
	for i, c := range calls {
		v, ok := c.val.([]any)
		if !ok || len(v) != 5 {
			return nil, fmt.Errorf("read counts of %s: unexpected reply %v", keys[i], c.val)
		}
		rules, _ := v[4].([]any)
		f, _ := rules[0].([]any)
		e := TopEntry{Rule: r.Name, Key: keys[i], Count: asInt(f[1]), Limit: asInt(f[2]), State: "ok"}
		if asInt(f[5]) > 0 {
			e.State = "over"
		}
		switch dp, sp := asInt(v[0]), asInt(v[2]); {
		case dp > 0 && r.Action == ActionDeny:
			e.State, e.FlagLeftMS = "denied", dp
		case sp > 0 && r.Action == ActionShadow:
			e.State, e.FlagLeftMS = "shadow", sp
		}
		out = append(out, e)
	}
	return out, nil
}

// ShadowEntry is a limit key that a shadow rule would deny now.
type ShadowEntry struct {
	Flag
	Count int64 `json:"count"`
	Limit int64 `json:"limit"`
}

// Shadowed lists who the shadow rules would deny right now, with counts.
func (s *Store) Shadowed(ctx context.Context, rs *Ruleset) ([]ShadowEntry, error) {
	flags, err := s.Flags(ctx, FlagShadow)
	if err != nil {
		return nil, err
	}
	out := make([]ShadowEntry, 0, len(flags))
	for _, f := range flags {
		e := ShadowEntry{Flag: f}
		if r, ok := rs.Rule(f.Rule); ok {
			if c, err := s.counts(ctx, r, []LimitKey{f.Key}); err == nil && len(c) == 1 {
				e.Count, e.Limit = c[0].Count, c[0].Limit
			}
		}
		out = append(out, e)
	}
	return out, nil
}

// FormatMS writes milliseconds as a short duration for terminals: "4.2s",
// "12m5s", "3h20m", or "-" for none.
func FormatMS(ms int64) string {
	switch {
	case ms <= 0:
		return "-"
	case ms < 10_000:
		return strconv.FormatFloat(float64(ms)/1000, 'f', 1, 64) + "s"
	case ms < 3_600_000:
		return strconv.FormatInt(ms/60_000, 10) + "m" + strconv.FormatInt(ms/1000%60, 10) + "s"
	}
	return strconv.FormatInt(ms/3_600_000, 10) + "h" + strconv.FormatInt(ms/60_000%60, 10) + "m"
}
