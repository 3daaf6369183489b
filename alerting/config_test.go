package alerting_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/alerting"
	"github.com/ratemon/ratemon/limiter"
)

func TestConfig_defaults(t *testing.T) {
	var c alerting.Config
	c.Sinks = []alerting.SinkConfig{{Name: "log", Type: alerting.SinkLog}}
	c.SetDefaults()
	require.NoError(t, c.Validate())
	require.Equal(t, 30*time.Second, c.ResolveAfter)
	require.Equal(t, 4*time.Hour, c.RepeatInterval)
	require.Equal(t, 5*time.Second, c.GroupWait)
	require.Equal(t, time.Minute, c.GroupInterval)
	require.Equal(t, alerting.SinkConfig{Name: "log", Type: alerting.SinkLog, RateLimit: 60, QueueSize: 1000,
		Timeout: 10 * time.Second, MaxRetries: 5}, c.Sinks[0])
}

func TestConfig_Validate_reportsEveryProblem(t *testing.T) {
	c := alerting.Config{
		ResolveAfter:  time.Microsecond,
		LinkTemplate:  "{{.Nope}}",
		QueueSize:     -1,
		GroupInterval: 2 * time.Hour,
		Sinks: []alerting.SinkConfig{
			{Name: "am", Type: alerting.SinkAlertmanager, URL: "ftp://x"},
			{Name: "am", Type: "pager", URL: "http://x", SecretEnv: "lower", Channel: "#x"},
			{Name: "Bad Name", Type: alerting.SinkWebhook, SecretEnv: "1X", Rules: []string{"UP"},
				Severities: []limiter.Severity{"loud"}, States: []alerting.State{"gone"}, RateLimit: -1, MaxRetries: 101},
			{Name: "log", Type: alerting.SinkLog, URL: "http://x", Timeout: time.Hour},
		},
	}
	c.SetDefaults()
	require.EqualError(t, c.Validate(), `resolve_after: must be between 10ms and 24h, got 1µs
group_interval: must be between 1ms and 1h, got 2h
queue_size: must be between 1 and 1000000, got -1
link_template: bad template: template: link:1:2: executing "link" at <.Nope>: can't evaluate field Nope in type *alerting.Alert
sinks[0].url: must be an http:// or https:// url
sinks[1].type: must be one of log, webhook, slack, alertmanager, nats, got "pager"
sinks[1].url: is not used by a pager sink
sinks[1].secret_env: is only used by a webhook sink
sinks[1].channel: is only used by a slack sink
sinks[1].name: duplicate sink name "am", already used by sinks[0]
sinks[2].name: must hold only a-z, 0-9, '-' and '_' and start with a letter or digit, got "Bad Name"
sinks[2].url: is required
sinks[2].secret_env: must name an environment variable ([A-Z_][A-Z0-9_]*), got "1X"
sinks[2].rules[0]: must hold only a-z, 0-9, '-' and '_' and start with a letter or digit, got "UP"
sinks[2].severities[0]: must be one of info, warning, critical, got "loud"
sinks[2].states[0]: must be one of near, exceeded, resolved, got "gone"
sinks[2].rate_limit: must be between 1 and 100000 messages per minute, got -1
sinks[2].max_retries: must be between 0 and 100, got 101
sinks[3].url: is not used by a log sink
sinks[3].timeout: must be between 10ms and 5m, got 1h`)
}

func TestConfig_CheckRules(t *testing.T) {
	c := alerting.Config{Sinks: []alerting.SinkConfig{{Name: "a", Type: alerting.SinkLog, Rules: []string{"known", "unknown"}}}}
	require.EqualError(t, c.CheckRules([]limiter.Rule{{Name: "known"}}), `sinks[0].rules[1]: no rule is named "unknown"`)
	c.Sinks[0].Rules = []string{"known"}
	require.NoError(t, c.CheckRules([]limiter.Rule{{Name: "known"}}))
}

func TestRule_warnAtAndSeverity(t *testing.T) {
	r := limiter.Rule{Name: "r", Key: []limiter.Field{"client"}, Limit: 10, Window: time.Second, Action: "deny", WarnAt: 1, Severity: "loud"}
	require.EqualError(t, r.Validate(), `warn_at: must be 0 (no near-limit alerts) or a fraction between 0 and 1, got 1
severity: must be one of info, warning, critical, got "loud"`)
	r.WarnAt, r.Severity = 0.8, limiter.SeverityInfo
	require.NoError(t, r.Validate())
}
