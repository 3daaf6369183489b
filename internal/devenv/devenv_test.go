package devenv_test

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/internal/devenv"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	a := ln.Addr().String()
	require.NoError(t, ln.Close())
	return a
}

func checkBoth(t *testing.T, natsAddr, redisAddr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	nc, err := nats.Connect("nats://" + natsAddr)
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	_, err = js.AccountInfo(ctx)
	require.NoError(t, err, "jetstream is enabled")
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr})
	defer rdb.Close()
	require.NoError(t, rdb.Ping(ctx).Err())
	require.NoError(t, rdb.XAdd(ctx, &redis.XAddArgs{Stream: "devenv-test", ID: "5-*", Values: []any{"n", 1}}).Err())
}

func TestEnsure_startsWhatIsMissing(t *testing.T) {
	for _, c := range []struct{ name, redisServer string }{
		{"redis-server", ""},
		{"stand-in", "no-such-redis-server"},
	} {
		t.Run(c.name, func(t *testing.T) {
			natsAddr, redisAddr := freeAddr(t), freeAddr(t)
			env, err := devenv.Ensure(t.Context(), devenv.Options{
				NATSURL: "nats://" + natsAddr, RedisURL: "redis://" + redisAddr + "/0",
				DataDir: filepath.Join(t.TempDir(), "nats"), RedisServer: c.redisServer,
			})
			require.NoError(t, err)
			defer env.Close()
			checkBoth(t, natsAddr, redisAddr)
		})
	}
}

func TestEnsure_refusesRemoteAddresses(t *testing.T) {
	_, err := devenv.Ensure(t.Context(), devenv.Options{NATSURL: "nats://192.0.2.1:4222", RedisURL: "redis://127.0.0.1:1/0"})
	require.ErrorContains(t, err, "not a loopback address")
}
