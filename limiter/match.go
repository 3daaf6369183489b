package limiter

import (
	"fmt"
	"strings"

	"github.com/ratemon/ratemon/pipeline/event"
)

// MaxRulesPerShape bounds the rules that share one key shape; each such rule
// is a bit in a 64-bit mask.
const MaxRulesPerShape = 64

// Group is the rules sharing one key shape. Every limit key of that shape is
// evaluated against all of them together, in one Redis script call.
type Group struct {
	Shape Shape
	Rules []*Rule // in config order
}

// Ruleset is a compiled, immutable rule list. It is safe for concurrent use.
type Ruleset struct {
	rules  []Rule
	groups []Group
	byName map[string]*Rule
	hasher *Hasher // nil: limit keys hold the field values themselves
}

// NewRuleset validates and compiles rules. The slice is copied.
func NewRuleset(rules []Rule) (*Ruleset, error) {
	if err := ValidateRules(rules); err != nil {
		return nil, err
	}
	rs := &Ruleset{rules: append([]Rule(nil), rules...), byName: map[string]*Rule{}}
	for i := range rs.rules {
		r := &rs.rules[i]
		rs.byName[r.Name] = r
		gi := -1
		for j := range rs.groups {
			if rs.groups[j].Shape.Equal(r.Key) {
				gi = j
				break
			}
		}
		if gi < 0 {
			rs.groups = append(rs.groups, Group{Shape: Shape(r.Key)})
			gi = len(rs.groups) - 1
		}
		if len(rs.groups[gi].Rules) == MaxRulesPerShape {
			return nil, fmt.Errorf("rules[%d]: more than %d rules share the key %s", i, MaxRulesPerShape, Shape(r.Key))
		}
		rs.groups[gi].Rules = append(rs.groups[gi].Rules, r)
	}
	return rs, nil
}

// Rules returns the rules in config order. The caller must not modify them.
func (rs *Ruleset) Rules() []Rule { return rs.rules }

// Groups returns the rules grouped by key shape.
func (rs *Ruleset) Groups() []Group { return rs.groups }

// Rule returns the rule called name.
func (rs *Ruleset) Rule(name string) (*Rule, bool) {
	r, ok := rs.byName[name]
	return r, ok
}

// GroupFor returns the group of rules whose shape is the shape of k.
func (rs *Ruleset) GroupFor(k LimitKey) (*Group, bool) {
	shape, ok := ShapeOf(k)
	if !ok {
		return nil, false
	}
	for i := range rs.groups {
		if rs.groups[i].Shape.Equal(shape) {
			return &rs.groups[i], true
		}
	}
	return nil, false
}

// MaxWindow is the longest window of any rule, 0 without rules.
func (rs *Ruleset) MaxWindow() int64 {
	var m int64
	for i := range rs.rules {
		m = max(m, rs.rules[i].WindowMS())
	}
	return m
}

// MaxRetention is the longest time, in ms, any rule keeps events for (see
// Rule.RetentionMS).
func (rs *Ruleset) MaxRetention() int64 {
	var m int64
	for i := range rs.rules {
		m = max(m, rs.rules[i].RetentionMS())
	}
	return m
}

// RetentionMS is how far behind the evaluation time a rule keeps its events:
// one window, or window plus deny_for for deny_for rules, which check the
// quota at the time of every event whose block could still be running.
func (r *Rule) RetentionMS() int64 {
	return r.WindowMS() + r.DenyForMS()
}

// Hit is one limit key an event counts for, with the rules of its group that
// count it as a bit mask over Group.Rules.
type Hit struct {
	Group int // index into Groups()
	Key   LimitKey
	Mask  uint64
}

// Matches reports whether rule r counts event e (ignoring the key fields).
func (r *Rule) Matches(e *event.Event) bool {
	if e.Refused && !r.CountRefused {
		return false
	}
	if r.Match.Service != "" && r.Match.Service != e.Service {
		return false
	}
	method := e.Method
	path := e.Route
	if sp := strings.IndexByte(path, ' '); sp > 0 && isMethod(path[:sp]) {
		if method == "" {
			method = path[:sp]
		}
		path = strings.TrimLeft(path[sp+1:], " ")
	}
	if r.Match.Method != "" && !strings.EqualFold(r.Match.Method, method) {
		return false
	}
	if pat := r.Match.Route; pat != "" {
		subject := path
		if strings.IndexByte(pat, ' ') > 0 {
			subject = strings.ToUpper(method) + " " + path
		}
		if !Glob(pat, subject) {
			return false
		}
	}
	return true
}

func isMethod(s string) bool {
	if s == "" || len(s) > 16 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

// Match appends to dst one Hit per key shape that e counts for. Fields the
// rule set hashes are hashed in the keys (e is not changed).
func (rs *Ruleset) Match(dst []Hit, e *event.Event) []Hit {
	var c event.Event
	e = rs.hashed(e, &c)
	var buf [256]byte
	for gi := range rs.groups {
		if k, mask, ok := rs.groups[gi].match(buf[:0], e); ok {
			dst = append(dst, Hit{Group: gi, Key: LimitKey(k), Mask: mask})
		}
	}
	return dst
}

// MatchEach is Match without the Hits: it calls fn for each group of rules
// that counts e, in group order, with the limit key built in buf's
// capacity (or a larger array when it does not fit), valid only during the
// call. A caller that looks the key up in a map of its own
// (m[LimitKey(key)]) and keeps buf makes no allocation for a key it knows.
func (rs *Ruleset) MatchEach(e *event.Event, buf []byte, fn func(group int, key []byte, mask uint64)) {
	var c event.Event
	e = rs.hashed(e, &c)
	for gi := range rs.groups {
		if k, mask, ok := rs.groups[gi].match(buf[:0], e); ok {
			fn(gi, k, mask)
		}
	}
}

// hashed is e with the fields the rule set hashes hashed, in c (a copy);
// e itself when none is.
func (rs *Ruleset) hashed(e, c *event.Event) *event.Event {
	if rs.hasher == nil {
		return e
	}
	*c = *e
	rs.hasher.Apply(c)
	return c
}

// match returns the mask of g's rules that count e and, appended to buf,
// e's key in g's shape; false when no rule counts e or e lacks a field of
// the shape.
func (g *Group) match(buf []byte, e *event.Event) ([]byte, uint64, bool) {
	var mask uint64
	for ri, r := range g.Rules {
		if r.Matches(e) {
			mask |= 1 << uint(ri)
		}
	}
	if mask == 0 {
		return buf, 0, false
	}
	k, ok := AppendKey(buf, g.Shape, e)
	return k, mask, ok
}

// Glob reports whether s matches pattern, where `*` matches any run of
// characters (including `/`) and `?` matches exactly one byte.
func Glob(pattern, s string) bool {
	px, sx := 0, 0
	nextPx, nextSx := -1, -1
	for px < len(pattern) || sx < len(s) {
		if px < len(pattern) {
			switch c := pattern[px]; c {
			case '*':
				nextPx, nextSx = px, sx+1
				px++
				continue
			case '?':
				if sx < len(s) {
					px++
					sx++
					continue
				}
			default:
				if sx < len(s) && s[sx] == c {
					px++
					sx++
					continue
				}
			}
		}
		if nextSx > 0 && nextSx <= len(s) {
			px, sx = nextPx, nextSx
			continue
		}
		return false
	}
	return true
}
