package config

import (
	"fmt"
	"log/slog"
	"net/url"
	"strings"
)

// redactedPassword replaces a password in a printed URL, as url.Redacted
// does.
const redactedPassword = "xxxxx"

// String prints the section with the password of the URL replaced by
// "xxxxx" and redis.password by "<secret>", so that printing or logging a
// Config never shows them.
func (c RedisConfig) String() string {
	return fmt.Sprintf("{URL:%s Username:%s Password:%s TLS:%+v Prefix:%s PoolSize:%d DialTimeout:%s ReadTimeout:%s WriteTimeout:%s Addrs:%v}",
		RedactRedisURL(c.URL), c.Username, c.Password, c.TLS, c.Prefix, c.PoolSize, c.DialTimeout, c.ReadTimeout,
		c.WriteTimeout, c.Addrs)
}

// LogValue logs the section as String prints it.
func (c RedisConfig) LogValue() slog.Value { return slog.StringValue(c.String()) }

// String prints the section with the credentials of the URLs replaced by
// "xxxxx" and the password and token by "<secret>", so that printing or
// logging a Config never shows them.
func (c NATSConfig) String() string {
	return fmt.Sprintf("{URL:%s User:%s Password:%s Token:%s NkeyFile:%s CredsFile:%s TLS:%+v Stream:%s SubjectPrefix:%s Consumer:%s Retention:%s Replicas:%d AckWait:%s MaxAckPending:%d DeadLetterStream:%s DeadLetterRetention:%s}",
		RedactNATSURLs(c.URL), c.User, c.Password, c.Token, c.NkeyFile, c.CredsFile, c.TLS, c.Stream, c.SubjectPrefix,
		c.Consumer, c.Retention, c.Replicas, c.AckWait, c.MaxAckPending, c.DeadLetterStream, c.DeadLetterRetention)
}

// LogValue logs the section as String prints it.
func (c NATSConfig) LogValue() slog.Value { return slog.StringValue(c.String()) }

// RedactRedisURL is a redis.url fit for logs and messages: its password
// replaced by "xxxxx" (the user name stays, it tells which ACL user
// connects). A URL that does not parse is hidden whole, as it may still
// hold one. Cluster URLs with several hosts are handled too.
func RedactRedisURL(s string) string {
	u, _, err := parseClusterURL(strings.TrimSpace(s))
	if err != nil {
		return "<unparsable url>"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), redactedPassword)
	}
	return u.String()
}

// RedactNATSURLs is a comma-separated list of NATS URLs fit for logs and
// messages: the password of each is replaced by "xxxxx", and so is a user
// without a password, which NATS takes as a token. A URL that does not
// parse is hidden whole, as it may still hold one.
func RedactNATSURLs(list string) string {
	parts := strings.Split(list, ",")
	for i, s := range parts {
		u, err := url.Parse(strings.TrimSpace(s))
		if err != nil {
			parts[i] = "<unparsable url>"
			continue
		}
		parts[i] = redactNATSURL(u)
	}
	return strings.Join(parts, ",")
}

func redactNATSURL(u *url.URL) string {
	if u.User == nil {
		return u.String()
	}
	r := *u
	if _, ok := u.User.Password(); ok {
		r.User = url.UserPassword(u.User.Username(), redactedPassword)
	} else {
		r.User = url.User(redactedPassword)
	}
	return r.String()
}
