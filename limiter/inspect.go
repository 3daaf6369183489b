package limiter

import (
	"context"
	"fmt"

	"github.com/ratemon/ratemon/pipeline/event"
)

// RuleCheck is one rule's view of one limit key, as GET /v1/check returns it.
type RuleCheck struct {
	Rule      string   `json:"rule"`
	Key       LimitKey `json:"key"`
	Count     int64    `json:"count"`
	Limit     int64    `json:"limit"`
	Remaining int64    `json:"remaining"`
	ResetMS   int64    `json:"reset_ms"` // ms until the next request is allowed when denied, else until the oldest counted event leaves the window
}

// CheckResult answers "would a request with these attributes be refused now?".
type CheckResult struct {
	Allowed      bool        `json:"allowed"`
	RetryAfterMS int64       `json:"retry_after_ms"`
	Denied       []Flag      `json:"denied,omitempty"` // deny flags in force for the request's limit keys
	Shadow       []Flag      `json:"shadow,omitempty"` // shadow flags in force (nothing is refused for them)
	Rules        []RuleCheck `json:"rules"`
}

// Check computes the limit keys of a request exactly as ingestion does (the
// rules that match it, the key fields it has) and reads their counts and
// flags. It writes nothing. Refused is ignored: a check asks about the next
// request.
func (s *Store) Check(ctx context.Context, rs *Ruleset, e event.Event) (CheckResult, error) {
	e.Refused = false
	rs.hasher.Apply(&e)
	res := CheckResult{Allowed: true, Rules: []RuleCheck{}}
	type target struct {
		key   LimitKey
		rules []*Rule
		cmd   *call
	}
	var targets []*target
	now := NowMS(s.clock)
	for gi := range rs.groups {
		g := &rs.groups[gi]
		var matched []*Rule
		for _, r := range g.Rules {
			if r.Matches(&e) {
				matched = append(matched, r)
			}
		}
		if len(matched) == 0 {
			continue
		}
		k, ok := KeyOf(g.Shape, &e)
		if !ok {
			continue
		}
		t := &target{key: k, rules: matched}
		lk := string(k)
		keys := []string{s.keys.State(lk), s.keys.Deny(lk), s.keys.Shadow(lk), s.keys.Overrides(lk)}
		args := []any{now, len(matched)}
		for _, r := range matched {
			keys = append(keys, s.keys.Log(lk, r.Name), s.keys.Late(lk, r.Name))
			args = append(args, r.Name, r.Limit, r.WindowMS(), r.DenyForMS())
		}
		t.cmd = &call{script: s.scripts.inspect, keys: keys, args: args}
		targets = append(targets, t)
	}
	calls := make([]*call, len(targets))
	for i, t := range targets {
		calls[i] = t.cmd
	}
	if err := s.exec(ctx, calls); err != nil {
		return res, fmt.Errorf("check: %w", err)
	}
	for _, t := range targets {
		v, ok := t.cmd.val.([]any)
		if !ok || len(v) != 5 {
			return res, fmt.Errorf("check %s: unexpected reply %v", t.key, t.cmd.val)
		}
		if pttl := asInt(v[0]); pttl > 0 {
			res.Allowed = false
			res.RetryAfterMS = max(res.RetryAfterMS, pttl)
			if f, err := ParseFlag([]byte(asString(v[1]))); err == nil {
				res.Denied = append(res.Denied, f)
			}
		}
		if pttl := asInt(v[2]); pttl > 0 {
			if f, err := ParseFlag([]byte(asString(v[3]))); err == nil {
				res.Shadow = append(res.Shadow, f)
			}
		}
		rules, _ := v[4].([]any)
		for _, r := range rules {
			f, ok := r.([]any)
			if !ok || len(f) != 6 {
				return res, fmt.Errorf("check %s: unexpected rule reply %v", t.key, r)
			}
			res.Rules = append(res.Rules, RuleCheck{
				Rule:      asString(f[0]),
				Key:       t.key,
				Count:     asInt(f[1]),
				Limit:     asInt(f[2]),
				Remaining: asInt(f[3]),
				ResetMS:   asInt(f[4]),
			})
		}
	}
	return res, nil
}
