package testenv

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// SecureRedisOptions shapes a private redis-server that asks for
// credentials, TLS, or both.
type SecureRedisOptions struct {
	Password     string // requirepass: the password of the default user
	User         string // an ACL user...
	UserPassword string // ...its password...
	UserACL      string // ...and its rights (default "~* &* +@all": everything)
	// TLS makes the server speak TLS only (port 0, tls-port), with the
	// PKI's server certificate, and require a client certificate signed by
	// its CA (tls-auth-clients yes).
	TLS *PKI
	// Cluster starts the server in cluster mode, one node holding every
	// slot, so that go-redis's cluster client works against it.
	Cluster bool
}

// SecureRedis is a private redis-server started with SecureRedisOptions,
// killed when the test ends.
type SecureRedis struct {
	Addr string // 127.0.0.1:port, TLS only when Options.TLS is set
	opts SecureRedisOptions
}

// StartSecureRedis writes a redis.conf (so that no password shows in the
// process list), starts redis-server with it and waits until it answers
// with the credentials and certificate it asks for.
func StartSecureRedis(t testing.TB, o SecureRedisOptions) *SecureRedis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("testenv: redis-server is not installed (Debian package redis-server): %v", err)
	}
	dir := t.TempDir()
	port, err := freePort()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	bus, err := freePort()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	lines := []string{
		"bind 127.0.0.1", "protected-mode no", `save ""`, "appendonly no",
		"dir " + dir, "logfile " + filepath.Join(dir, "redis.log"),
	}
	if o.TLS != nil {
		lines = append(lines, "port 0", "tls-port "+strconv.Itoa(port),
			"tls-cert-file "+o.TLS.ServerCertFile, "tls-key-file "+o.TLS.ServerKeyFile,
			"tls-ca-cert-file "+o.TLS.CAFile, "tls-auth-clients yes")
	} else {
		lines = append(lines, "port "+strconv.Itoa(port))
	}
	if o.Password != "" {
		lines = append(lines, "requirepass "+o.Password)
	}
	if o.User != "" {
		acl := o.UserACL
		if acl == "" {
			acl = "~* &* +@all"
		}
		lines = append(lines, fmt.Sprintf("user %s on >%s %s", o.User, o.UserPassword, acl))
	}
	if o.Cluster {
		lines = append(lines, "cluster-enabled yes", "cluster-config-file nodes.conf",
			"cluster-port "+strconv.Itoa(bus))
		if o.TLS != nil {
			lines = append(lines, "tls-cluster yes")
		}
	}
	conf := filepath.Join(dir, "redis.conf")
	if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatalf("testenv: write redis.conf: %v", err)
	}
	cmd := exec.Command("redis-server", conf)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // see startRedisNode
	if err := cmd.Start(); err != nil {
		t.Fatalf("testenv: start redis-server: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })

	s := &SecureRedis{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), opts: o}
	c := redis.NewClient(s.Options(t))
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for c.Ping(ctx).Err() != nil {
		select {
		case <-ctx.Done():
			log, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
			t.Fatalf("testenv: secure redis-server on %s does not answer\n%s", s.Addr, log)
		case <-done:
			log, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
			t.Fatalf("testenv: secure redis-server exited\n%s", log)
		case <-time.After(20 * time.Millisecond):
		}
	}
	if o.Cluster {
		if err := c.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", 0, 16383).Err(); err != nil {
			t.Fatalf("testenv: cluster addslotsrange: %v", err)
		}
		for !strings.Contains(c.ClusterInfo(ctx).Val(), "cluster_state:ok") {
			select {
			case <-ctx.Done():
				t.Fatalf("testenv: one-node cluster on %s never reported cluster_state:ok", s.Addr)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return s
}

// Options are go-redis options that reach the server as an administrator:
// with the ACL user when there is one, else the default user's password,
// and the PKI's client certificate.
func (s *SecureRedis) Options(t testing.TB) *redis.Options {
	t.Helper()
	o := &redis.Options{Addr: s.Addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond}
	switch {
	case s.opts.User != "":
		o.Username, o.Password = s.opts.User, s.opts.UserPassword
	case s.opts.Password != "":
		o.Password = s.opts.Password
	}
	if p := s.opts.TLS; p != nil {
		ca, err := os.ReadFile(p.CAFile)
		if err != nil {
			t.Fatalf("testenv: %v", err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(ca)
		cert, err := tls.LoadX509KeyPair(p.ClientCertFile, p.ClientKeyFile)
		if err != nil {
			t.Fatalf("testenv: %v", err)
		}
		o.TLSConfig = &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	}
	return o
}
