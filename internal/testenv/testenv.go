// Package testenv gives tests real servers: the machine's Redis (or the one
// named by RATEMON_TEST_REDIS), in-process NATS servers with JetStream on
// random ports, and private redis-server processes for tests that must stop
// or restart Redis. Each test gets its own key prefix and stream names, so
// packages can run in parallel against one Redis.
//
// A missing Redis fails the test with a clear message; it is never skipped,
// because a skipped suite hides a broken CI.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisAddr is the address tests use for the shared Redis.
func RedisAddr() string {
	if a := os.Getenv("RATEMON_TEST_REDIS"); a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

// Redis returns a client of the shared test Redis, closed when the test ends.
func Redis(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: RedisAddr()})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		t.Fatalf("testenv: redis at %s is unreachable (%v); start it (see .ci/run) or set RATEMON_TEST_REDIS", RedisAddr(), err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Name returns a short unique name for the test, usable as a key prefix,
// a stream name or a subject token.
func Name(t testing.TB) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	n := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			return r
		}
		return '_'
	}, t.Name())
	if len(n) > 24 {
		n = n[len(n)-24:]
	}
	return fmt.Sprintf("t%s_%s", n, hex.EncodeToString(b[:]))
}

// Prefix returns a unique Redis key prefix for the test and deletes every key
// under it when the test ends.
func Prefix(t testing.TB, c redis.UniversalClient) string {
	t.Helper()
	p := "rmtest-" + Name(t)
	t.Cleanup(func() { DeletePrefix(c, p) })
	return p
}

// DeletePrefix deletes every key whose name starts with prefix+":".
func DeletePrefix(c redis.UniversalClient, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	iter := c.Scan(ctx, 0, prefix+":*", 1000).Iterator()
	var batch []string
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 500 {
			c.Unlink(ctx, batch...)
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		c.Unlink(ctx, batch...)
	}
}
