package httpapi_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/alerting"
	"github.com/ratemon/ratemon/internal/httpapi"
	"github.com/ratemon/ratemon/limiter"
	"github.com/ratemon/ratemon/pipeline/event"
)

type alertsChecker struct{}

func (alertsChecker) Check(context.Context, *limiter.Ruleset, event.Event) (limiter.CheckResult, error) {
	return limiter.CheckResult{}, nil
}

type alertsHealth struct{}

func (alertsHealth) Ready() (bool, []string) { return true, nil }

// fakeAlerts is a fixed answer of Alerts.Active.
type fakeAlerts struct {
	list []alerting.Alert
	err  error
}

func (f fakeAlerts) Active(context.Context) ([]alerting.Alert, error) { return f.list, f.err }

func alertsAPI(t *testing.T, alerts httpapi.Alerts) string {
	t.Helper()
	rs, err := limiter.NewRuleset([]limiter.Rule{{Name: "r", Key: []limiter.Field{"client"}, Limit: 1, Window: time.Second, Action: "deny"}})
	require.NoError(t, err)
	api, err := httpapi.New(httpapi.Options{Checker: alertsChecker{}, Rules: func() *limiter.Ruleset { return rs },
		Health: alertsHealth{}, Gatherer: prometheus.NewRegistry(), Alerts: alerts})
	require.NoError(t, err)
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	return srv.URL
}

func getBody(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func TestAlerts(t *testing.T) {
	t.Run("active alerts", func(t *testing.T) {
		since := time.Date(2026, 11, 24, 18, 0, 0, 0, time.UTC)
		u := alertsAPI(t, fakeAlerts{list: []alerting.Alert{{
			ID: "per-client:client=acme:2", State: alerting.StateExceeded, Rule: "per-client", Key: "client=acme",
			Service: "stocks", Action: limiter.ActionDeny, Severity: limiter.SeverityCritical, Count: 120, Peak: 130,
			Limit: 100, Window: alerting.Duration(time.Minute), Since: since, At: since.Add(time.Minute),
			Flag: alerting.Flag{Kind: "deny", Until: since.Add(2 * time.Minute), Key: "ratemon:deny:{client=acme}"},
		}}})
		code, body := getBody(t, u+"/v1/alerts")
		require.Equal(t, http.StatusOK, code)
		require.JSONEq(t, `{"alerts":[{"id":"per-client:client=acme:2","state":"exceeded","rule":"per-client",
		  "key":"client=acme","service":"stocks","action":"deny","severity":"critical","count":120,"peak":130,
		  "limit":100,"window":"1m0s","first_seen":"2026-11-24T18:00:00Z","at":"2026-11-24T18:01:00Z",
		  "flag":{"kind":"deny","until":"2026-11-24T18:02:00Z","redis":"ratemon:deny:{client=acme}"}}]}`, body)
	})
	t.Run("none", func(t *testing.T) {
		code, body := getBody(t, alertsAPI(t, fakeAlerts{list: []alerting.Alert{}})+"/v1/alerts")
		require.Equal(t, http.StatusOK, code)
		require.JSONEq(t, `{"alerts":[]}`, body)
	})
	t.Run("redis down", func(t *testing.T) {
		code, body := getBody(t, alertsAPI(t, fakeAlerts{err: errors.New("dial tcp: connection refused")})+"/v1/alerts")
		require.Equal(t, http.StatusServiceUnavailable, code)
		require.JSONEq(t, `{"error":"redis unavailable: dial tcp: connection refused"}`, body)
	})
	t.Run("not enabled", func(t *testing.T) {
		code, body := getBody(t, alertsAPI(t, nil)+"/v1/alerts")
		require.Equal(t, http.StatusNotFound, code)
		require.JSONEq(t, `{"error":"alerting is not enabled on this daemon"}`, body)
	})
}
