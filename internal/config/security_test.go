package config

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/internal/testenv"
)

const securityRules = "rules:\n  - name: a\n    limit: 1\n    window: 1s\n"

// copyFile copies src into dir under name, for configs with relative paths.
func copyFile(t *testing.T, src, dir, name string) {
	t.Helper()
	b, err := os.ReadFile(src)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, name), b, 0o600))
}

func TestParse_securitySettings(t *testing.T) {
	pki := testenv.NewPKI(t)
	_, seed := testenv.NKeyUser(t)
	op := testenv.NewNATSOperator(t)
	dir := t.TempDir()
	copyFile(t, pki.CAFile, dir, "ca.pem")
	copyFile(t, pki.ClientCertFile, dir, "client.pem")
	copyFile(t, pki.ClientKeyFile, dir, "client-key.pem")
	copyFile(t, seed, dir, "user.nk")
	data := `
redis:
  url: "rediss://cache.internal:6380/0"
  username: ratemon
  password: from-the-file
  tls: {ca_file: ca.pem, cert_file: client.pem, key_file: client-key.pem}
nats:
  url: "nats://n1:4222,nats://n2:4222"
  nkey_file: user.nk
  tls: {ca_file: ca.pem, cert_file: client.pem, key_file: client-key.pem, server_name: nats.internal}
` + securityRules
	cfg, err := Parse(filepath.Join(dir, "ratemon.yaml"), []byte(data))
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, "ca.pem"), cfg.Redis.TLS.CAFile, "relative to the file's directory")
	require.Equal(t, filepath.Join(dir, "user.nk"), cfg.NATS.NkeyFile)

	ro, err := cfg.Redis.Options()
	require.NoError(t, err)
	require.Equal(t, "ratemon", ro.Username)
	require.Equal(t, "from-the-file", ro.Password)
	require.NotNil(t, ro.TLSConfig)
	require.Equal(t, "cache.internal", ro.TLSConfig.ServerName)
	require.Len(t, ro.TLSConfig.Certificates, 1)
	require.NotNil(t, ro.TLSConfig.RootCAs)

	nopts, err := cfg.NATS.Options()
	require.NoError(t, err)
	require.Len(t, nopts, 2, "nkey and tls")

	// The environment replaces the password, a flag switches to the creds
	// file (relative to the working directory).
	err = cfg.ApplyOverrides(envOverrides(map[string]string{
		"RATEMON_REDIS_PASSWORD":  "from-the-environment",
		"RATEMON_NATS_NKEY_FILE":  "",
		"RATEMON_NATS_CREDS_FILE": op.CredsFile,
	}))
	require.NoError(t, err)
	require.Equal(t, "from-the-environment", cfg.Redis.Password.Reveal())
	_, err = cfg.NATS.Options()
	require.NoError(t, err)

	t.Run("tls settings turn tls on for redis://", func(t *testing.T) {
		rc := cfg.Redis
		rc.URL = "redis://10.0.0.7:6379/0"
		ro, err := rc.Options()
		require.NoError(t, err)
		require.Equal(t, "10.0.0.7", ro.TLSConfig.ServerName)
		rc.TLS = TLSConfig{}
		ro, err = rc.Options()
		require.NoError(t, err)
		require.Nil(t, ro.TLSConfig)
	})
	t.Run("cluster", func(t *testing.T) {
		rc := cfg.Redis
		rc.URL = "rediss+cluster://someone:url-pw@r1:6379,r2:6379"
		rc.TLS.ServerName = "redis.internal"
		co, err := rc.ClusterOptions()
		require.NoError(t, err)
		require.Equal(t, "ratemon", co.Username, "redis.username replaces the url's")
		require.Equal(t, "from-the-environment", co.Password)
		require.Equal(t, "redis.internal", co.TLSConfig.ServerName)
		require.Len(t, co.TLSConfig.Certificates, 1)
	})
}

func TestParse_badSecurityFiles(t *testing.T) {
	pki := testenv.NewPKI(t)
	other := testenv.NewPKI(t)
	dir := t.TempDir()
	name := filepath.Join(dir, "ratemon.yaml")
	const content = "SUSECRETSEEDTHATMUSTNOTSHOW" // looks like a seed, is none
	for file, data := range map[string]string{"garbage.pem": content + "\n", "garbage.nk": content + "\n", "garbage.creds": content + "\n"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, file), []byte(data), 0o600))
	}
	require.NoError(t, os.Mkdir(filepath.Join(dir, "adir"), 0o755))
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"missing ca file", "redis:\n  tls:\n    ca_file: missing.pem\n",
			`ratemon.yaml:3:14: redis.tls.ca_file: cannot read "` + dir + `/missing.pem": no such file or directory`},
		{"a directory", "nats:\n  tls: {ca_file: adir}\n",
			`ratemon.yaml:2:18: nats.tls.ca_file: cannot read "` + dir + `/adir": not a regular file`},
		{"not pem", "redis:\n  tls: {ca_file: garbage.pem}\n",
			`ratemon.yaml:2:18: redis.tls.ca_file: no pem certificate in "` + dir + `/garbage.pem"`},
		{"key of another certificate", "redis:\n  tls: {cert_file: " + pki.ClientCertFile + ", key_file: " + other.ClientKeyFile + "}\n",
			`redis.tls.cert_file: "` + pki.ClientCertFile + `" with key_file "` + other.ClientKeyFile + `": tls: private key does not match public key`},
		{"missing key file", "nats:\n  tls: {cert_file: " + pki.ClientCertFile + ", key_file: nokey.pem}\n",
			`ratemon.yaml:2:` + strconv.Itoa(len("  tls: {cert_file: "+pki.ClientCertFile+", key_file: ")+1) + `: nats.tls.key_file: cannot read "` + dir + `/nokey.pem": no such file or directory`},
		{"bad nkey file", "nats:\n  nkey_file: garbage.nk\n",
			`ratemon.yaml:2:14: nats.nkey_file: no nkey user seed (SU...) in "` + dir + `/garbage.nk"`},
		{"bad creds file", "nats:\n  creds_file: garbage.creds\n",
			`ratemon.yaml:2:15: nats.creds_file: no user jwt in "` + dir + `/garbage.creds"`},
		{"password without user", "nats:\n  password: pw\n", `ratemon.yaml:2:13: nats.password: needs nats.user`},
		{"nkey and creds", "nats:\n  nkey_file: garbage.nk\n  creds_file: garbage.creds\n", `nats.creds_file: conflicts with nats.nkey_file`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(name, []byte(tc.yaml+securityRules))
			require.Error(t, err)
			require.Contains(t, strings.ReplaceAll(err.Error(), dir+"/ratemon.yaml", "ratemon.yaml"), tc.want)
			require.NotContains(t, err.Error(), content)
		})
	}
	t.Run("from a flag, by path alone", func(t *testing.T) {
		cfg, err := Parse(name, []byte(securityRules))
		require.NoError(t, err)
		err = cfg.ApplyOverrides(map[string]string{"redis.tls.ca_file": "relative/missing.pem"})
		require.EqualError(t, err, `redis.tls.ca_file: cannot read "relative/missing.pem": no such file or directory`)
	})
}

func TestConfig_SecretEnv(t *testing.T) {
	var c Config
	c.SetDefaults()
	require.Empty(t, c.SecretEnv())
	c.Redis.Password, c.NATS.Token, c.HTTP.AdminToken = "r-pw", "n-tok", "adm"
	require.Equal(t, []string{"RATEMON_REDIS_PASSWORD=r-pw", "RATEMON_NATS_TOKEN=n-tok", "RATEMON_HTTP_ADMIN_TOKEN=adm"}, c.SecretEnv())
}

func TestLoadWith_fileLeavesSecretsToTheEnvironment(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ratemon.yaml")
	require.NoError(t, os.WriteFile(path, []byte("nats:\n  user: ratemon\n"+securityRules), 0o600))
	_, err := Load(path)
	require.EqualError(t, err, path+":2:9: nats.user: needs nats.password")

	cfg, err := LoadWith(path, envOverrides(map[string]string{"RATEMON_NATS_PASSWORD": "from-env"}))
	require.NoError(t, err)
	require.Equal(t, "from-env", cfg.NATS.Password.Reveal())
	require.Equal(t, "ratemon", cfg.NATS.User)

	_, err = LoadWith(path, map[string]string{"nats.password": "pw", "nats.replicas": "x", "nats.token": "t"})
	require.EqualError(t, err, `nats.replicas: cannot parse "x" as an integer
nats.token: conflicts with nats.user: use one way to authenticate (user and password, token, nkey_file or creds_file)`)
}
