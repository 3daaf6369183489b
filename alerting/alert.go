package alerting

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ratemon/ratemon/internal/keyspace"
	"github.com/ratemon/ratemon/limiter"
)

// State is where the alert of one (rule, limit key) stands.
type State string

// States. An alert opens at near or exceeded, may go from near to
// exceeded, and ends resolved; each of these transitions is one notification.
const (
	StateNear     State = "near"     // the count reached the rule's warn_at fraction of its limit
	StateExceeded State = "exceeded" // the count reached the limit: flag set (deny, shadow) or would be (alert)
	StateResolved State = "resolved" // back under for resolve_after
)

// Validate checks that s is a known state.
func (s State) Validate() error {
	switch s {
	case StateNear, StateExceeded, StateResolved:
		return nil
	}
	return fmt.Errorf("must be one of near, exceeded, resolved, got %q", string(s))
}

// Alertmanager alert names, one per active state.
const (
	NameNearLimit = "RateLimitNearLimit"
	NameExceeded  = "RateLimitExceeded"
)

// Flag is the flag the rule sets for the limit key while it is over.
type Flag struct {
	Kind  string    `json:"kind"`            // deny, shadow, or none (action alert: the flag it would set)
	Until time.Time `json:"until,omitzero"`  // when it ends, zero when the key is not over now
	Key   string    `json:"redis,omitempty"` // the Redis key of the flag, for deny and shadow
}

// Alert is one notification: a transition of the alert of one rule for one
// limit key, or a reminder that it is still active. It is the element of
// every webhook body (see docs/ALERTING.md).
type Alert struct {
	ID       string           `json:"id"`                 // unique per notification: <rule>:<limit key>:<seq>
	State    State            `json:"state"`              // the state entered (or still held, for a repeat)
	Previous State            `json:"previous,omitempty"` // the state left; for resolved, what was resolved
	Repeat   int              `json:"repeat,omitempty"`   // n-th reminder of a still active alert; 0 for a transition
	Rule     string           `json:"rule"`
	Key      limiter.LimitKey `json:"key"`
	Service  string           `json:"service,omitempty"`
	Action   limiter.Action   `json:"action"`
	Severity limiter.Severity `json:"severity"`
	Count    int64            `json:"count"` // in the window at the last evaluation
	Peak     int64            `json:"peak"`  // highest count seen during the alert
	Limit    int64            `json:"limit"`
	WarnAt   float64          `json:"warn_at,omitempty"`
	Window   Duration         `json:"window"`
	Since    time.Time        `json:"first_seen"` // when the alert opened
	At       time.Time        `json:"at"`         // when this notification was decided
	Flag     Flag             `json:"flag"`
	Link     string           `json:"link,omitempty"`

	seq int64
}

// Duration is a time.Duration written like "1m0s" in JSON.
type Duration time.Duration

// MarshalJSON writes d as a string like "1m0s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a string like "1m0s".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	*d = Duration(v)
	return err
}

// Name is the Alertmanager alertname of a: RateLimitExceeded or
// RateLimitNearLimit; for a resolved alert, the name of what it resolves.
func (a *Alert) Name() string {
	s := a.State
	if s == StateResolved {
		s = a.Previous
	}
	if s == StateExceeded {
		return NameExceeded
	}
	return NameNearLimit
}

// Summary is one line for people: what happened to whom.
func (a *Alert) Summary() string {
	var what string
	switch a.State {
	case StateExceeded:
		what = fmt.Sprintf("exceeded %d per %s (count %d)", a.Limit, time.Duration(a.Window), a.Count)
	case StateNear:
		what = fmt.Sprintf("near its limit of %d per %s (count %d)", a.Limit, time.Duration(a.Window), a.Count)
	default:
		what = fmt.Sprintf("back under its limit of %d per %s (peak %d)", a.Limit, time.Duration(a.Window), a.Peak)
	}
	if a.Repeat > 0 {
		what += fmt.Sprintf(", still, reminder %d", a.Repeat)
	}
	return fmt.Sprintf("%s %s on rule %s", a.Key, what, a.Rule)
}

// snapshot is a notification as observe.lua stores it.
type snapshot struct {
	Seq      int64  `json:"seq,string"`
	State    State  `json:"state"`
	Prev     State  `json:"prev"`
	RepeatN  int    `json:"repeat_n,string"`
	First    int64  `json:"first,string"`
	At       int64  `json:"at,string"`
	Count    int64  `json:"count,string"`
	Limit    int64  `json:"limit,string"`
	Peak     int64  `json:"peak,string"`
	Until    int64  `json:"until,string"`
	Window   int64  `json:"window,string"`
	Action   string `json:"action"`
	Severity string `json:"severity"`
	WarnAt   string `json:"warn_at"`
	Service  string `json:"service"`
}

// alertOf builds the Alert of a stored snapshot.
func alertOf(keys keyspace.Redis, rule string, key limiter.LimitKey, raw string) (Alert, error) {
	var s snapshot
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		return Alert{}, fmt.Errorf("decode notification of %s on rule %s: %w", key, rule, err)
	}
	a := Alert{
		ID: rule + ":" + string(key) + ":" + strconv.FormatInt(s.Seq, 10), seq: s.Seq,
		State: s.State, Previous: s.Prev, Repeat: s.RepeatN, Rule: rule, Key: key, Service: s.Service,
		Action: limiter.Action(s.Action), Severity: limiter.Severity(s.Severity),
		Count: s.Count, Peak: s.Peak, Limit: s.Limit, Window: Duration(time.Duration(s.Window) * time.Millisecond),
		Since: time.UnixMilli(s.First).UTC(), At: time.UnixMilli(s.At).UTC(),
	}
	a.WarnAt, _ = strconv.ParseFloat(s.WarnAt, 64)
	if eff := a.State; eff == StateNear || (eff == StateResolved && a.Previous == StateNear) {
		a.Severity = limiter.SeverityWarning
	}
	a.Flag = flagOf(keys, a.Action, key, s.Until)
	if a.State == StateResolved {
		a.Flag.Until = time.Time{}
	}
	return a, nil
}

func flagOf(keys keyspace.Redis, act limiter.Action, key limiter.LimitKey, until int64) Flag {
	f := Flag{Kind: "none"}
	switch act {
	case limiter.ActionDeny:
		f = Flag{Kind: "deny", Key: keys.Deny(string(key))}
	case limiter.ActionShadow:
		f = Flag{Kind: "shadow", Key: keys.Shadow(string(key))}
	}
	if until > 0 {
		f.Until = time.UnixMilli(until).UTC()
	}
	return f
}

// serviceOf is the service an alert is about: the key's service field, else
// the service the rule matches, else "all".
func serviceOf(r *limiter.Rule, key limiter.LimitKey) string {
	for part := range strings.SplitSeq(string(key), "|") {
		if v, ok := strings.CutPrefix(part, "service="); ok {
			return keyspace.Unescape(v)
		}
	}
	if r != nil && r.Match.Service != "" {
		return r.Match.Service
	}
	return "all"
}

// ruleSeverity is the severity of the exceeded alerts of r: its own, by
// default critical. Near-limit alerts are always warnings.
func ruleSeverity(r *limiter.Rule) limiter.Severity {
	if r.Severity != "" {
		return r.Severity
	}
	return limiter.SeverityCritical
}
