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
	need  uint8   // the bits of index: the fields a key of shape needs
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

// compile prepares rs for checks against a deny set of the given seed
// (denySet.seed), which the privacy hash cache needs.
func compile(rs *limiter.Ruleset, seed *hashSeed) *compiled {
	c := &compiled{rs: rs, hashes: newHashCache(rs, seed, hashCacheSlots)}
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

// prepare fills q from e, with the fields the daemon hashes hashed.
func (c *compiled) prepare(q *request, e *event.Event) {
	q.init(e)
	if c.hashes != nil {
		c.hashes.applyRequest(q)
	}
}

// newGroup returns the group of shape, without rules.
func newGroup(shape limiter.Shape) group {
	g := group{shape: shape, code: shapeCode(shape), hash0: shapeSeed(shape)}
	for _, f := range shape {
		g.index = append(g.index, uint8(fieldIndex(f)))
		g.need |= 1 << fieldIndex(f)
	}
	return g
}

// matches reports whether m's rule counts the request q when it is not
// refused: limiter.Rule.Matches without the refused test, and without
// allocating on the fast path.
func (m *matcher) matches(q *request) bool {
	if !q.fast {
		ev := q.event()
		return m.rule.Matches(&ev)
	}
	if m.service != "" && m.service != q.vals[idxService] {
		return false
	}
	if m.method != "" && !strings.EqualFold(m.method, q.method) {
		return false
	}
	if m.route.pattern == "" {
		return true
	}
	if m.routeMethod {
		switch len(m.route.segs) { // no star, or "pre*suf": no need to build the subject
		case 1:
			return m.route.equalJoined(q.method, q.path)
		case 2:
			return m.route.matchJoined(q.method, q.path)
		}
		return m.route.matchSubject(q.method, q.path)
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

// matchSubject is matchBytes of strings.ToUpper(method)+" "+path, built
// in a buffer of its own: only patterns with a method and two stars or more
// need it, and keeping the buffer out of request spares every check from
// zeroing it. method is ASCII and the subject fits in maxSubject.
func (g *glob) matchSubject(method, path string) bool {
	var buf [maxSubject]byte
	return g.matchBytes(appendSubject(buf[:0], method, path))
}

// equalJoined is matchBytes of strings.ToUpper(method)+" "+path for a
// pattern without stars, comparing the subject in place; method is ASCII.
func (g *glob) equalJoined(method, path string) bool {
	p := g.pattern
	return len(p) == len(method)+1+len(path) && upperHasPrefix(method, p[:len(method)]) &&
		p[len(method)] == ' ' && p[len(method)+1:] == path
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
	// The prefix is compared in up to three parts, the upper-cased method,
	// the space and the path, rather than byte by byte through a switch.
	if len(pre) <= len(method) {
		if !upperHasPrefix(method, pre) {
			return false
		}
	} else if !upperHasPrefix(method, pre[:len(method)]) || pre[len(method)] != ' ' ||
		path[:len(pre)-len(method)-1] != pre[len(method)+1:] {
		return false
	}
	if len(suf) <= len(path) {
		return path[len(path)-len(suf):] == suf
	}
	var buf [maxSubject]byte // the suffix reaches into the method: rare
	b := appendSubject(buf[:0], method, path)
	return string(b[len(b)-len(suf):]) == suf
}

// upperHasPrefix reports whether strings.ToUpper(s) starts with p, for an
// ASCII s.
func upperHasPrefix(s, p string) bool {
	if len(p) > len(s) {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != p[i] {
			return false
		}
	}
	return true
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
