package bench_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/internal/bench"
	"github.com/ratemon/ratemon/internal/config"
	"github.com/ratemon/ratemon/internal/testenv"
	"github.com/ratemon/ratemon/limiter"
)

// TestBench_credentialsAndTLS runs the bench and its daemons against a
// Redis that asks for an ACL user and a client certificate and a NATS
// server that asks for a token and a client certificate.
func TestBench_credentialsAndTLS(t *testing.T) {
	pki := testenv.NewPKI(t)
	rs := testenv.StartSecureRedis(t, testenv.SecureRedisOptions{TLS: pki, User: "bench", UserPassword: "bench-redis-pw"})
	n := testenv.StartNATSWith(t, func(o *server.Options) {
		testenv.NATSTLS(t, pki)(o)
		o.Authorization = "bench-nats-token"
	})
	tlsc := config.TLSConfig{CAFile: pki.CAFile, CertFile: pki.ClientCertFile, KeyFile: pki.ClientKeyFile}
	cfg := baseConfig("rediss://"+rs.Addr+"/0", n.URL())
	cfg.Redis.Username, cfg.Redis.Password, cfg.Redis.TLS = "bench", "bench-redis-pw", tlsc
	cfg.NATS.Token, cfg.NATS.TLS = "bench-nats-token", tlsc
	b, err := bench.New(bench.Options{
		Config: cfg, Keys: 100, Events: 3000, PerMsg: 50, Backlog: true,
		Limit: 20, Window: 30 * time.Second, InProcess: true, RunDaemon: runDaemon,
		Runs: 1, SkipReferences: true,
	})
	require.NoError(t, err)
	rep, err := b.Run(t.Context())
	require.NoError(t, err)
	requireCorrect(t, rep)
}

// TestWriteConfig_secretsGoThroughTheEnvironment checks what a subprocess
// replica gets: a file without the secrets (a Secret marshals as
// "<secret>"), and the secrets in the variables cfg.SecretEnv names.
func TestWriteConfig_secretsGoThroughTheEnvironment(t *testing.T) {
	cfg := baseConfig("redis://127.0.0.1:6379/0", "nats://127.0.0.1:4222")
	cfg.Redis.Password, cfg.NATS.User, cfg.NATS.Password = "redis-pw-1", "ratemon", "nats-pw-2"
	cfg.Rules = []limiter.Rule{{Name: "r", Key: []limiter.Field{limiter.FieldClient}, Limit: 1, Window: time.Second}}
	path := filepath.Join(t.TempDir(), "replica.yaml")
	require.NoError(t, bench.WriteConfig(path, cfg))
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	for _, s := range []string{"<secret>", "redis-pw-1", "nats-pw-2"} {
		require.NotContains(t, string(data), s)
	}

	_, err = config.Load(path)
	require.ErrorContains(t, err, "nats.user: needs nats.password", "the file alone lacks the secrets")
	env := map[string]string{}
	for _, kv := range cfg.SecretEnv() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	require.Equal(t, map[string]string{"RATEMON_REDIS_PASSWORD": "redis-pw-1", "RATEMON_NATS_PASSWORD": "nats-pw-2"}, env)
	set := map[string]string{}
	for _, s := range config.Settings() {
		if v, ok := env[s.Env]; ok {
			set[s.Path] = v
		}
	}
	got, err := config.LoadWith(path, set) // what `ratemon serve` does with its environment
	require.NoError(t, err)
	require.Equal(t, "redis-pw-1", got.Redis.Password.Reveal())
	require.Equal(t, "nats-pw-2", got.NATS.Password.Reveal())
}
