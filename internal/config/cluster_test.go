package config

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRedisConfig_ClusterOptions(t *testing.T) {
	for _, tc := range []struct {
		name      string
		cfg       RedisConfig
		addrs     []string
		user, pwd string
		tls       bool
	}{
		{
			name:  "cluster url with several hosts and credentials",
			cfg:   RedisConfig{URL: "redis+cluster://ratemon:s3cret@10.0.0.1:7000,10.0.0.2:7000"},
			addrs: []string{"10.0.0.1:7000", "10.0.0.2:7000"},
			user:  "ratemon", pwd: "s3cret",
		},
		{
			name:  "tls cluster url, database 0",
			cfg:   RedisConfig{URL: "rediss+cluster://:pw@redis-0.redis:6379/0"},
			addrs: []string{"redis-0.redis:6379"},
			pwd:   "pw", tls: true,
		},
		{
			name:  "addrs with the credentials of a plain url",
			cfg:   RedisConfig{URL: "rediss://app:pw@/0", Addrs: []string{"a:7000", "b:7001", "[::1]:7002"}},
			addrs: []string{"a:7000", "b:7001", "[::1]:7002"},
			user:  "app", pwd: "pw", tls: true,
		},
		{
			name:  "addrs with the default url",
			cfg:   RedisConfig{URL: DefaultRedisURL, Addrs: []string{"127.0.0.1:7000"}},
			addrs: []string{"127.0.0.1:7000"},
		},
		{
			name:  "cluster url and addrs add up",
			cfg:   RedisConfig{URL: "redis+cluster://a:1", Addrs: []string{"b:2"}},
			addrs: []string{"a:1", "b:2"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.True(t, tc.cfg.Cluster())
			o, err := tc.cfg.ClusterOptions()
			require.NoError(t, err)
			require.Equal(t, tc.addrs, o.Addrs)
			require.Equal(t, tc.user, o.Username)
			require.Equal(t, tc.pwd, o.Password)
			require.Equal(t, tc.tls, o.TLSConfig != nil)
		})
	}
}

func TestRedisConfig_clusterNotSelected(t *testing.T) {
	for _, u := range []string{DefaultRedisURL, "rediss://h:6380/2", "unix:///run/redis.sock"} {
		c := RedisConfig{URL: u}
		require.False(t, c.Cluster(), u)
	}
}

func TestRedisConfig_Validate_cluster(t *testing.T) {
	base := func() RedisConfig {
		var c RedisConfig
		c.SetDefaults()
		return c
	}
	for _, tc := range []struct {
		url   string
		addrs []string
		want  string
	}{
		{"redis+cluster://", nil, `url: must name at least one host:port in "redis+cluster:"`},
		{"redis+cluster://a:1,b", nil, `url: must be host:port, got "b" in "redis+cluster://a:1,b"`},
		{"redis+cluster://a:1/3", nil, `url: redis cluster has only database 0, got "redis+cluster://a:1/3"`},
		{"redis+cluster://:pw@a:1?max_retries=3", nil, `url: query parameters are not supported with redis cluster, got "redis+cluster://:xxxxx@a:1?max_retries=3"`},
		{"unix:///run/redis.sock", []string{"a:1"}, `url: must be redis://, rediss:// or redis+cluster:// with redis.addrs, got "unix:///run/redis.sock"`},
		{DefaultRedisURL, []string{"a:1", "nowhere", "a:1", "b:0"}, "addrs[1]: must be host:port, got \"nowhere\"\n" +
			"addrs[2]: \"a:1\" is listed twice\n" +
			`addrs[3]: port must be a number between 1 and 65535, got "0"`},
	} {
		c := base()
		c.URL, c.Addrs = tc.url, tc.addrs
		require.EqualError(t, c.Validate(), tc.want, tc.url)
	}
	c := base()
	c.URL = "redis+cluster://127.0.0.1:7000,127.0.0.1:7001"
	require.NoError(t, c.Validate())
}
