package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/internal/httpapi"
	"github.com/ratemon/ratemon/limiter"
	"github.com/ratemon/ratemon/pipeline/event"
)

type noChecker struct{}

func (noChecker) Check(context.Context, *limiter.Ruleset, event.Event) (limiter.CheckResult, error) {
	return limiter.CheckResult{}, nil
}

type ready struct{}

func (ready) Ready() (bool, []string) { return true, nil }

func TestRules_servesTheRulesInForce(t *testing.T) {
	rules := []limiter.Rule{
		{Name: "per-client-minute", Match: limiter.Match{Service: "stocks"}, Key: []limiter.Field{limiter.FieldClient},
			Limit: 100, Window: time.Minute, Action: limiter.ActionDeny},
		{Name: "login-burst", Match: limiter.Match{Route: "POST /login", Method: "POST"}, Key: []limiter.Field{limiter.FieldIP},
			Limit: 5, Window: 10 * time.Second, DenyFor: 15 * time.Minute, Action: limiter.ActionDeny, CountRefused: true},
	}
	rs, err := limiter.NewRuleset(rules)
	require.NoError(t, err)
	api, err := httpapi.New(httpapi.Options{Checker: noChecker{}, Rules: func() *limiter.Ruleset { return rs },
		Health: ready{}, Gatherer: prometheus.NewRegistry()})
	require.NoError(t, err)
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)

	resp, err := http.Get(srv.URL + "/v1/rules")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.JSONEq(t, `{"rules":[
	  {"name":"per-client-minute","match":{"service":"stocks"},"key":["client"],"limit":100,"window_ms":60000,
	   "deny_for_ms":0,"action":"deny","count_refused":false},
	  {"name":"login-burst","match":{"route":"POST /login","method":"POST"},"key":["ip"],"limit":5,"window_ms":10000,
	   "deny_for_ms":900000,"action":"deny","count_refused":true}]}`, string(body))

	var doc limiter.RulesDoc
	require.NoError(t, json.Unmarshal(body, &doc))
	back, err := doc.Ruleset(nil)
	require.NoError(t, err)
	require.Equal(t, rs.Rules(), back.Rules(), "the document gives the same rules back")

	resp, err = http.Post(srv.URL+"/v1/rules", "application/json", nil)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusNotFound, resp.StatusCode, "read-only, like every /v1 read")
}

func TestRulesDoc_invalidRulesAreLocated(t *testing.T) {
	_, err := limiter.RulesDoc{Rules: []limiter.RuleDoc{{Name: "x", Key: []limiter.Field{"client"}, Limit: 0, WindowMS: 1000, Action: "deny"}}}.Ruleset(nil)
	require.ErrorContains(t, err, "rules[0].limit: must be between 1")
}

func TestRules_privacyHashIsServedButNotItsKey(t *testing.T) {
	rs, err := limiter.NewRuleset([]limiter.Rule{{Name: "r", Key: []limiter.Field{limiter.FieldIP}, Limit: 1, Window: time.Second, Action: limiter.ActionDeny}})
	require.NoError(t, err)
	key := []byte("0123456789abcdef-secret")
	h, err := limiter.NewHasher([]limiter.Field{limiter.FieldIP, limiter.FieldClient}, key)
	require.NoError(t, err)
	doc := limiter.DocOf(rs.WithHasher(h))
	require.Equal(t, []limiter.Field{limiter.FieldClient, limiter.FieldIP}, doc.Hash)
	b, err := json.Marshal(doc)
	require.NoError(t, err)
	require.NotContains(t, string(b), "secret")

	_, err = doc.Ruleset(nil)
	require.ErrorContains(t, err, "privacy key is needed")
	back, err := doc.Ruleset(key)
	require.NoError(t, err)
	require.Equal(t, h.Value("10.0.0.1"), back.Hasher().Value("10.0.0.1"), "the same key gives the daemon's hashes")
}
