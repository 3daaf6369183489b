package config

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/ratemon/ratemon/alerting"
	"github.com/ratemon/ratemon/limiter"
	"github.com/ratemon/ratemon/pipeline"
)

// Config is the whole ratemon configuration, as read from one YAML file.
type Config struct {
	Redis   RedisConfig           `yaml:"redis"`
	NATS    NATSConfig            `yaml:"nats"`
	HTTP    HTTPConfig            `yaml:"http"`
	Ingest  pipeline.IngestConfig `yaml:"ingest"`
	Workers pipeline.WorkerConfig `yaml:"workers"`
	Log     LogConfig             `yaml:"log"`
	// Alerting is the alert lifecycle and its sinks (package alerting).
	Alerting alerting.Config `yaml:"alerting"`
	// Include lists globs of rule files, relative to the directory of the
	// file that names them. Each file holds a YAML list of rules, appended
	// after Rules in the order the globs and their sorted matches give.
	Include []string       `yaml:"include"`
	Rules   []limiter.Rule `yaml:"rules"`
	// Tiers name limit multipliers for `ratemon override KEY --tier NAME`,
	// e.g. {free: 0.5, gold: 10}.
	Tiers map[string]float64 `yaml:"tiers"`
	// Privacy hashes client ids and addresses before they become limit keys.
	Privacy PrivacyConfig `yaml:"privacy"`

	// src remembers where each field came from when the Config was loaded
	// from a file, so that later validation (after overrides) can still
	// point at lines. It is nil for a Config built in code.
	src *sources
}

// RedisConfig says how to reach the Redis that holds the window logs and the
// deny flags.
type RedisConfig struct {
	URL string `yaml:"url" usage:"redis server, as redis://[user:password@]host:port/db, rediss:// for tls, unix:///path, or redis+cluster://[user:password@]host:port[,host:port] for redis cluster"`
	// Username and Password, when set, replace those of the URL, so that
	// the password need not be written in it (or in the file at all:
	// RATEMON_REDIS_PASSWORD).
	Username string `yaml:"username" usage:"redis acl user; replaces the user of redis.url"`
	Password Secret `yaml:"password" usage:"redis password; replaces the password of redis.url (best set from the environment)"`
	// TLS is on for rediss:// URLs and whenever a TLS setting is given.
	TLS          TLSConfig     `yaml:"tls"`
	Prefix       string        `yaml:"prefix" usage:"prefix of every redis key ratemon writes"`
	PoolSize     int           `yaml:"pool_size" usage:"most open connections per daemon; 0 uses the go-redis default"`
	DialTimeout  time.Duration `yaml:"dial_timeout" usage:"longest wait to open a redis connection"`
	ReadTimeout  time.Duration `yaml:"read_timeout" usage:"longest wait for a redis reply"`
	WriteTimeout time.Duration `yaml:"write_timeout" usage:"longest wait to send a redis command"`
	// Addrs lists seed nodes (host:port) of a Redis Cluster, set only in
	// the file. When it is not empty the daemon uses a cluster client;
	// redis.url then only carries the credentials and TLS (redis:// or
	// rediss://, database 0).
	Addrs []string `yaml:"addrs"`
}

// NATSConfig says how to reach NATS JetStream and which streams and consumer
// carry the events.
type NATSConfig struct {
	URL string `yaml:"url" usage:"nats servers, comma-separated nats://, tls://, ws:// or wss:// urls"`
	// At most one way to authenticate: User and Password, Token, NkeyFile
	// or CredsFile (or credentials in the URL).
	User      string `yaml:"user" usage:"nats user, with nats.password"`
	Password  Secret `yaml:"password" usage:"nats password of nats.user (best set from the environment)"`
	Token     Secret `yaml:"token" usage:"nats authentication token (best set from the environment)"`
	NkeyFile  string `yaml:"nkey_file" usage:"file holding the nkey seed (SU...) of a nats nkey user"`
	CredsFile string `yaml:"creds_file" usage:"nats credentials file (user jwt and nkey seed) for servers in operator mode"`
	// TLS is on for tls:// and wss:// URLs and whenever a TLS setting is
	// given.
	TLS                 TLSConfig     `yaml:"tls"`
	Stream              string        `yaml:"stream" usage:"jetstream stream holding the events"`
	SubjectPrefix       string        `yaml:"subject_prefix" usage:"first tokens of every nats subject ratemon uses"`
	Consumer            string        `yaml:"consumer" usage:"durable pull consumer shared by all daemon replicas"`
	Retention           time.Duration `yaml:"retention" usage:"how long the events stream keeps events; at least the longest rule window plus deny_for"`
	Replicas            int           `yaml:"replicas" usage:"copies of each stream in a jetstream cluster, 1 to 5"`
	AckWait             time.Duration `yaml:"ack_wait" usage:"time before an unacknowledged event is redelivered"`
	MaxAckPending       int           `yaml:"max_ack_pending" usage:"most events delivered but not yet acknowledged"`
	DeadLetterStream    string        `yaml:"deadletter_stream" usage:"jetstream stream holding rejected input"`
	DeadLetterRetention time.Duration `yaml:"deadletter_retention" usage:"how long rejected input is kept"`
}

// PrivacyConfig says which fields are replaced by a keyed hash before they
// become limit keys, so that Redis, flags, logs and the API never hold an
// API key or an IP address.
type PrivacyConfig struct {
	Hash   []limiter.Field `yaml:"hash"` // client and/or ip
	KeyEnv string          `yaml:"key_env" usage:"environment variable holding the hash key (16 bytes or more) when privacy.hash is set"`
}

// HTTPConfig configures the daemon's HTTP server (metrics, health, API).
type HTTPConfig struct {
	Addr string `yaml:"addr" usage:"host:port the http server listens on"`
	// AdminToken guards the mutating endpoints (blocks, allow-list,
	// overrides); empty disables them. Best set from the environment.
	AdminToken Secret `yaml:"admin_token" usage:"bearer token for the admin API (blocks, allow-list, overrides); empty disables it"`
}

// LogConfig configures the daemon's logger.
type LogConfig struct {
	Level  LogLevel  `yaml:"level" usage:"least severe level logged: debug, info, warn or error"`
	Format LogFormat `yaml:"format" usage:"log line format: text or json"`
}

// LogLevel is the least severe level that is logged.
type LogLevel string

// Log levels.
const (
	LogDebug LogLevel = "debug"
	LogInfo  LogLevel = "info"
	LogWarn  LogLevel = "warn"
	LogError LogLevel = "error"
)

// Validate checks that l is a known level.
func (l LogLevel) Validate() error {
	switch l {
	case LogDebug, LogInfo, LogWarn, LogError:
		return nil
	}
	return fmt.Errorf("must be one of debug, info, warn, error, got %q", string(l))
}

// SlogLevel returns the slog level of l; an unknown level is slog.LevelInfo.
func (l LogLevel) SlogLevel() slog.Level {
	switch l {
	case LogDebug:
		return slog.LevelDebug
	case LogWarn:
		return slog.LevelWarn
	case LogError:
		return slog.LevelError
	}
	return slog.LevelInfo
}

// LogFormat is the format of log lines.
type LogFormat string

// Log formats.
const (
	LogText LogFormat = "text"
	LogJSON LogFormat = "json"
)

// Validate checks that f is a known format.
func (f LogFormat) Validate() error {
	switch f {
	case LogText, LogJSON:
		return nil
	}
	return fmt.Errorf("must be one of text, json, got %q", string(f))
}
