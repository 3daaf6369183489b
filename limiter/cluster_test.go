package limiter_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/internal/keyspace"
	"github.com/ratemon/ratemon/internal/modelcheck"
	"github.com/ratemon/ratemon/internal/testenv"
	"github.com/ratemon/ratemon/internal/tracegen"
	"github.com/ratemon/ratemon/limiter"
	"github.com/ratemon/ratemon/pipeline/event"
)

// scriptCalls is a go-redis hook that checks every script call (EVAL,
// EVALSHA, FCALL) on its way to Redis: all its KEYS must carry one and the same
// hash tag, the limit key's, so that the call touches one cluster slot.
type scriptCalls struct {
	mu    sync.Mutex
	calls int
	bad   []string
}

func (h *scriptCalls) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *scriptCalls) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.check(cmd)
		return next(ctx, cmd)
	}
}

func (h *scriptCalls) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			h.check(c)
		}
		return next(ctx, cmds)
	}
}

func (h *scriptCalls) check(cmd redis.Cmder) {
	switch strings.ToLower(cmd.Name()) {
	case "eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro":
	default:
		return
	}
	args := cmd.Args()
	n, _ := strconv.Atoi(fmt.Sprint(args[2]))
	var tag string
	var problem string
	for i, a := range args[3 : 3+n] {
		k := fmt.Sprint(a)
		t := keyspace.HashTag(k)
		switch {
		case t == k:
			problem = fmt.Sprintf("key %q has no hash tag", k)
		case i == 0:
			tag = t
		case t != tag:
			problem = fmt.Sprintf("keys of two hash tags: {%s} and {%s}", tag, t)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls++
	if problem != "" {
		h.bad = append(h.bad, problem)
	}
}

// take returns the calls seen since the last take and the problems found.
func (h *scriptCalls) take() (int, []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	n, bad := h.calls, h.bad
	h.calls, h.bad = 0, nil
	return n, bad
}

// TestStore_cluster runs every script call the store makes (append, append
// and evaluate, evaluate, inspect for check and top, manual, overrides) and
// its SCAN-based listings against a three-master Redis Cluster while 2000
// slots migrate between masters, and requires the same answers as a
// single Redis fed the same batches and the reference model. Redis would
// refuse a call whose keys span slots with CROSSSLOT; the hook also checks
// that every call's keys share one hash tag.
func TestStore_cluster(t *testing.T) {
	cluster := testenv.StartRedisCluster(t)
	cc := cluster.Client(t)
	hook := &scriptCalls{}
	cc.AddHook(hook)
	started := time.Now()
	now := started.UnixMilli()
	single, rs, clock, singleKeys := newFixture(t, modelRules(), now)
	clusterKeys, err := keyspace.NewRedis("rmtest-" + testenv.Name(t))
	require.NoError(t, err)
	clustered, err := limiter.NewStore(limiter.StoreOptions{Client: cc, Keys: clusterKeys, Clock: clock})
	require.NoError(t, err)
	ctx := t.Context()
	require.NoError(t, clustered.Load(ctx))
	require.True(t, clustered.Functions(), "the library is loaded on every master")

	trace := tracegen.Generate(tracegen.Options{
		Seed: 5, Now: now, Span: 100 * time.Second, Events: 4000, Clients: 150, Zipf: 1.2,
		OutOfOrder: 0.3, Jitter: 4 * time.Second, Late: 0.03, Duplicates: 0.05,
		Edges: []time.Duration{5 * time.Second, 30 * time.Second, time.Minute}, BurstSize: 12,
		MaxWeight: 3, Routes: []string{"GET /stocks/{symbol}/history", "POST /login", "GET /stocks/{symbol}"},
		IPs: 40, Refused: 0.05,
	})
	masters, err := cluster.Masters(ctx)
	require.NoError(t, err)
	before := slotOwners(t, cc)
	resharded := make(chan error, 1)
	go func() { resharded <- cluster.MoveSlots(ctx, masters[0], masters[1], 2000) }()

	loopStart := time.Now()
	rng := rand.New(rand.NewPCG(5, 7))
	model := limiter.NewModel(rs)
	retries := 0
	for i, b := range batches(rng, trace) {
		appends := toAppends(rs, b)
		for _, st := range []*limiter.Store{single, clustered} {
			// A batch that fails while a slot moves is sent again, as
			// ingestion does after a NAK: append is idempotent.
			for attempt := 0; ; attempt++ {
				if i%2 == 0 {
					_, err = st.Append(ctx, 0, appends)
				} else {
					_, _, err = st.AppendEvaluate(ctx, 0, appends)
				}
				if err == nil {
					break
				}
				require.Less(t, attempt, 50, "batch %d keeps failing: %v", i, err)
				retries++
				t.Logf("batch %d attempt %d: %v", i, attempt, err)
			}
		}
		for _, ka := range appends {
			model.Add(now, ka.Key, ka.Messages)
		}
	}
	loopTook := time.Since(loopStart)
	require.NoError(t, <-resharded)
	t.Logf("%d batch retries while 2000 slots moved; appends took %v, the move %v", retries, loopTook, time.Since(loopStart))
	n, bad := hook.take()
	require.Positive(t, n)
	require.Empty(t, bad)

	keys := model.Keys()
	onMaster := map[string]int{}
	for _, k := range keys {
		m, err := cc.MasterForKey(ctx, clusterKeys.State(string(k)))
		require.NoError(t, err)
		onMaster[m.Options().Addr]++
	}
	require.Len(t, onMaster, 3, "the limit keys must spread over every master: %v", onMaster)
	after := slotOwners(t, cc)
	moved := 0
	for _, k := range keys {
		slot, err := cc.ClusterKeySlot(ctx, clusterKeys.State(string(k))).Result()
		require.NoError(t, err)
		if before[slot] != after[slot] {
			moved++
		}
	}
	t.Logf("%d of %d limit keys moved to another master under the appends; ASKING sent %d times", moved, len(keys), askings(t, cluster))
	require.Positive(t, moved)

	// Evaluate: same answers as the single node, and both agree with the model.
	evalSingle, err := single.Evaluate(ctx, rs, keys)
	require.NoError(t, err)
	evalCluster, err := clustered.Evaluate(ctx, rs, keys)
	require.NoError(t, err)
	require.Len(t, evalCluster, len(evalSingle))
	for i := range evalSingle {
		require.Equal(t, evalSingle[i].Rules, evalCluster[i].Rules, "key %s", evalSingle[i].Key)
	}
	for _, c := range []struct {
		st   *limiter.Store
		rdb  redis.UniversalClient
		keys keyspace.Redis
	}{{single, single.Client(), singleKeys}, {clustered, cc, clusterKeys}} {
		rep, err := modelcheck.Compare(ctx, modelcheck.Options{
			Store: c.st, Rules: rs, Redis: c.rdb, Keys: c.keys, Model: model, Now: now, Started: started,
		})
		require.NoError(t, err)
		require.Empty(t, rep.Mismatches)
		require.Positive(t, rep.Over)
		require.Positive(t, rep.Flags)
	}
	n, bad = hook.take()
	require.GreaterOrEqual(t, n, 2*len(keys))
	require.Empty(t, bad)

	sameOnBoth(t, single, clustered, rs, now, evalSingle, trace)
	n, bad = hook.take()
	require.Positive(t, n)
	require.Empty(t, bad)
}

// sameOnBoth runs the reads and the manual operations on both stores and
// requires equal answers. Flags expire in real time while the stores' clock
// stands still at now, so only flags lasting beyond the test are compared.
func sameOnBoth(t *testing.T, single, clustered *limiter.Store, rs *limiter.Ruleset, now int64, evals []limiter.Evaluation, trace []event.Event) {
	ctx := t.Context()
	both := func(fn func(st *limiter.Store) (any, error)) {
		t.Helper()
		a, err := fn(single)
		require.NoError(t, err)
		b, err := fn(clustered)
		require.NoError(t, err)
		require.Equal(t, a, b)
	}
	lasting := func(fs []limiter.Flag) []limiter.Flag {
		fs = slices.DeleteFunc(fs, func(f limiter.Flag) bool { return f.Until < now+30_000 })
		if len(fs) == 0 {
			return nil
		}
		return fs
	}
	for _, e := range trace[:50] {
		both(func(st *limiter.Store) (any, error) {
			res, err := st.Check(ctx, rs, e)
			res.Allowed, res.RetryAfterMS = false, 0 // from the flags' PTTL
			res.Denied, res.Shadow = lasting(res.Denied), lasting(res.Shadow)
			return res, err
		})
	}
	for _, st := range []*limiter.Store{single, clustered} {
		require.NoError(t, st.RecordTop(ctx, 4, evals))
	}
	for _, r := range rs.Rules() {
		both(func(st *limiter.Store) (any, error) {
			top, err := st.Top(ctx, rs, r.Name, 10, 4)
			for i := range top {
				top[i].State, top[i].FlagLeftMS = "", 0 // from the flags' PTTL
			}
			return top, err
		})
	}
	flags := func(kind limiter.FlagKind) func(st *limiter.Store) (any, error) {
		return func(st *limiter.Store) (any, error) {
			fs, err := st.Flags(ctx, kind)
			return lasting(fs), err
		}
	}
	both(flags(limiter.FlagDeny))
	both(flags(limiter.FlagShadow))
	denies, err := clustered.Flags(ctx, limiter.FlagDeny)
	require.NoError(t, err)
	require.Greater(t, len(lasting(denies)), 3, "flags on every master are listed")

	// Manual entries on keys of every master, listed by scanning each one.
	var manual []limiter.LimitKey
	for i := range 30 {
		manual = append(manual, limiter.LimitKey(fmt.Sprintf("client=c%04d", i)))
	}
	for i, k := range manual {
		op := limiter.OpBlock
		if i%3 == 0 {
			op = limiter.OpAllow
		}
		both(func(st *limiter.Store) (any, error) {
			e, _, err := st.Manual(ctx, limiter.ManualRequest{Op: op, Key: k, Author: "test", Reason: "cluster", For: time.Hour})
			return e, err
		})
	}
	both(func(st *limiter.Store) (any, error) { return st.Entries(ctx, limiter.OpBlock) })
	both(func(st *limiter.Store) (any, error) { return st.Entries(ctx, limiter.OpAllow) })
	both(flags(limiter.FlagDeny))
	blocks, err := clustered.Entries(ctx, limiter.OpBlock)
	require.NoError(t, err)
	require.Len(t, blocks, 20)
	both(func(st *limiter.Store) (any, error) {
		e, _, err := st.Manual(ctx, limiter.ManualRequest{Op: limiter.OpUnblock, Key: manual[1]})
		return e, err
	})
	both(func(st *limiter.Store) (any, error) { return st.Entries(ctx, limiter.OpBlock) })

	// Overrides: set (which evaluates the key at once), list, clear.
	for _, k := range manual[:6] {
		for _, st := range []*limiter.Store{single, clustered} {
			_, err := st.SetOverride(ctx, rs, limiter.Override{Key: k, Rule: limiter.AllRules, Factor: 0.5}, time.Hour)
			require.NoError(t, err)
		}
	}
	overrides := func(st *limiter.Store) (any, error) {
		o, err := st.Overrides(ctx)
		for i := range o {
			o[i].Until = 0 // from the PTTL, in real time
		}
		slices.SortFunc(o, func(a, b limiter.Override) int { return strings.Compare(string(a.Key), string(b.Key)) })
		return o, err
	}
	both(overrides)
	for _, st := range []*limiter.Store{single, clustered} {
		_, err := st.ClearOverride(ctx, rs, manual[0], "")
		require.NoError(t, err)
	}
	both(overrides)
	ovr, err := clustered.Overrides(ctx)
	require.NoError(t, err)
	require.Len(t, ovr, 5)
}

// slotOwners maps every slot to the address of its master now.
func slotOwners(t *testing.T, cc *redis.ClusterClient) map[int64]string {
	slots, err := cc.ClusterSlots(t.Context()).Result() //nolint:staticcheck // the slot map as go-redis's cluster client reads it
	require.NoError(t, err)
	out := map[int64]string{}
	for _, s := range slots {
		for i := s.Start; i <= s.End; i++ {
			out[int64(i)] = s.Nodes[0].Addr
		}
	}
	return out
}

// askings sums the ASKING commands every node received: each is a client
// following an ASK redirection while a slot migrated.
func askings(t *testing.T, c *testenv.RedisCluster) int {
	n := 0
	for _, addr := range c.Addrs() {
		nc := redis.NewClient(&redis.Options{Addr: addr})
		stats, err := nc.Info(t.Context(), "commandstats").Result()
		_ = nc.Close()
		require.NoError(t, err)
		for line := range strings.SplitSeq(stats, "\n") {
			if rest, ok := strings.CutPrefix(line, "cmdstat_asking:calls="); ok {
				v, _, _ := strings.Cut(rest, ",")
				c, _ := strconv.Atoi(v)
				n += c
			}
		}
	}
	return n
}
