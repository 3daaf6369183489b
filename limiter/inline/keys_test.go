package inline

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/limiter"
	"github.com/ratemon/ratemon/pipeline/event"
)

// fuzzRules covers every field and every kind of match: globs with and
// without a method, with `?`, methods in any case.
func fuzzRules(t testing.TB) *limiter.Ruleset {
	t.Helper()
	rule := func(name string, m limiter.Match, key ...limiter.Field) limiter.Rule {
		return limiter.Rule{Name: name, Match: m, Key: key, Limit: 1, Window: time.Second, Action: limiter.ActionDeny}
	}
	rs, err := limiter.NewRuleset([]limiter.Rule{
		rule("a", limiter.Match{Service: "stocks"}, limiter.FieldClient),
		rule("b", limiter.Match{Route: "POST /login"}, limiter.FieldIP),
		rule("c", limiter.Match{Route: "/stocks/*/history", Method: "get"}, limiter.FieldClient, limiter.FieldRoute),
		rule("d", limiter.Match{Route: "* /a*b*c"}, limiter.FieldMethod, limiter.FieldClient),
		rule("e", limiter.Match{Route: "/x?/*"}, limiter.FieldService, limiter.FieldIP),
		rule("g", limiter.Match{Route: "G*T /*"}, limiter.FieldClient),
		rule("h", limiter.Match{Route: "GET /stocks/*"}, limiter.FieldIP, limiter.FieldRoute),
		rule("i", limiter.Match{Route: "*ET /x"}, limiter.FieldMethod),
	})
	require.NoError(t, err)
	return rs
}

// daemonKeys is what the daemon counts e under: limiter.Ruleset.Match.
func daemonKeys(rs *limiter.Ruleset, e event.Event) []string {
	e.Refused = false
	var out []string
	for _, h := range rs.Match(nil, &e) {
		out = append(out, string(h.Key))
	}
	return out
}

// checkerKeys is what a check looks up for e: the matching groups and
// the entry found for each, after inserting the daemon's keys.
func checkerKeys(t testing.TB, rs *limiter.Ruleset, e event.Event) []string {
	cr := compile(rs)
	s := newDenySet()
	for _, k := range daemonKeys(rs, e) {
		en, ok := s.newEntry(k, 1, "", false)
		require.True(t, ok, k)
		s.set(en)
	}
	if cr.hashes != nil {
		cr.hashes.apply(&e)
	}
	var q request
	q.init(&e)
	var out []string
	for gi := range cr.groups {
		g := &cr.groups[gi]
		if !g.matchesAny(&q) {
			continue
		}
		if en, _ := s.lookup(g, &q, true); en != nil {
			out = append(out, en.key)
		}
	}
	return out
}

func FuzzCheck_sameKeysAsDaemon(f *testing.F) {
	f.Add("acme", "10.0.0.1", "stocks", "GET /stocks/{symbol}/history", "GET", false)
	f.Add("a{b}|c=d%", "::1", "stocks", "POST /login", "post", true)
	f.Add("x", "", "svc", "/aXbYc", "delete", false)
	f.Add("bob", "1.2.3.4", "svc", "/xy/z", "", false)
	f.Add("bob", "1.2.3.4", "svc", "GET   /a/b/c", "", false)
	f.Add("ünï", "1.2.3.4", "stocks", "GÉT /a", "gÉt", false)
	f.Add("c", "i", "s", "GET /"+strings.Repeat("y", 300), "GET", false)
	rs := fuzzRules(f)
	f.Fuzz(func(t *testing.T, client, ip, service, route, method string, refused bool) {
		e := event.Event{Client: client, IP: ip, Service: service, Route: route, Method: method, Refused: refused}
		require.Equal(t, daemonKeys(rs, e), checkerKeys(t, rs, e))
	})
}

func TestCheck_sameKeysAsDaemon_random(t *testing.T) {
	h, err := limiter.NewHasher([]limiter.Field{limiter.FieldClient, limiter.FieldIP}, []byte("0123456789abcdef"))
	require.NoError(t, err)
	t.Run("plain", func(t *testing.T) { sameKeysRandom(t, fuzzRules(t)) })
	t.Run("privacy hash", func(t *testing.T) { sameKeysRandom(t, fuzzRules(t).WithHasher(h)) })
}

func sameKeysRandom(t *testing.T, rs *limiter.Ruleset) {
	r := rand.New(rand.NewPCG(1, 2))
	pick := func(xs ...string) string { return xs[r.IntN(len(xs))] }
	for range 20000 {
		e := event.Event{
			Client:  pick("", "acme", "a|b", "{x}", "100%"),
			IP:      pick("", "10.0.0.1", "::1"),
			Service: pick("", "stocks", "svc"),
			Route:   pick("", "GET /stocks/{s}/history", "/stocks/a/history", "POST /login", "/login", "get /a1b2c", "/xy/z", "/x/z", "PUT /aabbcc"),
			Method:  pick("", "GET", "get", "Post", "DELETE", "gEt"),
			Refused: r.IntN(2) == 0,
		}
		require.Equal(t, daemonKeys(rs, e), checkerKeys(t, rs, e), "%+v", e)
	}
}

func TestGlob_sameAsLimiter(t *testing.T) {
	patterns := []string{"", "*", "a", "a*", "*a", "a*b", "*a*", "a*b*c", "a**b", "ab*ba", "a?c", "?*", "*/history", "/stocks/*/history"}
	subjects := []string{"", "a", "ab", "aba", "abba", "abab", "abc", "axbyc", "aXc", "/stocks/x/history", "/stocks//history", "/stocks/history"}
	for _, p := range patterns {
		g := compileGlob(p)
		for _, s := range subjects {
			want := limiter.Glob(p, s)
			require.Equal(t, want, g.matchString(s), "%q %q", p, s)
			require.Equal(t, want, g.matchBytes([]byte(s)), "%q %q", p, s)
		}
	}
}

func TestGlob_matchJoined_sameAsLimiter(t *testing.T) {
	patterns := []string{"GET /stocks/*/history", "GET /x*", "* /a", "POST *", "*ET /x", "G*ET /x", "GE*T", "*", "GET *", "* /"}
	methods := []string{"", "GET", "get", "gEt", "POST", "G"}
	paths := []string{"", "/", "/x", "/a", "/stocks/A/history", "/stocks/history", "T /x", "/xyz"}
	for _, p := range patterns {
		g := compileGlob(p)
		require.Len(t, g.segs, 2, p)
		for _, m := range methods {
			for _, path := range paths {
				want := limiter.Glob(p, strings.ToUpper(m)+" "+path)
				require.Equal(t, want, g.matchJoined(m, path), "%q %q %q", p, m, path)
			}
		}
	}
}

func TestTable_againstMap(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var tb table
	model := map[uint64]*entry{}
	for i := range 200000 {
		h := uint64(r.IntN(5000)) * 0x9e3779b97f4a7c15
		if r.IntN(100) < 2 {
			h = uint64(r.IntN(64)) // clustered hashes, to exercise wrap-around and shifts
		}
		switch r.IntN(3) {
		case 0, 1:
			e := &entry{key: "k", until: int64(i)}
			tb.put(h, e)
			model[h] = e
		default:
			tb.del(h)
			delete(model, h)
		}
		if i%1000 == 0 {
			require.Equal(t, len(model), tb.len())
			for k, v := range model {
				require.Same(t, v, tb.get(k))
			}
		}
	}
	for k := range model {
		tb.del(k)
	}
	require.Zero(t, tb.len())
}
