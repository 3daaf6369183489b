package limiter_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/limiter"
	"github.com/ratemon/ratemon/pipeline/event"
)

func TestGlob(t *testing.T) {
	cases := []struct {
		pat, s string
		want   bool
	}{
		{"POST /login", "POST /login", true},
		{"POST /login", "POST /logins", false},
		{"/stocks/*", "/stocks/AAPL/history", true},
		{"/stocks/*/history", "/stocks/AAPL/history", true},
		{"/stocks/*/history", "/stocks/AAPL/prices", false},
		{"GET /st?cks", "GET /stocks", true},
		{"*", "", true},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
		{"", "", true},
		{"", "x", false},
	}
	for _, c := range cases {
		require.Equal(t, c.want, limiter.Glob(c.pat, c.s), "%q ~ %q", c.pat, c.s)
	}
}

func TestRule_Matches(t *testing.T) {
	login := limiter.Rule{Name: "l", Match: limiter.Match{Route: "POST /login"}}
	require.True(t, login.Matches(&event.Event{Route: "/login", Method: "post"}))
	require.True(t, login.Matches(&event.Event{Route: "POST /login"}))
	require.False(t, login.Matches(&event.Event{Route: "/login", Method: "GET"}))
	path := limiter.Rule{Name: "p", Match: limiter.Match{Route: "/stocks/*", Service: "stocks", Method: "get"}}
	require.True(t, path.Matches(&event.Event{Route: "GET /stocks/{symbol}/history", Service: "stocks"}))
	require.False(t, path.Matches(&event.Event{Route: "GET /stocks/{symbol}/history", Service: "crypto"}))
	require.False(t, path.Matches(&event.Event{Route: "POST /stocks/x", Service: "stocks"}))
	require.False(t, path.Matches(&event.Event{Route: "GET /stocks/x", Service: "stocks", Refused: true}), "refused events count only with count_refused")
	path.CountRefused = true
	require.True(t, path.Matches(&event.Event{Route: "GET /stocks/x", Service: "stocks", Refused: true}))
}

func TestRuleset_Match(t *testing.T) {
	rules := []limiter.Rule{
		{Name: "a", Limit: 1, Window: time.Second},
		{Name: "b", Limit: 1, Window: time.Second, Match: limiter.Match{Service: "stocks"}},
		{Name: "c", Key: []limiter.Field{limiter.FieldClient, limiter.FieldRoute}, Limit: 1, Window: time.Second},
		{Name: "d", Key: []limiter.Field{limiter.FieldIP}, Limit: 1, Window: time.Second},
	}
	for i := range rules {
		rules[i].SetDefaults()
	}
	rs, err := limiter.NewRuleset(rules)
	require.NoError(t, err)
	require.Len(t, rs.Groups(), 3)
	e := event.Event{Client: "ac|me", Service: "stocks", Route: "POST /login", Weight: 1}
	hits := rs.Match(nil, &e)
	require.Len(t, hits, 2, "no ip, so rule d does not count the event")
	require.Equal(t, limiter.LimitKey("client=ac%7Cme"), hits[0].Key)
	require.Equal(t, uint64(0b11), hits[0].Mask)
	require.Equal(t, limiter.LimitKey("client=ac%7Cme|route=POST /login"), hits[1].Key)
	shape, ok := limiter.ShapeOf(hits[1].Key)
	require.True(t, ok)
	require.Equal(t, "client,route", shape.String())
	require.Equal(t, map[limiter.Field]string{"client": "ac|me", "route": "POST /login"}, limiter.Values(hits[1].Key))
	g, ok := rs.GroupFor(hits[1].Key)
	require.True(t, ok)
	require.Equal(t, "c", g.Rules[0].Name)
}

func TestValidateRules(t *testing.T) {
	err := limiter.ValidateRules([]limiter.Rule{
		{Name: "ok", Key: []limiter.Field{"client"}, Limit: 1, Window: time.Second, Action: "deny"},
		{Name: "ok", Key: []limiter.Field{"client", "client", "user"}, Limit: -5, Window: 0, Action: "block"},
	})
	require.Error(t, err)
	msg := err.Error()
	for _, want := range []string{
		`[1].name: duplicate rule name "ok"`,
		"[1].limit: must be between 1 and",
		"[1].window: must be between 1ms and",
		`[1].action: must be one of deny, shadow, alert, got "block"`,
		`[1].key[1]: field "client" listed twice`,
		`[1].key[2]: unknown key field "user"`,
	} {
		require.Contains(t, msg, want)
	}
}
