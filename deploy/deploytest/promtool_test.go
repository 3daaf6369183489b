package deploytest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// The alerts the issue asks for, each of which the rule file must define.
var wantAlerts = []string{
	"RatemonNotReady", "RatemonIngestLagGrowing", "RatemonRedisErrors", "RatemonNATSErrors",
	"RatemonNoEvents", "RatemonAlertSinkFailing", "RatemonConfigReloadFailed",
}

func TestPrometheus_promtool(t *testing.T) {
	t.Run("check config", func(t *testing.T) {
		out, ok := promtool(t, nil, "check", "config", "prometheus/prometheus.yml")
		require.True(t, ok, "promtool check config:\n%s", out)
	})
	t.Run("check rules", func(t *testing.T) {
		out, ok := promtool(t, nil, "check", "rules", "prometheus/rules/ratemon.rules.yml")
		require.True(t, ok, "promtool check rules:\n%s", out)
	})
	t.Run("test rules", func(t *testing.T) {
		out, ok := promtool(t, nil, "test", "rules", "prometheus/rules/ratemon.rules.test.yml")
		require.True(t, ok, "promtool test rules:\n%s", out)
	})
	t.Run("a failing rule test fails", func(t *testing.T) {
		// Guard against a promtool that passes anything: a test expecting
		// an alert that cannot fire must fail.
		dir := t.TempDir()
		rules, err := os.ReadFile(filepath.Join(deployDir(t), "prometheus/rules/ratemon.rules.yml"))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "ratemon.rules.yml"), rules, 0o600))
		bad := `rule_files: [ratemon.rules.yml]
tests:
  - interval: 1m
    input_series:
      - series: 'up{job="ratemon", instance="r0:9464"}'
        values: "1x20"
    alert_rule_test:
      - eval_time: 10m
        alertname: RatemonNotReady
        exp_alerts: [{exp_labels: {job: ratemon, instance: "r0:9464", severity: critical}}]
`
		require.NoError(t, os.WriteFile(filepath.Join(dir, "bad.test.yml"), []byte(bad), 0o600))
		out, ok := promtool(t, nil, "test", "rules", filepath.Join(dir, "bad.test.yml"))
		require.False(t, ok, "promtool test rules passed a test that must fail:\n%s", out)
	})
}

// ruleFile is the part of a Prometheus rule file the checks below read.
type ruleFile struct {
	Groups []struct {
		Rules []struct {
			Alert       string            `yaml:"alert"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// TestPrometheus_alertRules checks what promtool does not: every alert the
// issue names exists and has a for clause, a severity, a summary, a
// description and a runbook link into docs/OPERATIONS.md, whose heading
// exists.
func TestPrometheus_alertRules(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(deployDir(t), "prometheus/rules/ratemon.rules.yml"))
	require.NoError(t, err)
	var rf ruleFile
	require.NoError(t, yaml.Unmarshal(b, &rf))
	ops := readDoc(t, "docs/OPERATIONS.md")

	seen := map[string]bool{}
	var noRunbook []string
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			seen[r.Alert] = true
			require.NotEmpty(t, r.For, "%s: for", r.Alert)
			require.Contains(t, []string{"critical", "warning"}, r.Labels["severity"], "%s: severity", r.Alert)
			require.NotEmpty(t, r.Annotations["summary"], "%s: summary", r.Alert)
			require.NotEmpty(t, r.Annotations["description"], "%s: description", r.Alert)
			require.Equal(t, runbookURL(r.Alert), r.Annotations["runbook_url"], "%s: runbook_url", r.Alert)
			if !strings.Contains(ops, "\n### "+r.Alert+"\n") {
				noRunbook = append(noRunbook, r.Alert)
			}
		}
	}
	require.Empty(t, noRunbook, "alerts without a runbook heading (### NAME) in docs/OPERATIONS.md")
	for _, a := range wantAlerts {
		require.True(t, seen[a], "alert %s is missing from ratemon.rules.yml", a)
	}
}

func runbookURL(alert string) string {
	return "https://github.com/ratemon/ratemon/blob/main/docs/OPERATIONS.md#" + strings.ToLower(alert)
}
