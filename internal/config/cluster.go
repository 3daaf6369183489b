package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/ratemon/ratemon/internal/fielderr"
)

// Schemes of a redis.url that selects Redis Cluster.
const (
	SchemeCluster    = "redis+cluster"  // redis+cluster://[user:password@]host:port[,host:port...]
	SchemeClusterTLS = "rediss+cluster" // the same over TLS
)

// Cluster reports whether the configuration names a Redis Cluster: a
// redis+cluster:// (or rediss+cluster://) URL, or a non-empty addrs list.
func (c *RedisConfig) Cluster() bool {
	if len(c.Addrs) > 0 {
		return true
	}
	scheme, _, _ := strings.Cut(c.URL, "://")
	return scheme == SchemeCluster || scheme == SchemeClusterTLS
}

// ClusterOptions resolves a cluster configuration into go-redis options:
// the seed addresses (the URL's hosts, then addrs), the username and
// password of the URL (replaced by redis.username and redis.password when
// set), and TLS for rediss:// and rediss+cluster:// or when redis.tls says
// so. With
// addrs, the URL may be a plain redis:// or rediss:// URL that only carries
// the credentials; its host is not used. Timeouts and the pool size are
// left to the caller. The error is a *fielderr.Error list with paths
// relative to the redis section.
func (c *RedisConfig) ClusterOptions() (*redis.ClusterOptions, error) {
	var l fielderr.List
	o := &redis.ClusterOptions{}
	u, hostList, err := parseClusterURL(c.URL)
	if err != nil {
		l.Add("url", "must be a redis://, rediss://, unix:// or redis+cluster:// url: %v", urlReason(err))
		return nil, l.Err()
	}
	switch u.Scheme {
	case SchemeCluster, SchemeClusterTLS:
		hosts, err := splitHosts(hostList)
		if err != nil {
			l.Add("url", "%v in %q", err, u.Redacted())
		}
		o.Addrs = append(o.Addrs, hosts...)
	case "redis", "rediss":
		if len(c.Addrs) == 0 {
			l.Add("url", "names a single redis, not a cluster: use redis+cluster:// or redis.addrs")
		}
	default:
		l.Add("url", "must be redis://, rediss:// or redis+cluster:// with redis.addrs, got %q", u.Redacted())
		u = &url.URL{} // nothing more to read from it
	}
	if u.Scheme == "rediss" || u.Scheme == SchemeClusterTLS || c.TLS.Enabled() {
		host := ""
		if len(o.Addrs) > 0 {
			host, _, _ = net.SplitHostPort(o.Addrs[0])
		} else if len(c.Addrs) > 0 {
			host, _, _ = net.SplitHostPort(c.Addrs[0])
		}
		// One tls.Config serves every node: their certificates must hold
		// the first seed's name, or tls.server_name.
		if tc, err := c.TLS.Client(host); err != nil {
			l.Merge("tls", err)
		} else {
			o.TLSConfig = tc
		}
	}
	if db := strings.Trim(u.Path, "/"); db != "" && db != "0" {
		l.Add("url", "redis cluster has only database 0, got %q", u.Redacted())
	}
	if u.RawQuery != "" {
		l.Add("url", "query parameters are not supported with redis cluster, got %q", u.Redacted())
	}
	if u.User != nil {
		o.Username = u.User.Username()
		o.Password, _ = u.User.Password()
	}
	c.applyCredentials(&o.Username, &o.Password)
	seen := map[string]bool{}
	for _, a := range o.Addrs {
		seen[a] = true
	}
	for i, a := range c.Addrs {
		path := fmt.Sprintf("addrs[%d]", i)
		if err := checkHostPort(a); err != nil {
			l.Add(path, "%v", err)
			continue
		}
		if seen[a] {
			l.Add(path, "%q is listed twice", a)
			continue
		}
		seen[a] = true
		o.Addrs = append(o.Addrs, a)
	}
	if err := l.Err(); err != nil {
		return nil, err
	}
	return o, nil
}

// parseClusterURL parses a URL whose host part may be a comma-separated
// list of host:port (which url.Parse refuses), returning that list apart;
// the URL returned has the list as its Host, for messages.
func parseClusterURL(s string) (*url.URL, string, error) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		u, err := url.Parse(s)
		return u, "", err
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority := rest[:end]
	at := strings.LastIndexByte(authority, '@')
	hosts := authority[at+1:]
	u, err := url.Parse(scheme + "://" + authority[:at+1] + "cluster" + rest[end:])
	if err != nil {
		return nil, "", err
	}
	u.Host = hosts
	return u, hosts, nil
}

// splitHosts reads the comma-separated host:port list of a cluster URL.
func splitHosts(list string) ([]string, error) {
	if list == "" {
		return nil, errors.New("must name at least one host:port")
	}
	var out []string
	for h := range strings.SplitSeq(list, ",") {
		if err := checkHostPort(h); err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, nil
}

// checkHostPort checks one seed address, host:port with a non-zero port.
func checkHostPort(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil || host == "" {
		return fmt.Errorf("must be host:port, got %q", a)
	}
	if err := validatePort(port); err != nil || port == "0" {
		return fmt.Errorf("port must be a number between 1 and 65535, got %q", port)
	}
	return nil
}
