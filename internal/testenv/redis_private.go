package testenv

import (
	"path/filepath"
	"testing"

	"github.com/redis/go-redis/v9"
)

// PrivateRedis is a redis-server process of the test's own, on a free
// loopback port, without persistence: for tests and benchmarks that must
// read INFO figures (memory, CPU) no other test disturbs, or that stop
// Redis. It is killed when the test ends.
type PrivateRedis struct {
	node *redisNode
}

// StartPrivateRedis starts the server and waits until it answers.
func StartPrivateRedis(t testing.TB) *PrivateRedis {
	t.Helper()
	n, err := startRedisNode(filepath.Join(t.TempDir(), "redis"), false)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	p := &PrivateRedis{node: n}
	t.Cleanup(func() { _ = n.cmd.Process.Kill(); <-n.done })
	return p
}

// Addr is host:port of the server.
func (p *PrivateRedis) Addr() string { return p.node.addr }

// Client returns a client closed when the test ends.
func (p *PrivateRedis) Client(t testing.TB) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: p.node.addr})
	t.Cleanup(func() { _ = c.Close() })
	return c
}
