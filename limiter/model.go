package limiter

import (
	"sort"
)

// Model is the reference semantics of the window store: a plain in-memory
// implementation, written for clarity, not speed. Tests replay the same
// event trace through Redis and through a Model and require equal counts,
// flags and ends of flags; `ratemon bench` uses it to count false and missed
// denies. It is not safe for concurrent use.
//
// The semantics, for one rule with limit L, window W and deny_for D, and one
// limit key:
//
//   - An event is accepted unless its id or its NATS message was already
//     counted for the key, or its ts is at or before T - R, where T is the
//     later of now and the newest accepted ts, and R is W + D (the rule's
//     retention).
//   - count(x) is the sum of the weights of accepted events with ts in
//     (x - W, x].
//   - At evaluation time now, T is the later of now and the newest ts. Without
//     deny_for the key is over when count(T) >= L, and its flag ends at
//     ts(e) + W for the event e at which the weights summed from the newest
//     backwards first reach L: the first instant the window holds less than L.
//   - With deny_for, the key trips at the ts of every accepted event x with
//     count(x) >= L, and is blocked until the latest such x plus D.
//   - A key's deny flag ends at the latest end over its deny rules (the first
//     rule in config order wins a tie); likewise the shadow flag.
type Model struct {
	rules *Ruleset
	keys  map[LimitKey]*modelKey
}

type modelKey struct {
	group *Group
	msgs  map[uint64]bool
	ids   map[string]bool
	rules []*modelRule
}

type modelRule struct {
	entries []modelEntry
	top     int64
}

type modelEntry struct{ ts, w int64 }

// NewModel returns an empty model for a rule set.
func NewModel(rs *Ruleset) *Model {
	return &Model{rules: rs, keys: map[LimitKey]*modelKey{}}
}

func (m *Model) key(k LimitKey) *modelKey {
	mk := m.keys[k]
	if mk == nil {
		g, ok := m.rules.GroupFor(k)
		if !ok {
			return nil
		}
		mk = &modelKey{group: g, msgs: map[uint64]bool{}, ids: map[string]bool{}}
		for range g.Rules {
			mk.rules = append(mk.rules, &modelRule{top: -1})
		}
		m.keys[k] = mk
	}
	return mk
}

// Add applies what one batch brings to one limit key, at time now (Unix
// ms), exactly as Store.Append does: messages already applied and event ids
// already counted are skipped, then each rule takes its events in event-time
// order and drops those at or before T - R.
func (m *Model) Add(now int64, k LimitKey, msgs []Message) {
	mk := m.key(k)
	if mk == nil {
		return
	}
	perRule := make([][]modelEntry, len(mk.group.Rules))
	for _, msg := range msgs {
		if msg.Seq != 0 {
			if mk.msgs[msg.Seq] {
				continue
			}
			mk.msgs[msg.Seq] = true
		}
		for _, e := range msg.Events {
			if e.ID != "" {
				if mk.ids[e.ID] {
					continue
				}
				mk.ids[e.ID] = true
			}
			for i := range mk.group.Rules {
				if e.Mask&(1<<uint(i)) != 0 {
					perRule[i] = append(perRule[i], modelEntry{ts: e.TS, w: e.Weight})
				}
			}
		}
	}
	for i, r := range mk.group.Rules {
		mr := mk.rules[i]
		in := perRule[i]
		sort.SliceStable(in, func(a, b int) bool { return in[a].ts < in[b].ts })
		t := max(now, mr.top)
		for _, e := range in {
			t = max(t, e.ts)
			if e.ts <= t-r.RetentionMS() {
				continue
			}
			mr.entries = append(mr.entries, e)
			mr.top = max(mr.top, e.ts)
		}
	}
}

// Keys returns every limit key the model has seen, sorted.
func (m *Model) Keys() []LimitKey {
	out := make([]LimitKey, 0, len(m.keys))
	for k := range m.keys {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// ModelFlag is the flag the model expects for a key; Until 0 means none.
type ModelFlag struct {
	Rule  string
	Until int64
}

// ModelResult is the model's evaluation of one limit key.
type ModelResult struct {
	Rules  []RuleState
	Deny   ModelFlag
	Shadow ModelFlag
}

// Evaluate returns what the store must hold for key k at time now.
func (m *Model) Evaluate(now int64, k LimitKey) ModelResult {
	var res ModelResult
	mk := m.key(k)
	if mk == nil {
		return res
	}
	for i, r := range mk.group.Rules {
		mr := mk.rules[i]
		st := RuleState{Rule: r.Name, Limit: r.Limit}
		if mr.top >= 0 {
			t := max(now, mr.top)
			st.Count = mr.count(t, r.WindowMS())
			st.Until = mr.until(now, t, r)
			st.Over = st.Until > 0
		}
		res.Rules = append(res.Rules, st)
		var slot *ModelFlag
		switch r.Action {
		case ActionDeny:
			slot = &res.Deny
		case ActionShadow:
			slot = &res.Shadow
		}
		if slot != nil && st.Until > slot.Until {
			*slot = ModelFlag{Rule: r.Name, Until: st.Until}
		}
	}
	return res
}

// count is the weight of the entries in (x - w, x].
func (mr *modelRule) count(x, w int64) int64 {
	var c int64
	for _, e := range mr.entries {
		if e.ts > x-w && e.ts <= x {
			c += e.w
		}
	}
	return c
}

func (mr *modelRule) until(now, t int64, r *Rule) int64 {
	w, l := r.WindowMS(), r.Limit
	if r.DenyFor > 0 {
		trip := int64(-1)
		for _, e := range mr.entries {
			if e.ts > trip && mr.count(e.ts, w) >= l {
				trip = e.ts
			}
		}
		if trip >= 0 && trip+r.DenyForMS() > now {
			return trip + r.DenyForMS()
		}
		return 0
	}
	if mr.count(t, w) < l {
		return 0
	}
	in := make([]modelEntry, 0, len(mr.entries))
	for _, e := range mr.entries {
		if e.ts > t-w && e.ts <= t {
			in = append(in, e)
		}
	}
	sort.Slice(in, func(i, j int) bool { return in[i].ts > in[j].ts })
	var acc int64
	for _, e := range in {
		acc += e.w
		if acc >= l {
			if e.ts+w > now {
				return e.ts + w
			}
			return 0
		}
	}
	return 0
}
