package alerting

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/ratemon/ratemon/internal/fielderr"
	"github.com/ratemon/ratemon/limiter"
)

// Config is the `alerting` section of the configuration file.
type Config struct {
	ResolveAfter   time.Duration `yaml:"resolve_after" usage:"an alert resolves once its key has stayed under the threshold this long"`
	RepeatInterval time.Duration `yaml:"repeat_interval" usage:"an alert still active after this long is notified again"`
	GroupWait      time.Duration `yaml:"group_wait" usage:"how long the first alert of a group (rule and state) waits for others before it is sent"`
	GroupInterval  time.Duration `yaml:"group_interval" usage:"how long later alerts of a group already sent wait before they are sent together"`
	CheckInterval  time.Duration `yaml:"check_interval" usage:"how often each replica looks for alerts to resolve or repeat"`
	QueueSize      int           `yaml:"queue_size" usage:"evaluations waiting for the alert tracker; more are dropped and counted, never waited for"`
	LeaderLease    time.Duration `yaml:"leader_lease" usage:"lease of the replica that delivers notifications; another takes over this long after it dies"`
	LinkTemplate   string        `yaml:"link_template" usage:"go template of the link in each alert, e.g. a dashboard url filtered on {{urlquery .Key}}"`
	Sinks          []SinkConfig  `yaml:"sinks"`
}

// SinkConfig is one destination of notifications.
type SinkConfig struct {
	Name       string             `yaml:"name"`
	Type       SinkType           `yaml:"type"`
	URL        string             `yaml:"url"`        // webhook, slack, alertmanager
	SecretEnv  string             `yaml:"secret_env"` // webhook: environment variable holding the hmac secret
	Channel    string             `yaml:"channel"`    // slack: channel override
	Rules      []string           `yaml:"rules"`      // only these rules; empty: all
	Severities []limiter.Severity `yaml:"severities"` // only these severities; empty: all
	States     []State            `yaml:"states"`     // only these states; empty: all
	RateLimit  int                `yaml:"rate_limit"` // most messages per minute
	QueueSize  int                `yaml:"queue_size"` // messages waiting for the sink; more are dead
	Timeout    time.Duration      `yaml:"timeout"`    // bound on one attempt
	MaxRetries int                `yaml:"max_retries"`
}

// SinkType names a kind of sink.
type SinkType string

// Sink types.
const (
	SinkLog          SinkType = "log"
	SinkWebhook      SinkType = "webhook"
	SinkSlack        SinkType = "slack"
	SinkAlertmanager SinkType = "alertmanager"
	SinkNATS         SinkType = "nats"
)

// Validate checks that t is a known sink type.
func (t SinkType) Validate() error {
	switch t {
	case SinkLog, SinkWebhook, SinkSlack, SinkAlertmanager, SinkNATS:
		return nil
	}
	return fmt.Errorf("must be one of log, webhook, slack, alertmanager, nats, got %q", string(t))
}

func (t SinkType) hasURL() bool {
	return t == SinkWebhook || t == SinkSlack || t == SinkAlertmanager
}

// Defaults.
const (
	DefaultResolveAfter   = 30 * time.Second
	DefaultRepeatInterval = 4 * time.Hour
	DefaultGroupWait      = 5 * time.Second
	DefaultGroupInterval  = time.Minute
	DefaultCheckInterval  = time.Second
	DefaultQueueSize      = 10000
	DefaultLeaderLease    = 10 * time.Second
	DefaultSinkRateLimit  = 60
	DefaultSinkQueueSize  = 1000
	DefaultSinkTimeout    = 10 * time.Second
	DefaultSinkMaxRetries = 5
)

// SetDefaults fills unset fields, in every sink too.
func (c *Config) SetDefaults() {
	setDuration(&c.ResolveAfter, DefaultResolveAfter)
	setDuration(&c.RepeatInterval, DefaultRepeatInterval)
	setDuration(&c.GroupWait, DefaultGroupWait)
	setDuration(&c.GroupInterval, DefaultGroupInterval)
	setDuration(&c.CheckInterval, DefaultCheckInterval)
	setInt(&c.QueueSize, DefaultQueueSize)
	setDuration(&c.LeaderLease, DefaultLeaderLease)
	for i := range c.Sinks {
		c.Sinks[i].SetDefaults()
	}
}

// SetDefaults fills unset fields.
func (s *SinkConfig) SetDefaults() {
	setInt(&s.RateLimit, DefaultSinkRateLimit)
	setInt(&s.QueueSize, DefaultSinkQueueSize)
	setDuration(&s.Timeout, DefaultSinkTimeout)
	setInt(&s.MaxRetries, DefaultSinkMaxRetries)
}

func setDuration(p *time.Duration, v time.Duration) {
	if *p == 0 {
		*p = v
	}
}

func setInt(p *int, v int) {
	if *p == 0 {
		*p = v
	}
}

// Validate reports every problem, located by field. Call SetDefaults first.
func (c *Config) Validate() error {
	var l fielderr.List
	between(&l, "resolve_after", c.ResolveAfter, 10*time.Millisecond, 24*time.Hour)
	between(&l, "repeat_interval", c.RepeatInterval, time.Second, 30*24*time.Hour)
	between(&l, "group_wait", c.GroupWait, time.Millisecond, 10*time.Minute)
	between(&l, "group_interval", c.GroupInterval, time.Millisecond, time.Hour)
	between(&l, "check_interval", c.CheckInterval, 10*time.Millisecond, time.Minute)
	between(&l, "leader_lease", c.LeaderLease, 100*time.Millisecond, 5*time.Minute)
	if c.QueueSize < 1 || c.QueueSize > 1_000_000 {
		l.Add("queue_size", "must be between 1 and 1000000, got %d", c.QueueSize)
	}
	if _, err := parseLink(c.LinkTemplate); err != nil {
		l.Add("link_template", "%v", err)
	}
	names := map[string]int{}
	for i := range c.Sinks {
		p := fmt.Sprintf("sinks[%d]", i)
		l.Merge(p, c.Sinks[i].Validate())
		if j, dup := names[c.Sinks[i].Name]; dup && c.Sinks[i].Name != "" {
			l.Add(p+".name", "duplicate sink name %q, already used by sinks[%d]", c.Sinks[i].Name, j)
		}
		names[c.Sinks[i].Name] = i
	}
	return l.Err()
}

// CheckRules reports the rule names of sink filters that no rule has.
func (c *Config) CheckRules(rules []limiter.Rule) error {
	known := map[string]bool{}
	for _, r := range rules {
		known[r.Name] = true
	}
	var l fielderr.List
	for i, s := range c.Sinks {
		for j, r := range s.Rules {
			if !known[r] && limiter.ValidateRuleName(r) == nil {
				l.Add(fmt.Sprintf("sinks[%d].rules[%d]", i, j), "no rule is named %q", r)
			}
		}
	}
	return l.Err()
}

// Validate reports every problem of one sink, located by field.
func (s *SinkConfig) Validate() error {
	var l fielderr.List
	if err := limiter.ValidateRuleName(s.Name); err != nil {
		l.Add("name", "%v", err)
	}
	if err := s.Type.Validate(); err != nil {
		l.Add("type", "%v", err)
	}
	switch {
	case s.Type.hasURL():
		if err := validateHTTPURL(s.URL); err != nil {
			l.Add("url", "%v", err)
		}
	case s.URL != "":
		l.Add("url", "is not used by a %s sink", s.Type)
	}
	if s.SecretEnv != "" {
		if s.Type != SinkWebhook {
			l.Add("secret_env", "is only used by a webhook sink")
		} else if !validEnvName(s.SecretEnv) {
			l.Add("secret_env", "must name an environment variable ([A-Z_][A-Z0-9_]*), got %q", s.SecretEnv)
		}
	}
	if s.Channel != "" && s.Type != SinkSlack {
		l.Add("channel", "is only used by a slack sink")
	}
	for i, r := range s.Rules {
		if err := limiter.ValidateRuleName(r); err != nil {
			l.Add(fmt.Sprintf("rules[%d]", i), "%v", err)
		}
	}
	for i, v := range s.Severities {
		if err := v.Validate(); err != nil || v == "" {
			l.Add(fmt.Sprintf("severities[%d]", i), "must be one of info, warning, critical, got %q", string(v))
		}
	}
	for i, v := range s.States {
		if err := v.Validate(); err != nil {
			l.Add(fmt.Sprintf("states[%d]", i), "%v", err)
		}
	}
	if s.RateLimit < 1 || s.RateLimit > 100000 {
		l.Add("rate_limit", "must be between 1 and 100000 messages per minute, got %d", s.RateLimit)
	}
	if s.QueueSize < 1 || s.QueueSize > 1_000_000 {
		l.Add("queue_size", "must be between 1 and 1000000, got %d", s.QueueSize)
	}
	between(&l, "timeout", s.Timeout, 10*time.Millisecond, 5*time.Minute)
	if s.MaxRetries < 0 || s.MaxRetries > 100 {
		l.Add("max_retries", "must be between 0 and 100, got %d", s.MaxRetries)
	}
	return l.Err()
}

func between(l *fielderr.List, path string, d, lo, hi time.Duration) {
	if d < lo || d > hi {
		l.Add(path, "must be between %s and %s, got %s", formatDuration(lo), formatDuration(hi), formatDuration(d))
	}
}

// formatDuration prints d without the zero minutes and seconds that
// time.Duration adds to whole hours and minutes: "24h", not "24h0m0s".
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// validateHTTPURL checks a sink URL; messages never show its user info.
func validateHTTPURL(s string) error {
	if s == "" {
		return fmt.Errorf("is required")
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("must be an http:// or https:// url")
	}
	return nil
}

func validEnvName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c == '_' || (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9')
		if !ok {
			return false
		}
	}
	return s != ""
}
