package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestConfig_printingHidesPasswords(t *testing.T) {
	var c Config
	c.SetDefaults()
	c.Redis.URL = "rediss://ratemon:hunter2@cache:6380/0"
	c.Redis.Password = "redis-field-pw"
	c.NATS.URL = "nats://a:s3cret@n1:4222, tls://n2:4222,nats://%zz:pw@x,nats://tok3n@n3:4222"
	c.NATS.Password, c.NATS.Token = "nats-field-pw", "nats-field-token"
	c.HTTP.AdminToken = "admin-field-token"

	printed := fmt.Sprintf("%v %+v %s %#v", c, c, c.Redis, c.NATS.Token)
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "redis", c.Redis, "nats", c.NATS)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("config", "config", c)
	js, err := json.Marshal(c)
	require.NoError(t, err)
	fieldSecrets := []string{"redis-field-pw", "nats-field-pw", "nats-field-token", "admin-field-token"}
	for _, out := range []string{printed, buf.String()} {
		for _, secret := range append([]string{"hunter2", "s3cret", "pw@", "tok3n"}, fieldSecrets...) {
			require.NotContains(t, out, secret)
		}
	}
	for _, secret := range fieldSecrets { // nothing encodes a Config as JSON, but a Secret field is safe there too
		require.NotContains(t, string(js), secret)
	}
	for _, out := range []string{printed, buf.String()} {
		require.Contains(t, out, "rediss://ratemon:xxxxx@cache:6380/0")
		require.Contains(t, out, "nats://a:xxxxx@n1:4222")
		require.Contains(t, out, "nats://xxxxx@n3:4222")
	}
}

func TestRedactURLs(t *testing.T) {
	for in, want := range map[string]string{
		"redis://127.0.0.1:6379/0":                       "redis://127.0.0.1:6379/0",
		"redis://:pw@127.0.0.1:6379/0":                   "redis://:xxxxx@127.0.0.1:6379/0",
		"rediss://user:pw@cache:6380":                    "rediss://user:xxxxx@cache:6380",
		"redis://user@cache":                             "redis://user@cache",
		"redis+cluster://u:pw@r1:6379,r2:6379":           "redis+cluster://u:xxxxx@r1:6379,r2:6379",
		"unix:///run/redis.sock":                         "unix:///run/redis.sock",
		"redis://%zz:pw@x":                               "<unparsable url>",
		"rediss+cluster://:p%40ss@r1:6379,r2:6379/0?x=1": "rediss+cluster://:xxxxx@r1:6379,r2:6379/0?x=1",
	} {
		require.Equal(t, want, RedactRedisURL(in), in)
	}
	require.Equal(t, "nats://xxxxx@n1:4222,tls://u:xxxxx@n2:4222,nats://n3", RedactNATSURLs("nats://tok@n1:4222,tls://u:pw@n2:4222,nats://n3"))
}
