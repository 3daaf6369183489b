package config

import (
	"io/fs"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/internal/fielderr"
	"github.com/ratemon/ratemon/limiter"
	"github.com/ratemon/ratemon/pipeline"
)

const configsDir = "../../configs"

func TestLoad_configs(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(configsDir, "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg, err := Load(f)
			require.NoError(t, err)
			_, err = limiter.NewRuleset(cfg.Rules)
			require.NoError(t, err)
		})
	}
}

func TestLoad_ratemonIncludesRuleFiles(t *testing.T) {
	cfg, err := Load(filepath.Join(configsDir, "ratemon.yaml"))
	require.NoError(t, err)
	var names []string
	for _, r := range cfg.Rules {
		names = append(names, r.Name)
	}
	require.Equal(t, []string{
		"per-client-minute", "login-burst", "stocks-history-shadow", "client-hourly-alert",
		"search-per-client-route", "export-per-client", "api-per-service-shadow", // rules/api-tiers.yaml
		"login-per-ip", "login-per-user-ip", "password-reset", // rules/login.yaml
	}, names)
	r := cfg.Rules[4]
	require.Equal(t, []limiter.Field{limiter.FieldClient, limiter.FieldRoute}, r.Key)
	require.Equal(t, limiter.ActionDeny, r.Action, "defaulted")
	require.Equal(t, 30*time.Minute, cfg.Rules[7].DenyFor)
	require.True(t, cfg.Rules[8].CountRefused)
}

func TestLoad_eachRuleFileOnItsOwn(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(configsDir, "rules", "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data := []byte("include: [rules/" + filepath.Base(f) + "]\n")
			cfg, err := Parse(filepath.Join(configsDir, "main.yaml"), data)
			require.NoError(t, err)
			_, err = limiter.NewRuleset(cfg.Rules)
			require.NoError(t, err)
		})
	}
}

// TestRatemonYAML_listsEverySetting keeps the annotated example complete:
// every setting is written out, with its default.
func TestRatemonYAML_listsEverySetting(t *testing.T) {
	name := filepath.Join(configsDir, "ratemon.yaml")
	data, err := readFile(name)
	require.NoError(t, err)
	root, err := parseNode(name, data)
	require.NoError(t, err)
	for _, s := range Settings() {
		n := root
		for _, sg := range splitPath(s.Path) {
			n = child(n, sg)
			require.NotNil(t, n, "%s is missing from %s", s.Path, name)
		}
		require.Equal(t, s.Default, n.Value, "%s in %s", s.Path, name)
	}
}

func TestParse_issueExample(t *testing.T) {
	data := []byte(`redis: {url: "redis://127.0.0.1:6379/0", prefix: ratemon}
nats:  {url: "nats://127.0.0.1:4222", stream: RATEMON_EVENTS, subject_prefix: ratemon}
http:  {addr: "127.0.0.1:9464"}
rules:
  - name: per-client-minute
    match: {service: stocks}            # optional: service, route (glob), method
    key: [client]                       # event fields that form the limit key
    limit: 100
    window: 1m
    action: deny                        # deny | shadow | alert
  - name: login-burst
    match: {route: "POST /login"}
    key: [ip]
    limit: 5
    window: 10s
    deny_for: 15m                       # optional fixed block; default: until the window frees up
`)
	cfg, err := Parse("issue.yaml", data)
	require.NoError(t, err)
	require.Equal(t, []limiter.Rule{
		{Name: "per-client-minute", Match: limiter.Match{Service: "stocks"}, Key: []limiter.Field{"client"},
			Limit: 100, Window: time.Minute, Action: limiter.ActionDeny},
		{Name: "login-burst", Match: limiter.Match{Route: "POST /login"}, Key: []limiter.Field{"ip"},
			Limit: 5, Window: 10 * time.Second, Action: limiter.ActionDeny, DenyFor: 15 * time.Minute},
	}, cfg.Rules)
}

func TestLoad_defaults(t *testing.T) {
	cfg, err := Load(filepath.Join(configsDir, "minimal.yaml"))
	require.NoError(t, err)
	require.Equal(t, RedisConfig{
		URL: "redis://127.0.0.1:6379/0", Prefix: "ratemon", PoolSize: 0,
		DialTimeout: 2 * time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second,
	}, cfg.Redis)
	require.Equal(t, NATSConfig{
		URL: "nats://127.0.0.1:4222", Stream: "RATEMON_EVENTS", SubjectPrefix: "ratemon", Consumer: "ratemon",
		Retention: 24 * time.Hour, Replicas: 1, AckWait: 30 * time.Second, MaxAckPending: 20000,
		DeadLetterStream: "RATEMON_DEADLETTER", DeadLetterRetention: 168 * time.Hour,
	}, cfg.NATS)
	require.Equal(t, HTTPConfig{Addr: "127.0.0.1:9464"}, cfg.HTTP)
	require.Equal(t, LogConfig{Level: LogInfo, Format: LogText}, cfg.Log)
	require.Equal(t, 8, cfg.Workers.Shards, "section defaults applied")
	require.Equal(t, 1000, cfg.Ingest.BatchSize, "section defaults applied")
	require.Equal(t, limiter.ActionDeny, cfg.Rules[0].Action, "rule defaults applied")
}

func TestLoad_missingFile(t *testing.T) {
	name := filepath.Join(t.TempDir(), "nope.yaml")
	_, err := Load(name)
	require.ErrorIs(t, err, fs.ErrNotExist)
	var le *LoadError
	require.ErrorAs(t, err, &le)
	require.Equal(t, []Problem{{File: name, Msg: "cannot read: no such file or directory"}}, le.Problems)
	require.Equal(t, name+": cannot read: no such file or directory", err.Error())
}

func TestLoad_directory(t *testing.T) {
	dir := t.TempDir()
	_, err := Load(dir)
	require.EqualError(t, err, dir+": cannot read: not a regular file")
}

func TestParse_problemsAreListed(t *testing.T) {
	data := []byte("nats:\n  replicas: 9\nrules:\n  - name: a\n    limit: -1\n    window: 1s\n")
	_, err := Parse("x.yaml", data)
	var le *LoadError
	require.ErrorAs(t, err, &le)
	require.Equal(t, []Problem{
		{File: "x.yaml", Line: 2, Column: 13, Path: "nats.replicas", Msg: "must be between 1 and 5, got 9"},
		{File: "x.yaml", Line: 5, Column: 12, Path: "rules[0].limit", Msg: "must be between 1 and 1099511627776, got -1"},
	}, le.Problems)
}

func TestParse_positionFallsBackToParent(t *testing.T) {
	data := []byte("# comment\n\nrules:\n  - limit: 1\n    window: 1s\n")
	_, err := Parse("x.yaml", data)
	require.EqualError(t, err, `x.yaml:4:5: rules[0].name: must not be empty`)

	_, err = Parse("empty.yaml", nil)
	require.EqualError(t, err, `empty.yaml:1: rules: at least one rule is required`)
}

func TestParse_aliasesAndMerges(t *testing.T) {
	data := []byte(`rules:
  - &base {name: a, limit: 5, window: 1s}
  - <<: *base
    name: b
`)
	cfg, err := Parse("x.yaml", data)
	require.NoError(t, err)
	require.Equal(t, "b", cfg.Rules[1].Name)
	require.Equal(t, int64(5), cfg.Rules[1].Limit)

	data = []byte("d: &d 5\nnats: {ack_wait: *d}\nrules: [{name: a, limit: 1, window: 1s}]\n")
	_, err = Parse("x.yaml", data)
	require.EqualError(t, err, "x.yaml:1:1: d: unknown field, want one of alerting, http, include, ingest, log, nats, privacy, redis, rules, tiers, workers\n"+
		`x.yaml:1:4: nats.ack_wait: cannot parse "5" as a duration (write it like "10s")`)
}

func TestParse_syntaxErrors(t *testing.T) {
	for _, tc := range []struct{ data, want string }{
		{"a:\n\tb: 1\n", "x.yaml:2: invalid yaml: found character that cannot start any token"},
		{"rules: [1, 2\nhttp: {}\n", "x.yaml:1: invalid yaml: did not find expected ',' or ']'"},
		{"rules: *nope\n", "x.yaml:1: invalid yaml: unknown anchor 'nope' referenced"},
	} {
		_, err := Parse("x.yaml", []byte(tc.data))
		require.EqualError(t, err, tc.want)
	}
}

func TestConfig_Validate_withoutFile(t *testing.T) {
	cfg := Config{Rules: []limiter.Rule{{Name: "a", Limit: 1, Window: time.Hour, DenyFor: 24 * time.Hour}}}
	cfg.SetDefaults()
	cfg.HTTP.Addr = "localhost"
	err := cfg.Validate()
	var paths []string
	for _, fe := range fielderr.Flatten(err) {
		paths = append(paths, fe.Path)
	}
	require.Equal(t, []string{"http.addr", "nats.retention"}, paths)
	require.ErrorContains(t, err, `nats.retention: must be at least 25h, the retention of rules[0] "a" (window 1h + deny_for 24h), got 24h`)
	var le *LoadError
	require.NotErrorAs(t, err, &le, "Validate reports paths only")
}

func TestLogLevel_SlogLevel(t *testing.T) {
	require.Equal(t, slog.LevelDebug, LogDebug.SlogLevel())
	require.Equal(t, slog.LevelInfo, LogInfo.SlogLevel())
	require.Equal(t, slog.LevelWarn, LogWarn.SlogLevel())
	require.Equal(t, slog.LevelError, LogError.SlogLevel())
	require.NoError(t, LogJSON.Validate())
	require.EqualError(t, LogFormat("xml").Validate(), `must be one of text, json, got "xml"`)
}

func TestParse_undecodableListElement(t *testing.T) {
	// The decoder drops the element, so the rules after it would be
	// validated under the wrong index: only the decoding problem is shown.
	data := []byte("rules:\n  - 5\n  - {name: a, limit: -1, window: 1s}\n")
	_, err := Parse("x.yaml", data)
	require.EqualError(t, err, `x.yaml:2:5: rules[0]: must be a mapping, got "5"`)
}

// ingest.hold_messages left unset takes what nats.max_ack_pending leaves
// beside the pull buffer when that is less than its default, so that a
// configuration valid with an earlier, smaller default stays valid; set,
// it is checked as written.
func TestParse_holdMessagesDefaultFitsMaxAckPending(t *testing.T) {
	rules := "\nrules: [{name: r, key: [client], limit: 10, window: 1m}]\n"
	cfg, err := Parse("small.yaml", []byte("nats: {max_ack_pending: 10000}"+rules))
	require.NoError(t, err)
	require.Equal(t, 10000-1000*2, cfg.Ingest.HoldMessages, "max_ack_pending less batch_size × concurrency")

	cfg, err = Parse("default.yaml", []byte(rules))
	require.NoError(t, err)
	require.Equal(t, pipeline.DefaultHoldMessages, cfg.Ingest.HoldMessages)

	_, err = Parse("set.yaml", []byte("nats: {max_ack_pending: 10000}\ningest: {hold_messages: 12000}"+rules))
	require.ErrorContains(t, err, "ingest.hold_messages")
	require.ErrorContains(t, err, "12000 held plus the pull buffer of 2000 (batch_size × concurrency) exceed nats.max_ack_pending 10000")
}
