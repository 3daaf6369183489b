package config

import (
	"time"

	"github.com/ratemon/ratemon/pipeline"
)

// Defaults of the settings that have one. Zero values not listed here (such
// as redis.pool_size) are meaningful as they are.
const (
	DefaultRedisURL            = "redis://127.0.0.1:6379/0"
	DefaultRedisPrefix         = "ratemon"
	DefaultRedisDialTimeout    = 2 * time.Second
	DefaultRedisReadTimeout    = time.Second
	DefaultRedisWriteTimeout   = time.Second
	DefaultNATSURL             = "nats://127.0.0.1:4222"
	DefaultNATSStream          = "RATEMON_EVENTS"
	DefaultNATSSubjectPrefix   = "ratemon"
	DefaultNATSConsumer        = "ratemon"
	DefaultNATSRetention       = 24 * time.Hour
	DefaultNATSReplicas        = 1
	DefaultNATSAckWait         = 30 * time.Second
	DefaultNATSMaxAckPending   = 20000
	DefaultDeadLetterStream    = "RATEMON_DEADLETTER"
	DefaultDeadLetterRetention = 7 * 24 * time.Hour
	DefaultHTTPAddr            = "127.0.0.1:9464"
	DefaultLogLevel            = LogInfo
	DefaultLogFormat           = LogText
)

// DefaultHold is ingest.hold when it is not set, under a nats.ack_wait: a
// message held is not acknowledged, so the default stays within the
// quarter of ack_wait that validation allows.
func DefaultHold(ackWait time.Duration) time.Duration {
	return min(pipeline.DefaultHold, ackWait/4)
}

// DefaultHoldMessages is ingest.hold_messages when it is not set: at most
// what nats.max_ack_pending leaves beside the pull buffer (batch_size ×
// concurrency), so that a configuration valid with the earlier, smaller
// default stays valid; at least 1 (validation then reports the buffer).
func DefaultHoldMessages(maxAckPending, pullBuffer int) int {
	return max(1, min(pipeline.DefaultHoldMessages, maxAckPending-pullBuffer))
}

// SetDefaults fills every field left at its zero value with its default, in
// every section and every rule. It is the only place defaults are applied.
func (c *Config) SetDefaults() {
	c.Redis.SetDefaults()
	c.NATS.SetDefaults()
	c.HTTP.SetDefaults()
	if c.Ingest.Hold == 0 {
		c.Ingest.Hold = DefaultHold(c.NATS.AckWait)
	}
	holdMessagesUnset := c.Ingest.HoldMessages == 0
	c.Ingest.SetDefaults()
	if holdMessagesUnset {
		c.Ingest.HoldMessages = DefaultHoldMessages(c.NATS.MaxAckPending, c.Ingest.BatchSize*c.Ingest.Concurrency)
	}
	c.Workers.SetDefaults()
	c.Log.SetDefaults()
	c.Alerting.SetDefaults()
	for i := range c.Rules {
		c.Rules[i].SetDefaults()
	}
	if c.Privacy.KeyEnv == "" {
		c.Privacy.KeyEnv = "RATEMON_HASH_KEY"
	}
}

// SetDefaults fills unset fields.
func (c *RedisConfig) SetDefaults() {
	setString(&c.URL, DefaultRedisURL)
	setString(&c.Prefix, DefaultRedisPrefix)
	setDuration(&c.DialTimeout, DefaultRedisDialTimeout)
	setDuration(&c.ReadTimeout, DefaultRedisReadTimeout)
	setDuration(&c.WriteTimeout, DefaultRedisWriteTimeout)
}

// SetDefaults fills unset fields.
func (c *NATSConfig) SetDefaults() {
	setString(&c.URL, DefaultNATSURL)
	setString(&c.Stream, DefaultNATSStream)
	setString(&c.SubjectPrefix, DefaultNATSSubjectPrefix)
	setString(&c.Consumer, DefaultNATSConsumer)
	setDuration(&c.Retention, DefaultNATSRetention)
	if c.Replicas == 0 {
		c.Replicas = DefaultNATSReplicas
	}
	setDuration(&c.AckWait, DefaultNATSAckWait)
	if c.MaxAckPending == 0 {
		c.MaxAckPending = DefaultNATSMaxAckPending
	}
	setString(&c.DeadLetterStream, DefaultDeadLetterStream)
	setDuration(&c.DeadLetterRetention, DefaultDeadLetterRetention)
}

// SetDefaults fills unset fields.
func (c *HTTPConfig) SetDefaults() {
	setString(&c.Addr, DefaultHTTPAddr)
}

// SetDefaults fills unset fields.
func (c *LogConfig) SetDefaults() {
	if c.Level == "" {
		c.Level = DefaultLogLevel
	}
	if c.Format == "" {
		c.Format = DefaultLogFormat
	}
}

func setString(p *string, v string) {
	if *p == "" {
		*p = v
	}
}

func setDuration(p *time.Duration, v time.Duration) {
	if *p == 0 {
		*p = v
	}
}
