package config

import (
	"crypto/tls"
	"net/url"

	"github.com/redis/go-redis/v9"

	"github.com/ratemon/ratemon/internal/fielderr"
)

// Options resolves a single-node configuration (one that is not Cluster)
// into go-redis options: the URL, with Username and Password replacing its
// credentials when set, and TLS for rediss:// URLs or when redis.tls says
// so. Timeouts and the pool size are left to the caller. The error is a
// *fielderr.Error list with paths relative to the redis section; it never
// holds the password.
func (c *RedisConfig) Options() (*redis.Options, error) {
	var l fielderr.List
	if err := validateRedisURL(c.URL); err != nil {
		l.Add("url", "%v", err)
		return nil, l.Err()
	}
	o, err := redis.ParseURL(c.URL)
	if err != nil { // validateRedisURL has run the same parser
		l.Add("url", "%s", urlReason(err))
		return nil, l.Err()
	}
	c.applyCredentials(&o.Username, &o.Password)
	u, _ := url.Parse(c.URL)
	switch {
	case u.Scheme == "unix" && c.TLS.Enabled():
		l.Add("tls", "tls is not supported over a unix:// socket")
	case u.Scheme == "rediss" || c.TLS.Enabled():
		tc, err := c.TLS.Client(u.Hostname())
		if err != nil {
			l.Merge("tls", err)
			break
		}
		keepSkipVerify(tc, o.TLSConfig)
		o.TLSConfig = tc
	}
	if err := l.Err(); err != nil {
		return nil, err
	}
	return o, nil
}

// applyCredentials replaces the user and password the URL gave with
// Username and Password, each when set.
func (c *RedisConfig) applyCredentials(user, password *string) {
	if c.Username != "" {
		*user = c.Username
	}
	if c.Password != "" {
		*password = c.Password.Reveal()
	}
}

// keepSkipVerify keeps the skip_verify=true of a rediss:// URL's query in
// the tls.Config that replaces the one go-redis built from it.
func keepSkipVerify(tc, fromURL *tls.Config) {
	if fromURL != nil && fromURL.InsecureSkipVerify {
		tc.InsecureSkipVerify = true
	}
}
