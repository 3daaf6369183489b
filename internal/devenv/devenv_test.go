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
	"github.com/ratemon/ratemon/internal/keyspace"
	"github.com/ratemon/ratemon/limiter"
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

// TestEnsure_standInRunsTheScripts runs the window scripts on the in-process
// Redis stand-in of `make run` on a machine without redis-server: it lacks
// Lua's struct library, so the scripts keep a rule's state as text there.
// Three events over a limit of two must deny the key, and two evaluations
// later (the state read back) the count must still be three.
func TestEnsure_standInRunsTheScripts(t *testing.T) {
	natsAddr, redisAddr := freeAddr(t), freeAddr(t)
	env, err := devenv.Ensure(t.Context(), devenv.Options{
		NATSURL: "nats://" + natsAddr, RedisURL: "redis://" + redisAddr + "/0",
		DataDir: filepath.Join(t.TempDir(), "nats"), RedisServer: "no-such-redis-server",
	})
	require.NoError(t, err)
	defer env.Close()
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr})
	defer rdb.Close()
	keys, err := keyspace.NewRedis("devenv")
	require.NoError(t, err)
	rules := []limiter.Rule{{Name: "r", Limit: 2, Window: time.Minute}}
	rules[0].SetDefaults()
	rs, err := limiter.NewRuleset(rules)
	require.NoError(t, err)
	now := time.Now().UnixMilli()
	st, err := limiter.NewStore(limiter.StoreOptions{Client: rdb, Keys: keys, Clock: limiter.FixedClock(time.UnixMilli(now))})
	require.NoError(t, err)
	k := limiter.LimitKey("client=trial")
	batch := []limiter.KeyAppend{{Key: k, Group: &rs.Groups()[0], Messages: []limiter.Message{
		{Seq: 1, Events: []limiter.Event{{TS: now - 20, Weight: 1, Mask: 1}, {TS: now - 10, Weight: 1, Mask: 1}}},
		{Seq: 2, Events: []limiter.Event{{TS: now - 5, Weight: 1, Mask: 1}}},
	}}}
	res, evals, err := st.AppendEvaluate(t.Context(), 0, batch)
	require.NoError(t, err)
	require.Equal(t, int64(3), res.Accepted)
	require.Len(t, evals, 1)
	require.Equal(t, int64(3), evals[0].Rules[0].Count)
	require.NotEmpty(t, evals[0].Changes, "the key is denied")
	require.False(t, evals[0].Changes[0].Allowed)
	again, err := st.Evaluate(t.Context(), rs, []limiter.LimitKey{k})
	require.NoError(t, err)
	require.Len(t, again, 1)
	require.Equal(t, int64(3), again[0].Rules[0].Count)
	require.Equal(t, int64(1), rdb.Exists(t.Context(), keys.Deny(string(k))).Val())
}
