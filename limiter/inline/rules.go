package inline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/ratemon/ratemon/limiter"
	"github.com/ratemon/ratemon/pipeline/event"
)

// compiled is a Ruleset prepared for checks on the request path: the same
// groups and the same matching as limiter.Ruleset.Match, without
// allocating. It is immutable once built.
type compiled struct {
	rs     *limiter.Ruleset
	groups []group
	hashes *hashCache // nil unless the daemon hashes client or ip (privacy.hash)
}

// group is one key shape and the rules of that shape.
type group struct {
	shape limiter.Shape
	code  uint64  // shapeCode(shape)
	hash0 uint64  // shapeSeed(shape)
	index []uint8 // fieldIndex of each field of shape
	rules []matcher
}

// matcher is one rule's Match, prepared.
type matcher struct {
	rule        *limiter.Rule
	service     string
	method      string // "" matches every method
	route       glob   // empty pattern matches every route
	routeMethod bool   // the glob has a space: it is matched against "METHOD path"
}

func compile(rs *limiter.Ruleset) *compiled {
	c := &compiled{rs: rs, hashes: newHashCache(rs)}
	for _, g := range rs.Groups() {
		cg := newGroup(g.Shape)
		for _, r := range g.Rules {
			cg.rules = append(cg.rules, matcher{
				rule:        r,
				service:     r.Match.Service,
				method:      r.Match.Method,
				route:       compileGlob(r.Match.Route),
				routeMethod: strings.IndexByte(r.Match.Route, ' ') > 0,
			})
		}
		c.groups = append(c.groups, cg)
	}
	return c
}

// newGroup returns the group of shape, without rules.
func newGroup(shape limiter.Shape) group {
	g := group{shape: shape, code: shapeCode(shape), hash0: shapeSeed(shape)}
	for _, f := range shape {
		g.index = append(g.index, uint8(fieldIndex(f)))
	}
	return g
}

// maxSubject is the longest route matched in place; a longer one is
// matched by limiter.Rule.Matches, which may allocate.
const maxSubject = 192

// request is an event as a check sees it, prepared once per check. It
// holds the event's strings, never the event: a pointer kept here would
// make every checked event escape to the heap.
type request struct {
	client, ip, service, route, rawMethod string // the event's values
	method                                string // rawMethod, else the route's leading method
	path                                  string // the route without its leading method
	fast                                  bool   // method is ASCII and the subjects fit: match in place
	joinedN                               int    // length of joined; 0 until built
	joined                                [maxSubject]byte
	hashed                                uint8     // bit fieldIndex(f): hashes holds the hash of f's value
	hashes                                [6]uint64 // by fieldIndex
}

func (q *request) init(e *event.Event) {
	q.client, q.ip, q.service, q.route, q.rawMethod = e.Client, e.IP, e.Service, e.Route, e.Method
	q.method, q.path, q.joinedN, q.hashed = e.Method, e.Route, 0, 0
	if sp := strings.IndexByte(q.path, ' '); sp > 0 && isMethod(q.path[:sp]) {
		if q.method == "" {
			q.method = q.path[:sp]
		}
		q.path = strings.TrimLeft(q.path[sp+1:], " ")
	}
	q.fast = len(q.method)+1+len(q.path) <= maxSubject && isASCII(q.method)
}

// event rebuilds the event, for the rare paths that need limiter's own
// functions (and may allocate).
func (q *request) event() event.Event {
	return event.Event{Client: q.client, IP: q.ip, Service: q.service, Route: q.route, Method: q.rawMethod}
}

// value is limiter.FieldValue for the request; the method is not
// upper-cased here (see fieldHash and sameMethod).
func (q *request) value(f limiter.Field) string {
	switch f {
	case limiter.FieldClient:
		return q.client
	case limiter.FieldIP:
		return q.ip
	case limiter.FieldService:
		return q.service
	case limiter.FieldRoute:
		return q.route
	case limiter.FieldMethod:
		return q.rawMethod
	}
	return ""
}

// joinedSubject returns strings.ToUpper(method) + " " + path, built in q.
func (q *request) joinedSubject() []byte {
	if q.joinedN == 0 {
		n := copy(q.joined[:], q.method)
		for i := range n {
			if c := q.joined[i]; c >= 'a' && c <= 'z' {
				q.joined[i] = c - ('a' - 'A')
			}
		}
		q.joined[n] = ' '
		n++
		n += copy(q.joined[n:], q.path)
		q.joinedN = n
	}
	return q.joined[:q.joinedN]
}

// isMethod is limiter's test for a leading method in a route.
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

// matches reports whether m's rule counts the request q when it is not
// refused: limiter.Rule.Matches without the refused test, and without
// allocating on the fast path.
func (m *matcher) matches(q *request) bool {
	if !q.fast {
		ev := q.event()
		return m.rule.Matches(&ev)
	}
	if m.service != "" && m.service != q.service {
		return false
	}
	if m.method != "" && !strings.EqualFold(m.method, q.method) {
		return false
	}
	if m.route.pattern == "" {
		return true
	}
	if m.routeMethod {
		if len(m.route.segs) == 2 { // "pre*suf": no need to build the subject
			return m.route.matchJoined(q.method, q.path)
		}
		return m.route.matchBytes(q.joinedSubject())
	}
	return m.route.matchString(q.path)
}

// glob is a limiter.Glob pattern split on its stars, so that matching is a
// prefix, a suffix and ordered searches instead of backtracking. A pattern
// with `?` keeps limiter.Glob.
type glob struct {
	pattern string
	segs    []string // split on '*'; nil when the pattern has '?'
}

func compileGlob(p string) glob {
	g := glob{pattern: p}
	if !strings.Contains(p, "?") {
		g.segs = strings.Split(p, "*")
	}
	return g
}

// matchString reports whether s matches, as limiter.Glob does.
func (g *glob) matchString(s string) bool {
	if g.segs == nil {
		return limiter.Glob(g.pattern, s)
	}
	last := len(g.segs) - 1
	if last == 0 {
		return s == g.pattern
	}
	if !strings.HasPrefix(s, g.segs[0]) {
		return false
	}
	s = s[len(g.segs[0]):]
	if !strings.HasSuffix(s, g.segs[last]) {
		return false
	}
	s = s[:len(s)-len(g.segs[last])]
	for _, seg := range g.segs[1:last] {
		i := strings.Index(s, seg)
		if i < 0 {
			return false
		}
		s = s[i+len(seg):]
	}
	return true
}

// matchBytes is matchString for a subject built in a buffer.
func (g *glob) matchBytes(b []byte) bool {
	if g.segs == nil {
		return limiter.Glob(g.pattern, string(b))
	}
	last := len(g.segs) - 1
	if last == 0 {
		return string(b) == g.pattern
	}
	if len(b) < len(g.segs[0]) || string(b[:len(g.segs[0])]) != g.segs[0] {
		return false
	}
	b = b[len(g.segs[0]):]
	if len(b) < len(g.segs[last]) || string(b[len(b)-len(g.segs[last]):]) != g.segs[last] {
		return false
	}
	b = b[:len(b)-len(g.segs[last])]
	for _, seg := range g.segs[1:last] {
		i := bytesIndex(b, seg)
		if i < 0 {
			return false
		}
		b = b[i+len(seg):]
	}
	return true
}

// matchJoined is matchBytes of strings.ToUpper(method)+" "+path for a
// pattern with one star ("pre*suf"), reading the subject in place; method
// is ASCII.
func (g *glob) matchJoined(method, path string) bool {
	pre, suf := g.segs[0], g.segs[1]
	n := len(method) + 1 + len(path)
	if n < len(pre)+len(suf) {
		return false
	}
	for i := 0; i < len(pre); i++ {
		var c byte
		switch {
		case i < len(method):
			c = method[i]
			if c >= 'a' && c <= 'z' {
				c -= 'a' - 'A'
			}
		case i == len(method):
			c = ' '
		default:
			c = path[i-len(method)-1]
		}
		if c != pre[i] {
			return false
		}
	}
	if len(suf) <= len(path) {
		return path[len(path)-len(suf):] == suf
	}
	var buf [maxSubject]byte // the suffix reaches into the method: rare
	b := append(append(append(buf[:0], method...), ' '), path...)
	for i := 0; i < len(method); i++ {
		if c := b[i]; c >= 'a' && c <= 'z' {
			b[i] = c - ('a' - 'A')
		}
	}
	return string(b[len(b)-len(suf):]) == suf
}

// bytesIndex is strings.Index over a byte slice without converting it.
func bytesIndex(b []byte, sub string) int {
	n := len(sub)
	for i := 0; i+n <= len(b); i++ {
		if string(b[i:i+n]) == sub {
			return i
		}
	}
	return -1
}

// FetchRules reads the rules in force from a ratemon daemon's
// GET /v1/rules; base is the daemon's HTTP address, e.g.
// "http://127.0.0.1:9464". A nil client means http.DefaultClient. When the
// daemon hashes client ids or addresses (privacy.hash), hashKey must be its
// privacy key.
func FetchRules(ctx context.Context, client *http.Client, base string, hashKey []byte) (*limiter.Ruleset, error) {
	if client == nil {
		client = http.DefaultClient
	}
	u := strings.TrimSuffix(base, "/") + "/v1/rules"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch rules from %s: %w", u, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch rules: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("fetch rules from %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch rules from %s: status %d: %s", u, resp.StatusCode, strings.TrimSpace(string(body[:min(len(body), 200)])))
	}
	var doc limiter.RulesDoc
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("fetch rules from %s: decode: %w", u, err)
	}
	if len(doc.Rules) == 0 {
		return nil, errors.New("fetch rules from " + u + ": the daemon has no rules")
	}
	rs, err := doc.Ruleset(hashKey)
	if err != nil {
		return nil, fmt.Errorf("fetch rules from %s: %w", u, err)
	}
	return rs, nil
}
