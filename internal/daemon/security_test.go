package daemon_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/internal/config"
	"github.com/ratemon/ratemon/internal/daemon"
	"github.com/ratemon/ratemon/internal/testenv"
	"github.com/ratemon/ratemon/limiter"
)

// newRedis builds the client the daemon would for rc (defaults filled in),
// closed when the test ends.
func newRedis(t *testing.T, rc config.RedisConfig) redis.UniversalClient {
	t.Helper()
	rc.SetDefaults()
	require.NoError(t, rc.Validate())
	c, err := daemon.NewRedis(rc)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// redisRoundTrip writes a key and reads it back.
func redisRoundTrip(t *testing.T, c redis.UniversalClient) error {
	t.Helper()
	key := "rmtest-security-" + testenv.Name(t)
	if err := c.Set(t.Context(), key, "v", time.Minute).Err(); err != nil {
		return err
	}
	got, err := c.Get(t.Context(), key).Result()
	if err != nil {
		return err
	}
	require.Equal(t, "v", got)
	return c.Del(t.Context(), key).Err()
}

// requireRefused checks that err is a clear refusal that does not show the
// secret that was tried.
func requireRefused(t *testing.T, err error, want, secret string) {
	t.Helper()
	require.Error(t, err)
	require.Contains(t, strings.ToLower(err.Error()), strings.ToLower(want))
	require.NotContains(t, err.Error(), secret)
}

func TestNewRedis_passwordAndACLUser(t *testing.T) {
	const (
		secret = "redis-default-pw-7f3a"
		aclPW  = "redis-acl-pw-91c2"
		wrong  = "not-the-password-5d1e"
	)
	srv := testenv.StartSecureRedis(t, testenv.SecureRedisOptions{Password: secret, User: "ratemon", UserPassword: aclPW})
	addr := srv.Addr
	for _, tc := range []struct {
		name string
		rc   config.RedisConfig
	}{
		{"password in the url", config.RedisConfig{URL: "redis://:" + secret + "@" + addr + "/0"}},
		{"redis.password", config.RedisConfig{URL: "redis://" + addr + "/0", Password: secret}},
		{"redis.password replaces the url's", config.RedisConfig{URL: "redis://:" + wrong + "@" + addr, Password: secret}},
		{"acl user", config.RedisConfig{URL: "redis://" + addr, Username: "ratemon", Password: aclPW}},
		{"acl user in the url", config.RedisConfig{URL: "redis://ratemon:" + aclPW + "@" + addr}},
		{"redis.username replaces the url's", config.RedisConfig{URL: "redis://someone@" + addr, Username: "ratemon", Password: aclPW}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, redisRoundTrip(t, newRedis(t, tc.rc)))
		})
	}
	t.Run("wrong password", func(t *testing.T) {
		err := newRedis(t, config.RedisConfig{URL: "redis://" + addr, Password: wrong}).Ping(t.Context()).Err()
		requireRefused(t, err, "WRONGPASS", wrong)
		err = newRedis(t, config.RedisConfig{URL: "redis://:" + wrong + "@" + addr}).Ping(t.Context()).Err()
		requireRefused(t, err, "WRONGPASS", wrong)
	})
	t.Run("wrong acl user", func(t *testing.T) {
		err := newRedis(t, config.RedisConfig{URL: "redis://" + addr, Username: "nobody", Password: aclPW}).Ping(t.Context()).Err()
		requireRefused(t, err, "WRONGPASS", aclPW)
	})
	t.Run("no password", func(t *testing.T) {
		err := newRedis(t, config.RedisConfig{URL: "redis://" + addr}).Ping(t.Context()).Err()
		requireRefused(t, err, "NOAUTH", secret)
	})
}

func TestNewRedis_tls(t *testing.T) {
	const aclPW = "redis-tls-pw-2b77"
	pki := testenv.NewPKI(t)
	srv := testenv.StartSecureRedis(t, testenv.SecureRedisOptions{TLS: pki, User: "ratemon", UserPassword: aclPW})
	addr := srv.Addr
	good := config.TLSConfig{CAFile: pki.CAFile, CertFile: pki.ClientCertFile, KeyFile: pki.ClientKeyFile}
	with := func(edit func(*config.TLSConfig)) config.TLSConfig {
		c := good
		edit(&c)
		return c
	}
	other := testenv.NewPKI(t) // a CA the server does not know
	for _, tc := range []struct {
		name string
		url  string
		tls  config.TLSConfig
	}{
		{"tls settings turn tls on", "redis://" + addr, good},
		{"rediss url", "rediss://" + addr + "/0", good},
		{"server name", "redis://" + addr, with(func(c *config.TLSConfig) { c.ServerName = "localhost" })},
		{"insecure skip verify", "redis://" + addr, with(func(c *config.TLSConfig) { c.CAFile, c.InsecureSkipVerify = other.CAFile, true })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newRedis(t, config.RedisConfig{URL: tc.url, Username: "ratemon", Password: aclPW, TLS: tc.tls})
			require.NoError(t, redisRoundTrip(t, c))
		})
	}
	for _, tc := range []struct {
		name string
		url  string
		tls  config.TLSConfig
		want string
	}{
		{"unknown ca", "redis://" + addr, with(func(c *config.TLSConfig) { c.CAFile = other.CAFile }), "certificate signed by unknown authority"},
		{"wrong server name", "redis://" + addr, with(func(c *config.TLSConfig) { c.ServerName = "cache.example" }), "not cache.example"},
		{"no client certificate", "redis://" + addr, with(func(c *config.TLSConfig) { c.CertFile, c.KeyFile = "", "" }), ""},
		{"client certificate of another ca", "redis://" + addr, with(func(c *config.TLSConfig) {
			c.CertFile, c.KeyFile = other.ClientCertFile, other.ClientKeyFile
		}), ""},
		{"plain text", "redis://" + addr, config.TLSConfig{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newRedis(t, config.RedisConfig{URL: tc.url, Username: "ratemon", Password: aclPW, TLS: tc.tls, DialTimeout: time.Second})
			requireRefused(t, c.Ping(t.Context()).Err(), tc.want, aclPW)
		})
	}
}

// TestNewRedis_clusterCredentialsAndTLS runs the cluster client on a
// one-node cluster that asks for an ACL user and a client certificate.
func TestNewRedis_clusterCredentialsAndTLS(t *testing.T) {
	const aclPW = "redis-cluster-pw-6d0e"
	pki := testenv.NewPKI(t)
	srv := testenv.StartSecureRedis(t, testenv.SecureRedisOptions{TLS: pki, User: "ratemon", UserPassword: aclPW, Cluster: true})
	tlsc := config.TLSConfig{CAFile: pki.CAFile, CertFile: pki.ClientCertFile, KeyFile: pki.ClientKeyFile}

	c := newRedis(t, config.RedisConfig{URL: "redis+cluster://" + srv.Addr, Username: "ratemon", Password: aclPW, TLS: tlsc})
	require.IsType(t, &redis.ClusterClient{}, c)
	require.NoError(t, redisRoundTrip(t, c))

	c = newRedis(t, config.RedisConfig{URL: "rediss://ratemon:" + aclPW + "@x", Addrs: []string{srv.Addr}, TLS: tlsc})
	require.NoError(t, redisRoundTrip(t, c), "addrs, with the credentials in the url")

	const wrong = "wrong-cluster-pw-0a0a"
	c = newRedis(t, config.RedisConfig{URL: "redis+cluster://" + srv.Addr, Username: "ratemon", Password: wrong, TLS: tlsc})
	requireRefused(t, c.Ping(t.Context()).Err(), "WRONGPASS", wrong)
}

// connectNATS connects as the daemon's commands do (no retry), closed when
// the test ends.
func connectNATS(t *testing.T, nc config.NATSConfig) (*nats.Conn, error) {
	t.Helper()
	nc.SetDefaults()
	conn, err := daemon.ConnectNATS(nc, "security test", false, slog.New(slog.DiscardHandler))
	if err == nil {
		t.Cleanup(conn.Close)
	}
	return conn, err
}

func hostPortOf(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err)
	return u.Host
}

// natsRoundTrip publishes a message and receives it.
func natsRoundTrip(t *testing.T, nc *nats.Conn) {
	t.Helper()
	sub, err := nc.SubscribeSync("rmtest.security")
	require.NoError(t, err)
	require.NoError(t, nc.Publish("rmtest.security", []byte("hello")))
	msg, err := sub.NextMsg(5 * time.Second)
	require.NoError(t, err)
	require.Equal(t, "hello", string(msg.Data))
}

func TestConnectNATS_userPassword(t *testing.T) {
	const (
		secret = "nats-pw-48c1"
		wrong  = "nats-wrong-pw-93aa"
	)
	n := testenv.StartNATSWith(t, func(o *server.Options) {
		o.Users = []*server.User{{Username: "ratemon", Password: secret}}
	})
	hostPort := hostPortOf(t, n.URL())
	nc, err := connectNATS(t, config.NATSConfig{URL: n.URL(), User: "ratemon", Password: secret})
	require.NoError(t, err)
	natsRoundTrip(t, nc)
	nc, err = connectNATS(t, config.NATSConfig{URL: "nats://ratemon:" + secret + "@" + hostPort})
	require.NoError(t, err, "credentials in the url")
	natsRoundTrip(t, nc)

	_, err = connectNATS(t, config.NATSConfig{URL: n.URL(), User: "ratemon", Password: wrong})
	requireRefused(t, err, "authorization violation", wrong)
	_, err = connectNATS(t, config.NATSConfig{URL: "nats://ratemon:" + wrong + "@" + hostPort})
	requireRefused(t, err, "authorization violation", wrong)
	require.ErrorContains(t, err, "nats://ratemon:xxxxx@"+hostPort, "the url is shown redacted")
	_, err = connectNATS(t, config.NATSConfig{URL: n.URL()})
	requireRefused(t, err, "authorization violation", secret)
}

func TestConnectNATS_token(t *testing.T) {
	const (
		token = "nats-token-5e0b"
		wrong = "nats-wrong-token-1c2d"
	)
	n := testenv.StartNATSWith(t, func(o *server.Options) { o.Authorization = token })
	hostPort := hostPortOf(t, n.URL())
	nc, err := connectNATS(t, config.NATSConfig{URL: n.URL(), Token: token})
	require.NoError(t, err)
	natsRoundTrip(t, nc)

	_, err = connectNATS(t, config.NATSConfig{URL: n.URL(), Token: wrong})
	requireRefused(t, err, "authorization violation", wrong)
	_, err = connectNATS(t, config.NATSConfig{URL: "nats://" + wrong + "@" + hostPort})
	requireRefused(t, err, "authorization violation", wrong)
}

func TestConnectNATS_nkey(t *testing.T) {
	pub, seedFile := testenv.NKeyUser(t)
	n := testenv.StartNATSWith(t, func(o *server.Options) { o.Nkeys = []*server.NkeyUser{{Nkey: pub}} })
	nc, err := connectNATS(t, config.NATSConfig{URL: n.URL(), NkeyFile: seedFile})
	require.NoError(t, err)
	natsRoundTrip(t, nc)

	_, otherSeed := testenv.NKeyUser(t)
	_, err = connectNATS(t, config.NATSConfig{URL: n.URL(), NkeyFile: otherSeed})
	requireRefused(t, err, "authorization violation", "SU")
}

func TestConnectNATS_credsFile(t *testing.T) {
	op := testenv.NewNATSOperator(t)
	n := testenv.StartNATSWith(t, op.Configure)
	nc, err := connectNATS(t, config.NATSConfig{URL: n.URL(), CredsFile: op.CredsFile})
	require.NoError(t, err)
	natsRoundTrip(t, nc)

	stranger, err := nkeys.CreateAccount() // an account the operator never signed
	require.NoError(t, err)
	_, err = connectNATS(t, config.NATSConfig{URL: n.URL(), CredsFile: testenv.Creds(t, stranger)})
	requireRefused(t, err, "authorization violation", "SU")
}

func TestConnectNATS_tls(t *testing.T) {
	const secret = "nats-tls-pw-77ab"
	pki := testenv.NewPKI(t)
	n := testenv.StartNATSWith(t, func(o *server.Options) {
		testenv.NATSTLS(t, pki)(o)
		o.Users = []*server.User{{Username: "ratemon", Password: secret}}
	})
	good := config.TLSConfig{CAFile: pki.CAFile, CertFile: pki.ClientCertFile, KeyFile: pki.ClientKeyFile}
	hostPort := hostPortOf(t, n.URL())
	for _, u := range []string{"nats://" + hostPort, "tls://" + hostPort} {
		nc, err := connectNATS(t, config.NATSConfig{URL: u, User: "ratemon", Password: secret, TLS: good})
		require.NoError(t, err, u)
		natsRoundTrip(t, nc)
		require.True(t, nc.TLSRequired())
	}

	other := testenv.NewPKI(t)
	_, err := connectNATS(t, config.NATSConfig{URL: n.URL(), User: "ratemon", Password: secret,
		TLS: config.TLSConfig{CAFile: other.CAFile, CertFile: pki.ClientCertFile, KeyFile: pki.ClientKeyFile}})
	requireRefused(t, err, "certificate signed by unknown authority", secret)
	_, err = connectNATS(t, config.NATSConfig{URL: n.URL(), User: "ratemon", Password: secret,
		TLS: config.TLSConfig{CAFile: pki.CAFile}})
	require.Error(t, err, "the server requires a client certificate")
	require.NotContains(t, err.Error(), secret)
	_, err = connectNATS(t, config.NATSConfig{URL: n.URL(), User: "ratemon", Password: secret,
		TLS: config.TLSConfig{CAFile: pki.CAFile, CertFile: other.ClientCertFile, KeyFile: other.ClientKeyFile}})
	require.Error(t, err, "a client certificate of another ca")
	require.NotContains(t, err.Error(), secret)
}

// TestDaemon_secureServers runs the daemon against a Redis that asks for an
// ACL user and a client certificate, and a NATS server that asks for a
// password and a client certificate: events flow and flags are written.
// With a wrong NATS password it stays not ready and says why, without the
// password.
func TestDaemon_secureServers(t *testing.T) {
	const (
		redisPW = "daemon-redis-pw-3c9d"
		natsPW  = "daemon-nats-pw-e41f"
		wrong   = "daemon-wrong-pw-8b20"
	)
	pki := testenv.NewPKI(t)
	// The user may touch only the keys under the daemon's prefix, as
	// docs/RELIABILITY.md advises.
	rs := testenv.StartSecureRedis(t, testenv.SecureRedisOptions{
		TLS: pki, User: "ratemon", UserPassword: redisPW, UserACL: "~rmsecure:* +@all",
	})
	n := testenv.StartNATSWith(t, func(o *server.Options) {
		testenv.NATSTLS(t, pki)(o)
		o.Users = []*server.User{{Username: "ratemon", Password: natsPW}}
	})
	tlsc := config.TLSConfig{CAFile: pki.CAFile, CertFile: pki.ClientCertFile, KeyFile: pki.ClientKeyFile}
	r := startDaemonWith(t, n.URL(), []limiter.Rule{
		{Name: "per-client", Key: []limiter.Field{limiter.FieldClient}, Limit: 3, Window: time.Minute},
	}, func(c *config.Config) {
		c.Redis.URL, c.Redis.Username, c.Redis.Password, c.Redis.TLS = "rediss://"+rs.Addr+"/0", "ratemon", redisPW, tlsc
		c.Redis.Prefix = "rmsecure"
		c.NATS.User, c.NATS.Password, c.NATS.TLS = "ratemon", natsPW, tlsc
	})

	nc, err := connectNATS(t, r.cfg.NATS)
	require.NoError(t, err)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	var events strings.Builder
	for range 4 {
		fmt.Fprintf(&events, `{"client":"acme","ts":%d}`+"\n", time.Now().UnixMilli())
	}
	_, err = js.Publish(t.Context(), r.subjects.Events("stocks"), []byte(events.String()))
	require.NoError(t, err)
	rdb := newRedis(t, r.cfg.Redis)
	deny := r.keys.Deny("client=acme")
	require.Eventually(t, func() bool { return rdb.Exists(t.Context(), deny).Val() == 1 }, 5*time.Second, 10*time.Millisecond)
	code, body := get(t, r.base+"/v1/check?client=acme")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, string(body), `"allowed":false`)

	t.Run("wrong nats password", func(t *testing.T) {
		cfg := *r.cfg
		cfg.NATS.Password = wrong
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		d, err := daemon.New(daemon.Options{Config: &cfg, Listener: ln, Logger: testLogger(t)})
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- d.Run(ctx) }()
		var last string
		for deadline := time.Now().Add(10 * time.Second); ; {
			code, body := get(t, "http://"+ln.Addr().String()+"/readyz")
			last = string(body)
			if code == http.StatusServiceUnavailable && strings.Contains(strings.ToLower(last), "authorization violation") {
				break
			}
			require.False(t, time.Now().After(deadline), "readyz never named the problem; last answer: %s", last)
			time.Sleep(20 * time.Millisecond) // polling readiness, with a deadline
		}
		require.NotContains(t, last, wrong)
		t.Log("readyz:", last)
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(20 * time.Second):
			t.Fatal("daemon did not stop")
		}
	})
}
