package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ratemon/ratemon/internal/fielderr"
	"github.com/ratemon/ratemon/internal/keyspace"
	"github.com/ratemon/ratemon/limiter"
)

// Limits enforced by Validate.
const (
	MaxNATSReplicas = 5   // the largest JetStream cluster size NATS supports
	MaxStreamName   = 255 // JetStream stream and consumer names
)

// Validate checks the whole configuration and returns every problem found,
// each an *fielderr.Error whose path starts at the root, e.g.
// "rules[1].limit" or "nats.retention", joined with errors.Join. Call
// SetDefaults first.
func (c *Config) Validate() error {
	var l fielderr.List
	l.Merge("redis", c.Redis.Validate())
	l.Merge("nats", c.NATS.Validate())
	l.Merge("http", c.HTTP.Validate())
	l.Merge("ingest", c.Ingest.Validate())
	l.Merge("workers", c.Workers.Validate())
	l.Merge("log", c.Log.Validate())
	l.Merge("alerting", c.Alerting.Validate())
	l.Merge("alerting", c.Alerting.CheckRules(c.Rules))
	if len(c.Rules) == 0 {
		l.Add("rules", "at least one rule is required")
	}
	l.Merge("rules", limiter.ValidateRules(c.Rules))
	c.validateRetention(&l)
	c.validateHold(&l)
	for i, f := range c.Privacy.Hash {
		if f != limiter.FieldClient && f != limiter.FieldIP {
			l.Add(fmt.Sprintf("privacy.hash[%d]", i), "only client and ip can be hashed, got %q", string(f))
		}
	}
	if len(c.Privacy.Hash) > 0 && c.Privacy.KeyEnv == "" {
		l.Add("privacy.key_env", "required when privacy.hash is set")
	}
	for name, f := range c.Tiers {
		if err := limiter.ValidateRuleName(name); err != nil {
			l.Add("tiers."+name, "tier name %v", err)
		}
		if !(f > 0 && f <= 1e6) {
			l.Add("tiers."+name, "must be a factor above 0 and at most 1000000, got %g", f)
		}
	}
	return l.Err()
}

// validateHold checks that what ingestion holds back fits in what
// JetStream lets it leave unacknowledged: held messages plus the pull
// buffer below nats.max_ack_pending, and the hold well inside
// nats.ack_wait, or JetStream would stop delivering or deliver again.
func (c *Config) validateHold(l *fielderr.List) {
	in := &c.Ingest
	if !in.Holds() {
		return
	}
	if buf := in.BatchSize * in.Concurrency; c.NATS.MaxAckPending > 0 && in.HoldMessages+buf > c.NATS.MaxAckPending {
		l.Add("ingest.hold_messages", "%d held plus the pull buffer of %d (batch_size × concurrency) exceed nats.max_ack_pending %d",
			in.HoldMessages, buf, c.NATS.MaxAckPending)
	}
	if c.NATS.AckWait > 0 && in.Hold > c.NATS.AckWait/4 {
		l.Add("ingest.hold", "must be at most a quarter of nats.ack_wait (%v), got %v", c.NATS.AckWait, in.Hold)
	}
}

// validateRetention checks that the events stream keeps events at least as
// long as any rule looks back, so that the windows can be rebuilt from
// JetStream when Redis loses its data.
func (c *Config) validateRetention(l *fielderr.List) {
	longest := -1
	var need time.Duration
	for i := range c.Rules {
		r := &c.Rules[i]
		if r.Validate() != nil {
			continue // already reported; its window is meaningless
		}
		if d := time.Duration(r.RetentionMS()) * time.Millisecond; d > need {
			longest, need = i, d
		}
	}
	if longest < 0 || c.NATS.Retention <= 0 || c.NATS.Retention >= need {
		return
	}
	r := &c.Rules[longest]
	why := "window " + formatDuration(r.Window)
	if r.DenyFor > 0 {
		why += " + deny_for " + formatDuration(r.DenyFor)
	}
	l.Add("nats.retention", "must be at least %s, the retention of rules[%d] %q (%s), got %s",
		formatDuration(need), longest, r.Name, why, formatDuration(c.NATS.Retention))
}

// Validate reports every problem, located by field.
func (c *RedisConfig) Validate() error {
	var l fielderr.List
	if c.Cluster() {
		_, err := c.ClusterOptions()
		l.Merge("", err)
	} else {
		_, err := c.Options()
		l.Merge("", err)
	}
	if err := keyspace.ValidatePrefix(c.Prefix); err != nil {
		l.Add("prefix", "%v", err)
	}
	if c.PoolSize < 0 {
		l.Add("pool_size", "must not be negative, got %d", c.PoolSize)
	}
	positive(&l, "dial_timeout", c.DialTimeout)
	positive(&l, "read_timeout", c.ReadTimeout)
	positive(&l, "write_timeout", c.WriteTimeout)
	return l.Err()
}

// Validate reports every problem, located by field.
func (c *NATSConfig) Validate() error {
	var l fielderr.List
	if err := validateNATSURLs(c.URL); err != nil {
		l.Add("url", "%v", err)
	}
	_, err := c.Options() // authentication and tls
	l.Merge("", err)
	if err := validateName(c.Stream); err != nil {
		l.Add("stream", "%v", err)
	}
	if err := keyspace.ValidateSubjectPrefix(c.SubjectPrefix); err != nil {
		l.Add("subject_prefix", "%v", err)
	}
	if err := validateName(c.Consumer); err != nil {
		l.Add("consumer", "%v", err)
	}
	positive(&l, "retention", c.Retention)
	if c.Replicas < 1 || c.Replicas > MaxNATSReplicas {
		l.Add("replicas", "must be between 1 and %d, got %d", MaxNATSReplicas, c.Replicas)
	}
	positive(&l, "ack_wait", c.AckWait)
	if c.MaxAckPending < 1 {
		l.Add("max_ack_pending", "must be at least 1, got %d", c.MaxAckPending)
	}
	if err := validateName(c.DeadLetterStream); err != nil {
		l.Add("deadletter_stream", "%v", err)
	} else if c.DeadLetterStream == c.Stream {
		l.Add("deadletter_stream", "must differ from nats.stream, both are %q", c.Stream)
	}
	positive(&l, "deadletter_retention", c.DeadLetterRetention)
	return l.Err()
}

// Validate reports every problem, located by field.
func (c *HTTPConfig) Validate() error {
	var l fielderr.List
	if err := validateAddr(c.Addr); err != nil {
		l.Add("addr", "%v", err)
	}
	return l.Err()
}

// Validate reports every problem, located by field.
func (c *LogConfig) Validate() error {
	var l fielderr.List
	if err := c.Level.Validate(); err != nil {
		l.Add("level", "%v", err)
	}
	if err := c.Format.Validate(); err != nil {
		l.Add("format", "%v", err)
	}
	return l.Err()
}

func positive(l *fielderr.List, path string, d time.Duration) {
	if d <= 0 {
		l.Add(path, "must be greater than 0s, got %s", formatDuration(d))
	}
}

// validateRedisURL checks u with the parser the daemon uses. Messages show
// the URL with its password redacted.
func validateRedisURL(u string) error {
	p, err := url.Parse(u)
	if err != nil {
		return fmt.Errorf("must be a redis://, rediss://, unix:// or redis+cluster:// url: %w", urlReason(err))
	}
	switch p.Scheme {
	case "redis", "rediss", "unix":
	default:
		return fmt.Errorf("must be a redis://, rediss://, unix:// or redis+cluster:// url, got %q", p.Redacted())
	}
	if _, err := redis.ParseURL(u); err != nil {
		return fmt.Errorf("%s, got %q", strings.TrimPrefix(err.Error(), "redis: "), p.Redacted())
	}
	return nil
}

// validateNATSURLs checks a comma-separated list of NATS server URLs.
func validateNATSURLs(list string) error {
	if strings.TrimSpace(list) == "" {
		return errors.New("must name at least one nats server")
	}
	for s := range strings.SplitSeq(list, ",") {
		s = strings.TrimSpace(s)
		p, err := url.Parse(s)
		if err != nil {
			return fmt.Errorf("must be nats://, tls://, ws:// or wss:// urls: %w", urlReason(err))
		}
		switch p.Scheme {
		case "nats", "tls", "ws", "wss":
		default:
			return fmt.Errorf("must be nats://, tls://, ws:// or wss:// urls, got %q", redactNATSURL(p))
		}
		if p.Hostname() == "" {
			return fmt.Errorf("must name a host, got %q", redactNATSURL(p))
		}
		if port := p.Port(); port != "" {
			if err := validatePort(port); err != nil {
				return fmt.Errorf("%w in %q", err, redactNATSURL(p))
			}
		}
	}
	return nil
}

// urlReason strips the URL, which may hold a password, from a url.Parse error.
func urlReason(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// validateName checks a JetStream stream or consumer name.
func validateName(name string) error {
	if name == "" {
		return errors.New("must not be empty")
	}
	if len(name) > MaxStreamName {
		return fmt.Errorf("must be at most %d characters, got %d", MaxStreamName, len(name))
	}
	for i := 0; i < len(name); i++ {
		b := name[i]
		ok := b == '-' || b == '_' || (b >= '0' && b <= '9') || (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z')
		if !ok {
			return fmt.Errorf("must hold only letters, digits, '-' and '_', got %q", name)
		}
	}
	return nil
}

// validateAddr checks a listen address, host:port; the host may be empty.
func validateAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("must be host:port, got %q", addr)
	}
	return validatePort(port)
}

func validatePort(port string) error {
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port must be a number between 0 and 65535, got %q", port)
	}
	return nil
}

// formatDuration prints d as time.Duration does, without the zero minutes
// and seconds it adds to whole hours and minutes: "24h", not "24h0m0s".
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
