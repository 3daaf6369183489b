package limiter

import (
	"fmt"
	"time"

	"github.com/ratemon/ratemon/internal/fielderr"
)

// RuleDoc is the JSON form of a Rule, as GET /v1/rules serves it, so that an
// inline checker in another process computes limit keys exactly as the
// daemon does. Durations are whole milliseconds. This is a public contract
// documented in the README.
type RuleDoc struct {
	Name         string   `json:"name"`
	Match        MatchDoc `json:"match"`
	Key          []Field  `json:"key"`
	Limit        int64    `json:"limit"`
	WindowMS     int64    `json:"window_ms"`
	DenyForMS    int64    `json:"deny_for_ms"`
	Action       Action   `json:"action"`
	CountRefused bool     `json:"count_refused"`
}

// MatchDoc is the JSON form of Match; empty fields are left out.
type MatchDoc struct {
	Service string `json:"service,omitempty"`
	Route   string `json:"route,omitempty"`
	Method  string `json:"method,omitempty"`
}

// RulesDoc is the body of GET /v1/rules: the rules in config order, and
// the fields whose values the limit keys hold as a keyed hash (privacy.hash;
// the key itself is never served).
type RulesDoc struct {
	Rules []RuleDoc `json:"rules"`
	Hash  []Field   `json:"hash,omitempty"`
}

// Doc returns the JSON form of r.
func (r *Rule) Doc() RuleDoc {
	return RuleDoc{
		Name:         r.Name,
		Match:        MatchDoc(r.Match),
		Key:          append([]Field(nil), r.Key...),
		Limit:        r.Limit,
		WindowMS:     r.WindowMS(),
		DenyForMS:    r.DenyForMS(),
		Action:       r.Action,
		CountRefused: r.CountRefused,
	}
}

// Rule returns the Rule d describes. It does not validate it; NewRuleset
// does.
func (d RuleDoc) Rule() Rule {
	return Rule{
		Name:         d.Name,
		Match:        Match(d.Match),
		Key:          append([]Field(nil), d.Key...),
		Limit:        d.Limit,
		Window:       time.Duration(d.WindowMS) * time.Millisecond,
		DenyFor:      time.Duration(d.DenyForMS) * time.Millisecond,
		Action:       d.Action,
		CountRefused: d.CountRefused,
	}
}

// DocOf returns the JSON form of every rule of rs, in config order.
func DocOf(rs *Ruleset) RulesDoc {
	doc := RulesDoc{Rules: make([]RuleDoc, 0, len(rs.rules))}
	for i := range rs.rules {
		doc.Rules = append(doc.Rules, rs.rules[i].Doc())
	}
	if h := rs.hasher; h != nil {
		if h.client {
			doc.Hash = append(doc.Hash, FieldClient)
		}
		if h.ip {
			doc.Hash = append(doc.Hash, FieldIP)
		}
	}
	return doc
}

// Ruleset compiles the rules d describes; they are validated as a config
// file's rules are. When d hashes fields, hashKey must be the daemon's
// privacy key, so that the limit keys come out as the daemon's; without
// hashing it is ignored.
func (d RulesDoc) Ruleset(hashKey []byte) (*Ruleset, error) {
	rules := make([]Rule, len(d.Rules))
	for i := range d.Rules {
		rules[i] = d.Rules[i].Rule()
	}
	rs, err := NewRuleset(rules)
	if err != nil {
		var l fielderr.List
		l.Merge("rules", err)
		return nil, l.Err()
	}
	if len(d.Hash) == 0 {
		return rs, nil
	}
	if len(hashKey) == 0 {
		return nil, fmt.Errorf("the limit keys hash %s: the daemon's privacy key is needed to compute them", Shape(d.Hash))
	}
	h, err := NewHasher(d.Hash, hashKey)
	if err != nil {
		return nil, err
	}
	return rs.WithHasher(h), nil
}
