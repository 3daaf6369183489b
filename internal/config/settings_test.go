package config

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// leafPaths walks t independently of Settings and returns the path of every
// field, failing on a field no flag can set and that is not file-only.
func leafPaths(t *testing.T, typ reflect.Type, prefix string) []string {
	var out []string
	for i := range typ.NumField() {
		f := typ.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		require.NotEmpty(t, name, "%s.%s has no yaml tag", typ, f.Name)
		path := name
		if prefix != "" {
			path = prefix + "." + name
		}
		switch f.Type.Kind() {
		case reflect.Struct:
			out = append(out, leafPaths(t, f.Type, path)...)
		case reflect.String, reflect.Bool, reflect.Int, reflect.Int64, reflect.Float64:
			out = append(out, path)
		default:
			require.Contains(t, []string{"redis.addrs", "alerting.sinks", "include", "rules", "tiers", "privacy.hash"}, path, // set only by the file
				"%s (%s) has no flag; support its type in Settings or list it as file-only", path, f.Type)
		}
	}
	return out
}

func TestSettings_coverEveryScalarField(t *testing.T) {
	var paths []string
	for _, s := range Settings() {
		paths = append(paths, s.Path)
	}
	require.ElementsMatch(t, leafPaths(t, reflect.TypeFor[Config](), ""), paths)
}

func TestSettings_names(t *testing.T) {
	flags, envs := map[string]bool{}, map[string]bool{}
	for _, s := range Settings() {
		dashed := strings.NewReplacer(".", "-", "_", "-").Replace(s.Path)
		require.Equal(t, dashed, s.Flag, s.Path)
		require.Equal(t, "RATEMON_"+strings.ToUpper(strings.ReplaceAll(dashed, "-", "_")), s.Env, s.Path)
		require.False(t, flags[s.Flag], "flag %s used twice", s.Flag)
		require.False(t, envs[s.Env], "env %s used twice", s.Env)
		flags[s.Flag], envs[s.Env] = true, true

		require.NotEmpty(t, s.Usage, "%s has no usage tag", s.Path)
		require.NotContains(t, s.Usage, "\n", s.Path)
		require.False(t, strings.HasSuffix(s.Usage, "."), "%s: usage ends with a period", s.Path)
		require.Equal(t, strings.ToLower(s.Usage[:1]), s.Usage[:1], "%s: usage starts upper-case", s.Path)
	}
	require.Contains(t, envs, "RATEMON_NATS_DEADLETTER_RETENTION")
	require.Contains(t, flags, "redis-pool-size")
}

// TestSettings_defaultsParse checks that each Default reads back, with Set,
// as the default SetDefaults gives.
func TestSettings_defaultsParse(t *testing.T) {
	var want, got Config
	want.SetDefaults()
	for _, s := range Settings() {
		require.NoError(t, got.Set(s.Path, s.Default))
	}
	require.Equal(t, want, got)
}

func TestConfig_Set(t *testing.T) {
	var c Config
	require.NoError(t, c.Set("nats.ack_wait", "45s"))
	require.NoError(t, c.Set("nats.replicas", "3"))
	require.NoError(t, c.Set("redis.url", "rediss://cache:6380/2"))
	require.NoError(t, c.Set("log.level", "debug"))
	require.NoError(t, c.Set("ingest.max_payload_bytes", "2048"))
	require.Equal(t, 45*time.Second, c.NATS.AckWait)
	require.Equal(t, 3, c.NATS.Replicas)
	require.Equal(t, "rediss://cache:6380/2", c.Redis.URL)
	require.Equal(t, LogDebug, c.Log.Level)
	require.Equal(t, 2048, c.Ingest.MaxPayloadBytes)

	for _, tc := range []struct{ path, value, want string }{
		{"nats.ack_wait", "45", `nats.ack_wait: cannot parse "45" as a duration (write it like "10s")`},
		{"nats.replicas", "three", `nats.replicas: cannot parse "three" as an integer`},
		{"nats.replicas", "99999999999999999999", `nats.replicas: cannot parse "99999999999999999999" as an integer`},
		{"nats.stremm", "x", `nats.stremm: unknown setting (did you mean "nats.stream"?)`},
		{"rules", "x", `rules: can only be set in the config file`},
		{"include", "x", `include: can only be set in the config file`},
		{"nats", "x", `nats: is a section, not a setting; name one of its fields`},
		{"nats.url.host", "x", `nats.url.host: unknown setting`},
		{"nats.ack_wait.x", "x", `nats.ack_wait.x: unknown setting (did you mean "nats.ack_wait"?)`},
		{"", "x", `unknown setting`},
	} {
		require.EqualError(t, c.Set(tc.path, tc.value), tc.want)
	}
}

// envOverrides is what the command does with the environment: every
// RATEMON_* variable that names a setting becomes an override of its path.
func envOverrides(env map[string]string) map[string]string {
	set := map[string]string{}
	for _, s := range Settings() {
		if v, ok := env[s.Env]; ok {
			set[s.Path] = v
		}
	}
	return set
}

func TestConfig_ApplyOverrides(t *testing.T) {
	t.Run("env wins over the file", func(t *testing.T) {
		cfg, err := Load(filepath.Join(configsDir, "ratemon.yaml"))
		require.NoError(t, err)
		err = cfg.ApplyOverrides(envOverrides(map[string]string{
			"RATEMON_REDIS_URL":      "unix:///run/redis.sock",
			"RATEMON_NATS_ACK_WAIT":  "1m",
			"RATEMON_LOG_FORMAT":     "json",
			"RATEMON_WORKERS_SHARDS": "16",
			"RATEMON_UNRELATED":      "x",
		}))
		require.NoError(t, err)
		require.Equal(t, "unix:///run/redis.sock", cfg.Redis.URL)
		require.Equal(t, time.Minute, cfg.NATS.AckWait)
		require.Equal(t, LogJSON, cfg.Log.Format)
		require.Equal(t, 16, cfg.Workers.Shards)
		require.Equal(t, "ratemon", cfg.Redis.Prefix, "untouched")
	})
	t.Run("bad values are all reported and change nothing", func(t *testing.T) {
		cfg, err := Load(filepath.Join(configsDir, "minimal.yaml"))
		require.NoError(t, err)
		before := *cfg
		err = cfg.ApplyOverrides(map[string]string{
			"nats.ack_wait":  "soon",
			"nats.replicas":  "7",
			"nats.retention": "30s",
			"http.addr":      "nowhere",
		})
		var le *LoadError
		require.ErrorAs(t, err, &le)
		require.Equal(t, `nats.ack_wait: cannot parse "soon" as a duration (write it like "10s")
nats.replicas: must be between 1 and 5, got 7
http.addr: must be host:port, got "nowhere"
nats.retention: must be at least 1m, the retention of rules[0] "per-client-minute" (window 1m), got 30s`, err.Error())
		require.Equal(t, before, *cfg)
	})
	t.Run("problems left in the file keep their line", func(t *testing.T) {
		data := []byte("nats:\n  retention: 1h\nrules:\n  - name: a\n    limit: 1\n    window: 2h\n")
		_, err := Parse("x.yaml", data)
		require.EqualError(t, err, `x.yaml:2:14: nats.retention: must be at least 2h, the retention of rules[0] "a" (window 2h), got 1h`)

		data = []byte("nats:\n  retention: 3h\nrules:\n  - name: a\n    limit: 1\n    window: 2h\n")
		cfg, err := Parse("x.yaml", data)
		require.NoError(t, err)
		err = cfg.ApplyOverrides(map[string]string{"log.level": "loud", "redis.prefix": "a b"})
		require.EqualError(t, err, "redis.prefix: must not contain \" \"\nlog.level: must be one of debug, info, warn, error, got \"loud\"")
		err = cfg.ApplyOverrides(map[string]string{"nats.deadletter_stream": "RATEMON_EVENTS"})
		require.EqualError(t, err, `nats.deadletter_stream: must differ from nats.stream, both are "RATEMON_EVENTS"`)
		err = cfg.ApplyOverrides(map[string]string{"nats.stream": "RATEMON_DEADLETTER"})
		require.EqualError(t, err, `x.yaml:2:3: nats.deadletter_stream: must differ from nats.stream, both are "RATEMON_DEADLETTER"`)
	})
	t.Run("config built in code", func(t *testing.T) {
		var cfg Config
		cfg.SetDefaults()
		err := cfg.ApplyOverrides(map[string]string{"log.level": "warn"})
		require.EqualError(t, err, "rules: at least one rule is required")
	})
}

func TestSettings_orderFollowsStruct(t *testing.T) {
	var sections []string
	for _, s := range Settings() {
		sec, _, _ := strings.Cut(s.Path, ".")
		if len(sections) == 0 || sections[len(sections)-1] != sec {
			sections = append(sections, sec)
		}
	}
	require.Equal(t, []string{"redis", "nats", "http", "ingest", "workers", "log", "alerting", "privacy"}, sections)
}
