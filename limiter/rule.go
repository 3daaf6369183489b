package limiter

import (
	"fmt"
	"strings"
	"time"

	"github.com/ratemon/ratemon/internal/fielderr"
)

// Action says what a rule does when a limit key uses up its quota.
type Action string

// Actions.
const (
	ActionDeny   Action = "deny"   // write the deny flag; API servers refuse the client
	ActionShadow Action = "shadow" // write the shadow flag only; nobody is refused
	ActionAlert  Action = "alert"  // write no flag; only alerts are raised
)

// Validate checks that a is a known action.
func (a Action) Validate() error {
	switch a {
	case ActionDeny, ActionShadow, ActionAlert:
		return nil
	}
	return fmt.Errorf("must be one of deny, shadow, alert, got %q", string(a))
}

// Field is an event field that can be part of a limit key.
type Field string

// Key fields.
const (
	FieldClient  Field = "client"
	FieldIP      Field = "ip"
	FieldService Field = "service"
	FieldRoute   Field = "route"
	FieldMethod  Field = "method"
)

// Fields lists every key field.
func Fields() []Field {
	return []Field{FieldClient, FieldIP, FieldService, FieldRoute, FieldMethod}
}

// Validate checks that f is a known key field.
func (f Field) Validate() error {
	for _, k := range Fields() {
		if f == k {
			return nil
		}
	}
	return fmt.Errorf("unknown key field %q, want one of client, ip, service, route, method", string(f))
}

// Match selects the events a rule counts. Empty fields match everything.
type Match struct {
	Service string `yaml:"service"` // exact service name
	Route   string `yaml:"route"`   // glob: `*` any run of characters, `?` one; "POST /login" or "/stocks/*"
	Method  string `yaml:"method"`  // HTTP method, case-insensitive
}

// Rule is one limit: at most Limit counted events per Window for each limit
// key made of the Key fields of the events that Match selects.
type Rule struct {
	Name         string        `yaml:"name"`
	Match        Match         `yaml:"match"`
	Key          []Field       `yaml:"key"`
	Limit        int64         `yaml:"limit"`
	Window       time.Duration `yaml:"window"`
	Action       Action        `yaml:"action"`
	DenyFor      time.Duration `yaml:"deny_for"`      // fixed block from the moment the quota is used up; 0: until the window frees up
	CountRefused bool          `yaml:"count_refused"` // count events the API server already refused because of a ratemon flag
	WarnAt       float64       `yaml:"warn_at"`       // fraction of limit that raises a near-limit alert, 0 < warn_at < 1; 0: none
	Severity     Severity      `yaml:"severity"`      // severity of the rule's exceeded alerts; empty: critical
}

// Limits on rules, enforced by Validate.
const (
	MaxRuleNameLen = 64
	MinWindow      = time.Millisecond
	MaxWindow      = 31 * 24 * time.Hour
	MaxDenyFor     = 366 * 24 * time.Hour
	MaxLimit       = 1 << 40
)

// SetDefaults fills the fields left empty with their defaults.
func (r *Rule) SetDefaults() {
	if r.Action == "" {
		r.Action = ActionDeny
	}
	if len(r.Key) == 0 {
		r.Key = []Field{FieldClient}
	}
}

// Validate checks one rule and returns every problem found, located by field.
func (r *Rule) Validate() error {
	var l fielderr.List
	if err := ValidateRuleName(r.Name); err != nil {
		l.Add("name", "%v", err)
	}
	if r.Limit <= 0 || r.Limit > MaxLimit {
		l.Add("limit", "must be between 1 and %d, got %d", int64(MaxLimit), r.Limit)
	}
	if r.Window < MinWindow || r.Window > MaxWindow {
		l.Add("window", "must be between %v and %v, got %v", MinWindow, MaxWindow, r.Window)
	} else if r.Window%time.Millisecond != 0 {
		l.Add("window", "must be a whole number of milliseconds, got %v", r.Window)
	}
	if r.DenyFor < 0 || r.DenyFor > MaxDenyFor {
		l.Add("deny_for", "must be between 0 and %v, got %v", MaxDenyFor, r.DenyFor)
	} else if r.DenyFor%time.Millisecond != 0 {
		l.Add("deny_for", "must be a whole number of milliseconds, got %v", r.DenyFor)
	}
	if err := r.Action.Validate(); err != nil {
		l.Add("action", "%v", err)
	}
	if r.DenyFor > 0 && r.Action == ActionAlert {
		l.Add("deny_for", "has no effect with action alert, which sets no flag")
	}
	if !(r.WarnAt >= 0 && r.WarnAt < 1) { // also refuses NaN
		l.Add("warn_at", "must be 0 (no near-limit alerts) or a fraction between 0 and 1, got %v", r.WarnAt)
	}
	if err := r.Severity.Validate(); err != nil {
		l.Add("severity", "%v", err)
	}
	if len(r.Key) == 0 {
		l.Add("key", "must name at least one field")
	}
	seen := map[Field]bool{}
	for i, f := range r.Key {
		if err := f.Validate(); err != nil {
			l.Add(fmt.Sprintf("key[%d]", i), "%v", err)
			continue
		}
		if seen[f] {
			l.Add(fmt.Sprintf("key[%d]", i), "field %q listed twice", string(f))
		}
		seen[f] = true
	}
	if r.Match.Method != "" && strings.ContainsAny(r.Match.Method, " */?") {
		l.Add("match.method", "must be an HTTP method such as GET, got %q", r.Match.Method)
	}
	if strings.Contains(r.Match.Route, "**") {
		l.Add("match.route", "`**` is not supported; `*` already matches across `/`, got %q", r.Match.Route)
	}
	return l.Err()
}

// ValidateRuleName checks that name can be part of a Redis key and a metric
// label: 1 to 64 characters from [a-z0-9_-], starting with a letter or digit.
func ValidateRuleName(name string) error {
	if name == "" {
		return fmt.Errorf("must not be empty")
	}
	if len(name) > MaxRuleNameLen {
		return fmt.Errorf("must be at most %d characters, got %d", MaxRuleNameLen, len(name))
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || ((c == '-' || c == '_') && i > 0)
		if !ok {
			return fmt.Errorf("must hold only a-z, 0-9, '-' and '_' and start with a letter or digit, got %q", name)
		}
	}
	return nil
}

// ValidateRules checks a rule list as a whole: each rule, plus unique names.
// Paths are relative to the list, e.g. "[2].window".
func ValidateRules(rules []Rule) error {
	var l fielderr.List
	names := map[string]int{}
	for i := range rules {
		p := fmt.Sprintf("[%d]", i)
		l.Merge(p, rules[i].Validate())
		if rules[i].Name == "" {
			continue
		}
		if j, dup := names[rules[i].Name]; dup {
			l.Add(p+".name", "duplicate rule name %q, already used by rules[%d]", rules[i].Name, j)
			continue
		}
		names[rules[i].Name] = i
	}
	return l.Err()
}

// WindowMS is the window in milliseconds.
func (r *Rule) WindowMS() int64 { return r.Window.Milliseconds() }

// DenyForMS is deny_for in milliseconds.
func (r *Rule) DenyForMS() int64 { return r.DenyFor.Milliseconds() }
