package limiter_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/internal/keyspace"
	"github.com/ratemon/ratemon/internal/testenv"
	"github.com/ratemon/ratemon/limiter"
)

// The ingestion scripts run as Redis Functions (FCALL) where the library
// can be loaded, and by SHA otherwise, with the same results: on a private
// Redis, a store of the default user calls them with FCALL, and after
// FUNCTION FLUSH (what a restart without persistence does) loads the
// library again by itself; a user whose ACL denies FUNCTION, and one that
// may load the library but not FCALL, get the same answers by EVALSHA.
func TestStore_functionsAndTheirFallbacks(t *testing.T) {
	srv := testenv.StartPrivateRedis(t)
	admin := srv.Client(t)
	ctx := t.Context()
	fcalls := func() int64 {
		t.Helper()
		info, err := admin.Info(ctx, "commandstats").Result()
		require.NoError(t, err)
		for line := range strings.SplitSeq(info, "\n") {
			if rest, ok := strings.CutPrefix(line, "cmdstat_fcall:calls="); ok {
				n, _, _ := strings.Cut(rest, ",")
				v, err := strconv.ParseInt(n, 10, 64)
				require.NoError(t, err)
				return v
			}
		}
		return 0
	}
	user := func(name, rules string) *redis.Client {
		t.Helper()
		require.NoError(t, admin.Do(ctx, append([]any{"ACL", "SETUSER", name, "on", ">pw", "~*", "&*", "+@all"}, toAny(strings.Fields(rules))...)...).Err())
		c := redis.NewClient(&redis.Options{Addr: srv.Addr(), Username: name, Password: "pw"})
		t.Cleanup(func() { _ = c.Close() })
		return c
	}

	// The default user: FCALL.
	st := storeOn(t, admin)
	require.NoError(t, st.Load(ctx))
	require.True(t, st.Functions())
	before := fcalls()
	denyScenario(t, st, "client=a")
	require.Greater(t, fcalls(), before, "the calls went by FCALL")
	libs, err := admin.Do(ctx, "FUNCTION", "LIST", "LIBRARYNAME", "ratemon_*").Slice()
	require.NoError(t, err)
	require.Len(t, libs, 1, "one library")

	require.NoError(t, admin.FunctionFlush(ctx).Err())
	denyScenario(t, st, "client=b")
	require.True(t, st.Functions(), "loaded again after FUNCTION FLUSH")
	libs, err = admin.Do(ctx, "FUNCTION", "LIST", "LIBRARYNAME", "ratemon_*").Slice()
	require.NoError(t, err)
	require.Len(t, libs, 1)

	// No FUNCTION command at all: EVALSHA.
	st = storeOn(t, user("nofunction", "-function"))
	require.NoError(t, st.Load(ctx))
	require.False(t, st.Functions())
	before = fcalls()
	denyScenario(t, st, "client=c")
	require.Equal(t, before, fcalls())

	// FUNCTION LOAD allowed, FCALL refused: the first refusal turns FCALL
	// off for good.
	st = storeOn(t, user("nofcall", "-fcall"))
	require.NoError(t, st.Load(ctx))
	require.True(t, st.Functions())
	denyScenario(t, st, "client=d")
	require.False(t, st.Functions())
	require.NoError(t, st.Load(ctx))
	require.False(t, st.Functions(), "not tried again")
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func storeOn(t *testing.T, c redis.UniversalClient) *limiter.Store {
	t.Helper()
	keys, err := keyspace.NewRedis("rmtest-" + testenv.Name(t))
	require.NoError(t, err)
	st, err := limiter.NewStore(limiter.StoreOptions{Client: c, Keys: keys})
	require.NoError(t, err)
	return st
}

// denyScenario appends events to key k under a limit of 3 a minute, by
// Append, AppendEvaluate and Evaluate, and checks the counts and the deny
// flag's end, and that a redelivered message counts once.
func denyScenario(t *testing.T, st *limiter.Store, k limiter.LimitKey) {
	t.Helper()
	rules := []limiter.Rule{{Name: "r", Limit: 3, Window: time.Minute}}
	rules[0].SetDefaults()
	rs, err := limiter.NewRuleset(rules)
	require.NoError(t, err)
	g := &rs.Groups()[0]
	ctx := context.Background()
	now := time.Now().UnixMilli()
	msg := func(seq uint64, ts ...int64) []limiter.KeyAppend {
		var evs []limiter.Event
		for _, x := range ts {
			evs = append(evs, limiter.Event{TS: x, Weight: 1, Mask: 1})
		}
		return []limiter.KeyAppend{{Key: k, Group: g, Messages: []limiter.Message{{Seq: seq, Events: evs}}}}
	}
	_, err = st.Append(ctx, 0, msg(1, now-50_000, now-30_000))
	require.NoError(t, err)
	evs, err := st.Evaluate(ctx, rs, []limiter.LimitKey{k})
	require.NoError(t, err)
	require.Equal(t, int64(2), evs[0].Rules[0].Count)
	require.Empty(t, evs[0].Changes)

	_, evs, err = st.AppendEvaluate(ctx, 0, msg(2, now-10_000))
	require.NoError(t, err)
	require.Len(t, evs[0].Changes, 1)
	require.Equal(t, limiter.FlagDeny, evs[0].Changes[0].Kind)
	require.InDelta(t, now+10_000, evs[0].Changes[0].Until, 2000, "the flag ends when the oldest of the 3 leaves the window")

	_, evs, err = st.AppendEvaluate(ctx, 0, msg(2, now-10_000))
	require.NoError(t, err)
	require.Equal(t, int64(3), evs[0].Rules[0].Count, "the redelivered message counts once")
}
