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

// keyChecker finds the keys a check looks up, for one rule set compiled
// once as a checker does: its privacy hash cache is shared by the events,
// so that both its miss and its hit paths are taken.
type keyChecker struct {
	rs   *limiter.Ruleset
	cr   *compiled
	seed hashSeed
}

func newKeyChecker(rs *limiter.Ruleset) *keyChecker {
	k := &keyChecker{rs: rs, seed: newHashSeed()}
	k.cr = compile(rs, &k.seed)
	return k
}

// keys is what a check looks up for e: the matching groups and the entry
// found for each, after inserting the daemon's keys in a fresh set.
func (k *keyChecker) keys(t testing.TB, e event.Event) []string {
	s := newDenySet()
	s.seed = k.seed
	for _, dk := range daemonKeys(k.rs, e) {
		en, ok := s.newEntry(dk, 1, "", false)
		require.True(t, ok, dk)
		s.set(en)
	}
	var q request
	k.cr.prepare(&q, &e)
	var out []string
	for gi := range k.cr.groups {
		// One group at a time, to see the key found for each; the entries
		// all end at 1, so lookupAll returns the only one it finds.
		groups := k.cr.groups[gi : gi+1]
		en, ok := s.lookupAll(groups, &q, false)
		if !ok {
			s.mu.RLock()
			en, _ = s.lookupAll(groups, &q, true)
			s.mu.RUnlock()
		}
		if en != nil {
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
	kc := newKeyChecker(rs)
	f.Fuzz(func(t *testing.T, client, ip, service, route, method string, refused bool) {
		e := event.Event{Client: client, IP: ip, Service: service, Route: route, Method: method, Refused: refused}
		require.Equal(t, daemonKeys(rs, e), kc.keys(t, e))
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
	kc := newKeyChecker(rs)
	for range 20000 {
		e := event.Event{
			Client:  pick("", "acme", "a|b", "{x}", "100%"),
			IP:      pick("", "10.0.0.1", "::1"),
			Service: pick("", "stocks", "svc"),
			Route: pick("", "GET /stocks/{s}/history", "/stocks/a/history", "POST /login", "POST  /login", "post /login", "/login",
				"get /a1b2c", "DELETE /aXbYc", "/xy/z", "/x/z", "PUT /aabbcc", "GET", "GET ", "GETX /x", "ABCDEFGHIJKLMNOPQ /x"),
			Method:  pick("", "GET", "get", "Post", "DELETE", "gEt"),
			Refused: r.IntN(2) == 0,
		}
		require.Equal(t, daemonKeys(rs, e), kc.keys(t, e), "%+v", e)
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
	patterns := []string{"GET /stocks/*/history", "GET /x*", "* /a", "POST *", "*ET /x", "G*ET /x", "GE*T", "*", "GET *", "* /",
		"GET /x", "POST /login", "GET", "G", " /x", "GET /a*b*c", "* /a*b*c", "G*T /*/*", "GET /?", "G?T /x*"}
	methods := []string{"", "GET", "get", "gEt", "POST", "post", "G"}
	paths := []string{"", "/", "/x", "/a", "/login", "/stocks/A/history", "/stocks/history", "T /x", "/xyz", "/aXbYc", "/a/b", "/ab/c"}
	for _, p := range patterns {
		g := compileGlob(p)
		for _, m := range methods {
			for _, path := range paths {
				want := limiter.Glob(p, strings.ToUpper(m)+" "+path)
				switch len(g.segs) {
				case 1:
					require.Equal(t, want, g.equalJoined(m, path), "%q %q %q", p, m, path)
				case 2:
					require.Equal(t, want, g.matchJoined(m, path), "%q %q %q", p, m, path)
				}
				require.Equal(t, want, g.matchSubject(m, path), "%q %q %q", p, m, path)
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
