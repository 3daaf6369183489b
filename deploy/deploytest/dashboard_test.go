package deploytest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// dashboard is the part of a Grafana dashboard JSON the tests read.
type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Definition string          `json:"definition"`
			AllValue   string          `json:"allValue"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int        `json:"id"`
	Type       string     `json:"type"`
	Title      string     `json:"title"`
	Datasource datasource `json:"datasource"`
	Panels     []panel    `json:"panels"` // rows that are collapsed hold their panels
	Targets    []struct {
		Expr       string     `json:"expr"`
		RefID      string     `json:"refId"`
		Datasource datasource `json:"datasource"`
	} `json:"targets"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// panelQuery is one target of one panel.
type panelQuery struct {
	Panel string // panel title and refId
	Expr  string // as written in the dashboard
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(deployDir(t), "grafana", "dashboards", "ratemon.json"))
	require.NoError(t, err)
	var d dashboard
	require.NoError(t, json.Unmarshal(b, &d), "grafana/dashboards/ratemon.json")
	return d
}

// queries lists every target of every panel, rows included.
func (d dashboard) queries() []panelQuery {
	var out []panelQuery
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				out = append(out, panelQuery{Panel: p.Title + " " + tg.RefID, Expr: tg.Expr})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// grafanaVars replaces the variables Grafana fills in, as it would with
// "All" selected and a 15s scrape interval.
var grafanaVars = strings.NewReplacer(
	"${__rate_interval}", "1m", "$__rate_interval", "1m",
	"${__interval}", "15s", "$__interval", "15s",
	"${service}", ".*", "$service", ".*",
	"${rule}", ".*", "$rule", ".*",
)

// promQL turns a panel expression into what Grafana sends to Prometheus.
func promQL(t *testing.T, q panelQuery) string {
	t.Helper()
	// A multi-value variable becomes a regex: it must be matched with =~.
	for _, v := range []string{"service", "rule"} {
		for _, form := range []string{"$" + v, "${" + v + "}"} {
			if strings.Contains(q.Expr, form) {
				require.Contains(t, q.Expr, `=~"`+form+`"`, "%s: use %s only as =~\"%s\"", q.Panel, form, form)
			}
		}
	}
	expr := grafanaVars.Replace(q.Expr)
	require.NotContains(t, expr, "$", "%s: a variable the test does not know: %s", q.Panel, q.Expr)
	return expr
}

func TestGrafana_dashboard(t *testing.T) {
	d := loadDashboard(t)
	require.Equal(t, "ratemon", d.UID)
	require.Equal(t, "ratemon", d.Title)
	require.GreaterOrEqual(t, d.SchemaVersion, 36, "a schema with datasource references by uid")

	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
		if v.Type == "query" {
			require.Contains(t, string(v.Query), "label_values(", "variable %s", v.Name)
			require.Equal(t, ".*", v.AllValue, "variable %s: All must be a regex matching everything", v.Name)
		}
	}
	require.Equal(t, map[string]string{"datasource": "datasource", "service": "query", "rule": "query"}, vars)

	ids := map[int]string{}
	var check func([]panel)
	check = func(ps []panel) {
		for _, p := range ps {
			prev, dup := ids[p.ID]
			require.False(t, dup, "panels %q and %q share the id %d", prev, p.Title, p.ID)
			ids[p.ID] = p.Title
			if p.Type == "row" {
				check(p.Panels)
				continue
			}
			require.NotEmpty(t, p.Targets, "panel %q has no query", p.Title)
			require.Equal(t, datasource{Type: "prometheus", UID: "${datasource}"}, p.Datasource, "panel %q", p.Title)
			for _, tg := range p.Targets {
				require.NotEmpty(t, tg.Expr, "panel %q %s", p.Title, tg.RefID)
				require.Equal(t, p.Datasource, tg.Datasource, "panel %q %s", p.Title, tg.RefID)
			}
		}
	}
	check(d.Panels)

	// The panels the issue asks for, found by the metric they query.
	all := ""
	for _, q := range d.queries() {
		all += q.Expr + "\n"
		promQL(t, q)
	}
	for _, m := range []string{
		"ratemon_ingest_events_total", "ratemon_ingest_rejected_total", "ratemon_limiter_denies_total",
		"ratemon_limiter_shadow_denies_total", "ratemon_limiter_active_flags", "ratemon_limiter_manual_blocks",
		"ratemon_limiter_allow_entries", "ratemon_detection_lag_seconds_bucket",
		"ratemon_ingest_stream_pending_messages", "ratemon_ingest_ack_pending_messages",
		"ratemon_worker_pending_entries", "ratemon_worker_lag_entries", "ratemon_worker_oldest_pending_seconds",
		"ratemon_ingest_batch_messages_bucket", "ratemon_pipeline_batch_seconds_bucket",
		"ratemon_worker_evaluations_total", "ratemon_limiter_decisions_total", "ratemon_pipeline_errors_total",
		"ratemon_config_reloads_total", "ratemon_alerting_notifications_total",
	} {
		require.Contains(t, all, m, "no panel queries %s", m)
	}
	require.Regexp(t, `histogram_quantile\(0\.99, [^\n]*ratemon_detection_lag_seconds_bucket`, all)
	require.Regexp(t, `histogram_quantile\(0\.5, [^\n]*ratemon_detection_lag_seconds_bucket`, all)
}

func TestGrafana_provisioning(t *testing.T) {
	dir := filepath.Join(deployDir(t), "grafana", "provisioning")
	var ds struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Name string `yaml:"name"`
			Type string `yaml:"type"`
			URL  string `yaml:"url"`
		} `yaml:"datasources"`
	}
	readYAML(t, filepath.Join(dir, "datasources", "prometheus.yaml"), &ds)
	require.Equal(t, 1, ds.APIVersion)
	require.Len(t, ds.Datasources, 1)
	require.Equal(t, "prometheus", ds.Datasources[0].Type)
	require.NotEmpty(t, ds.Datasources[0].URL)

	var dp struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Type    string `yaml:"type"`
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, filepath.Join(dir, "dashboards", "ratemon.yaml"), &dp)
	require.Equal(t, 1, dp.APIVersion)
	require.Len(t, dp.Providers, 1)
	require.Equal(t, "file", dp.Providers[0].Type)
	require.Equal(t, "/var/lib/grafana/dashboards", dp.Providers[0].Options.Path, "the compose layout mounts grafana/dashboards there")
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	require.NoError(t, dec.Decode(v), path)
}
