package deploytest

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/internal/config"
	"github.com/ratemon/ratemon/internal/testenv"
)

// TestGrafana_queriesHaveData runs a daemon under synthetic traffic, lets a
// real Prometheus scrape it every second with the shipped configuration and
// alert rules, and evaluates every query of the dashboard: each must give a
// number, none may be empty or all NaN. It also checks that the alert rules
// evaluate without error, that the refused reload of the traffic raises
// RatemonConfigReloadFailed and that nothing else is alerting.
func TestGrafana_queriesHaveData(t *testing.T) {
	queries := loadDashboard(t).queries()
	exprs := make(map[string]string, len(queries)) // panel -> PromQL
	for _, q := range queries {
		exprs[q.Panel] = promQL(t, q)
	}

	n := testenv.StartNATS(t)
	var r *running
	load := &reloadable{cfg: func() *config.Config { return r.cfg }}
	r = startDaemon(t, n.URL(), trafficRules(), load.load)
	withAlerting(t, r)
	js, err := jetstream.New(n.Connect(t))
	require.NoError(t, err)
	p := startPrometheus(t, r.addr)

	// Traffic starts once Prometheus holds a sample, so counters and
	// histograms rise between two scrapes (rates and quantiles need that).
	waitFor(t, 20*time.Second, "prometheus never scraped the daemon", func() string {
		ss, err := p.query(`up{job="ratemon"} == 1`)
		if err != nil || len(ss) == 0 {
			return fmt.Sprint("up: ", describe(ss), err)
		}
		return ""
	})
	start := time.Now()
	tr := newTraffic(t, r, js)
	tr.operate(load)

	waitFor(t, 45*time.Second, "dashboard queries without data", func() string {
		tr.round()
		var missing []string
		for _, panel := range sortedKeys(exprs) {
			ss, err := p.queryRange(exprs[panel], start.Add(-time.Second), time.Second)
			require.NoError(t, err, "panel %s: %s", panel, exprs[panel])
			if !finite(ss) {
				missing = append(missing, fmt.Sprintf("%s: %s -> %s", panel, exprs[panel], describe(ss)))
			}
		}
		if problems := ruleProblems(p); problems != "" {
			missing = append(missing, problems)
		}
		return strings.Join(missing, "\n")
	})

	// By now the daemon has served every metric it has; all are documented.
	code, body := get(r.base + "/metrics")
	require.Equal(t, http.StatusOK, code)
	requireDocumented(t, body)
}

// ruleProblems describes what is wrong with the alert rules Prometheus
// evaluates: a rule that errs or was not evaluated yet, an alert that
// should not be active, or RatemonConfigReloadFailed not active.
func ruleProblems(p *promServer) string {
	var rules struct {
		Groups []struct {
			Rules []struct {
				Name      string `json:"name"`
				Health    string `json:"health"`
				LastError string `json:"lastError"`
				State     string `json:"state"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := p.api("/api/v1/rules", nil, &rules); err != nil {
		return "rules: " + err.Error()
	}
	var out []string
	count := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			count++
			switch {
			case r.Health != "ok":
				out = append(out, fmt.Sprintf("rule %s: health %q %s", r.Name, r.Health, r.LastError))
			case r.Name == "RatemonConfigReloadFailed" && r.State == "inactive":
				out = append(out, "rule RatemonConfigReloadFailed: inactive after a refused reload")
			case r.Name != "RatemonConfigReloadFailed" && r.State != "inactive":
				out = append(out, fmt.Sprintf("rule %s: %s on a healthy daemon", r.Name, r.State))
			}
		}
	}
	if count < len(wantAlerts) {
		out = append(out, fmt.Sprintf("prometheus loaded %d rules, want %d", count, len(wantAlerts)))
	}
	return strings.Join(out, "\n")
}

// waitFor calls check every second until it returns "" and fails with what
// it returned last when timeout passes first.
func waitFor(t *testing.T, timeout time.Duration, msg string, check func() string) {
	t.Helper()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	deadline := time.After(timeout)
	for {
		last := check()
		if last == "" {
			return
		}
		select {
		case <-deadline:
			require.Failf(t, msg, "after %s:\n%s", timeout, last)
		case <-tick.C:
		}
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
