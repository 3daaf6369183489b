package daemon

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"

	"github.com/ratemon/ratemon/internal/config"
)

// NewRedis builds the Redis client the configuration describes: a
// *redis.ClusterClient when it names a Redis Cluster (redis.addrs or a
// redis+cluster:// URL), else a *redis.Client, with the credentials and
// TLS of the configuration (config.RedisConfig.Options). It does not
// connect; the first command does.
func NewRedis(c config.RedisConfig) (redis.UniversalClient, error) {
	if c.Cluster() {
		return newRedisCluster(c)
	}
	o, err := c.Options()
	if err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	}
	if c.PoolSize > 0 {
		o.PoolSize = c.PoolSize
	}
	o.DialTimeout = c.DialTimeout
	o.ReadTimeout = c.ReadTimeout
	o.WriteTimeout = c.WriteTimeout
	o.ContextTimeoutEnabled = true
	o.ClientName = "ratemon"
	return redis.NewClient(o), nil
}

// ConnectNATS connects to NATS with the credentials and TLS of the
// configuration (config.NATSConfig.Options). With retry it returns at once
// even when the servers are down, and keeps trying in the background; the
// caller reports not-ready meanwhile. Errors and logs show the URLs
// without their credentials.
func ConnectNATS(c config.NATSConfig, name string, retry bool, log *slog.Logger) (*nats.Conn, error) {
	auth, err := c.Options()
	if err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	var seen repeatFilter
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.ReconnectJitter(200*time.Millisecond, time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			seen.reset()
			log.Info("nats reconnected", "server", config.RedactNATSURLs(nc.ConnectedUrl()))
		}),
		// Asynchronous errors, such as an authorization violation at each
		// reconnection attempt, logged once until the next reconnection;
		// the health probe reports the last one (LastError).
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if seen.first(err) {
				log.Warn("nats error", "err", err)
			}
		}),
	}
	opts = append(opts, auth...)
	if retry {
		// Keep trying through refused credentials too (nats.go gives up
		// after the same one twice), so that a daemon whose credentials
		// are fixed on the server side resumes without a restart.
		opts = append(opts, nats.RetryOnFailedConnect(true), nats.IgnoreAuthErrorAbort())
	}
	nc, err := nats.Connect(c.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect nats %s: %w", config.RedactNATSURLs(c.URL), err)
	}
	return nc, nil
}

// newRedisCluster builds a cluster client with the timeouts and pool size
// of a single-node client. MOVED and ASK redirections are followed by
// go-redis; CLUSTERDOWN and TRYAGAIN are retried by it a few times, then
// surface as errors that the pipeline answers with a NAK and a backoff. A
// failed connection or CLUSTERDOWN makes it re-read the slot map at once
// (watchCluster), so that a promoted replica is used as soon as it serves.
func newRedisCluster(c config.RedisConfig) (*redis.ClusterClient, error) {
	o, err := c.ClusterOptions()
	if err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	}
	if c.PoolSize > 0 {
		o.PoolSize = c.PoolSize
	}
	o.DialTimeout = c.DialTimeout
	o.ReadTimeout = c.ReadTimeout
	o.WriteTimeout = c.WriteTimeout
	o.ContextTimeoutEnabled = true
	o.ClientName = "ratemon"
	cc := redis.NewClusterClient(o)
	watchCluster(cc)
	return cc, nil
}

// repeatFilter tells whether an error differs from the one before it, so
// that an error repeated at every reconnection attempt is logged once. mu
// guards last.
type repeatFilter struct {
	mu   sync.Mutex
	last string
}

// first reports whether err differs from the error passed before.
func (f *repeatFilter) first(err error) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err.Error() == f.last {
		return false
	}
	f.last = err.Error()
	return true
}

func (f *repeatFilter) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.last = ""
}
