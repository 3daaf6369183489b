package inline_test

import (
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/internal/config"
	"github.com/ratemon/ratemon/internal/daemontest"
	"github.com/ratemon/ratemon/internal/testenv"
	"github.com/ratemon/ratemon/limiter"
	"github.com/ratemon/ratemon/limiter/inline"
	"github.com/ratemon/ratemon/pipeline/event"
)

func perClient(limit int64, window time.Duration) []limiter.Rule {
	return []limiter.Rule{{Name: "per-client", Match: limiter.Match{Service: "stocks"}, Key: []limiter.Field{limiter.FieldClient},
		Limit: limit, Window: window, Action: limiter.ActionDeny}}
}

func req(client string) *event.Event {
	return &event.Event{Client: client, Service: "stocks", Route: "GET /stocks/{symbol}/history", Method: "GET", IP: "192.0.2.1"}
}

// newChecker builds a checker of the daemon's rules (read from its
// GET /v1/rules) with fast fallback settings.
func newChecker(t *testing.T, d *daemontest.Daemon, opts inline.CheckerOptions) *inline.Checker {
	t.Helper()
	opts.RulesURL = d.Base
	opts.RedisPrefix, opts.SubjectPrefix = d.Config.Redis.Prefix, d.Config.NATS.SubjectPrefix
	if opts.Redis == nil {
		opts.Redis = testenv.Redis(t)
	}
	opts.FallbackCacheTTL = 50 * time.Millisecond
	opts.Heartbeat = 100 * time.Millisecond
	opts.Logger = quietLogger(t)
	c, err := inline.NewChecker(opts)
	require.NoError(t, err)
	return c
}

func TestChecker_againstDaemon_flagSetThenExpired(t *testing.T) {
	n := testenv.StartNATS(t)
	d := startDaemon(t, n.URL(), perClient(5, 2*time.Second))
	nc := n.Connect(t)
	reg := prometheus.NewPedanticRegistry()
	m := inline.NewMetrics(reg)
	c := newChecker(t, d, inline.CheckerOptions{NATS: nc, Metrics: m})
	runChecker(t, c)
	require.Eventually(t, c.FeedUp, 5*time.Second, 5*time.Millisecond)
	require.Equal(t, "per-client", c.Rules().Rules()[0].Name, "rules read from the daemon")

	p, err := inline.NewPublisher(inline.PublisherOptions{NATS: nc, Service: "stocks", SubjectPrefix: d.Config.NATS.SubjectPrefix, Metrics: m})
	require.NoError(t, err)
	start := time.Now()
	for range 6 {
		e := req("acme")
		e.TS = time.Now().UnixMilli()
		p.Publish(e)
	}
	require.NoError(t, p.Close(t.Context()))

	var res inline.Result
	require.Eventually(t, func() bool { res = c.Check(req("acme")); return res.Denied }, 5*time.Second, time.Millisecond)
	t.Logf("refused %v after publishing", time.Since(start))
	require.Equal(t, inline.SourceLocal, res.Source)
	require.Equal(t, limiter.LimitKey("client=acme"), res.Key)
	require.Equal(t, "per-client", res.Rule)
	require.False(t, res.Manual)
	require.WithinDuration(t, start.Add(2*time.Second), res.Until, time.Second)
	require.False(t, c.Check(req("calm")).Denied)

	// The flag runs out without any decision: the local entry ends on its own.
	require.Eventually(t, func() bool { return !c.Check(req("acme")).Denied }, 5*time.Second, 5*time.Millisecond)
	require.True(t, c.FeedUp())
	require.Positive(t, m.Checks.Count(inline.SourceLocal, true))
	require.Positive(t, m.Checks.Count(inline.SourceLocal, false))
	require.InDelta(t, 1.0, testutil.ToFloat64(m.FeedUp), 0)
	n2, err := testutil.GatherAndCount(reg, "ratemon_inline_checks_total")
	require.NoError(t, err)
	require.Equal(t, 6, n2, "three sources by two results")
}

func TestChecker_feedLost_fallsBackToRedis_thenReloads(t *testing.T) {
	n := testenv.StartNATS(t)
	d := startDaemon(t, n.URL(), perClient(1000, time.Minute))
	nc := n.Connect(t)
	m := inline.NewMetrics(nil)
	c := newChecker(t, d, inline.CheckerOptions{NATS: nc, Metrics: m})
	runChecker(t, c)
	require.Eventually(t, c.FeedUp, 5*time.Second, 5*time.Millisecond)
	store, err := limiter.NewStore(limiter.StoreOptions{Client: testenv.Redis(t), Keys: d.Keys})
	require.NoError(t, err)
	block := func(client string, op limiter.Op) {
		_, _, err := store.Manual(t.Context(), limiter.ManualRequest{Op: op, Key: limiter.LimitKey("client=" + client),
			Author: "test", Reason: "test", For: time.Hour})
		require.NoError(t, err)
	}

	n.Shutdown() // the feed is cut: decisions published now are lost
	require.Eventually(t, func() bool { return !c.FeedUp() }, 5*time.Second, time.Millisecond)
	block("mallory", limiter.OpBlock)
	res := c.Check(req("mallory"))
	require.True(t, res.Denied, "read from Redis while the feed is lost")
	require.Equal(t, inline.SourceRedis, res.Source)
	require.True(t, res.Manual)
	require.False(t, c.Check(req("calm")).Denied)

	block("mallory", limiter.OpUnblock)
	require.Eventually(t, func() bool { return !c.Check(req("mallory")).Denied }, 2*time.Second, 5*time.Millisecond,
		"the fallback cache is short-lived")

	block("trudy", limiter.OpBlock) // its decision is lost: only the reload can know
	n.Restart()
	require.Eventually(t, c.FeedUp, 10*time.Second, 5*time.Millisecond, "the feed comes back")
	res = c.Check(req("trudy"))
	require.True(t, res.Denied, "the reload found the flag set while the feed was down")
	require.Equal(t, inline.SourceLocal, res.Source)
	require.False(t, c.Check(req("mallory")).Denied)
	require.InDelta(t, 1.0, testutil.ToFloat64(m.FeedLosses), 0)
	require.Positive(t, m.Checks.Count(inline.SourceRedis, true))
}

func TestChecker_redisDown_policy(t *testing.T) {
	n := testenv.StartNATS(t)
	d := startDaemon(t, n.URL(), perClient(100, time.Minute))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := ln.Addr().String()
	require.NoError(t, ln.Close())
	rdb := redis.NewClient(&redis.Options{Addr: dead, MaxRetries: -1, DialTimeout: 20 * time.Millisecond})
	t.Cleanup(func() { _ = rdb.Close() })

	for _, policy := range []inline.Policy{"", inline.PolicyFailOpen, inline.PolicyFailClosed} {
		t.Run(string(policy), func(t *testing.T) {
			c := newChecker(t, d, inline.CheckerOptions{NATS: n.Connect(t), Redis: rdb, Policy: policy})
			runChecker(t, c)
			require.Eventually(t, func() bool { return c.Rules() != nil }, 5*time.Second, time.Millisecond)
			start := time.Now()
			res := c.Check(req("acme"))
			require.Equal(t, inline.SourcePolicy, res.Source)
			require.False(t, c.FeedUp(), "the set cannot be loaded without Redis")
			if policy == inline.PolicyFailClosed {
				require.True(t, res.Denied)
				require.WithinDuration(t, start.Add(time.Second), res.Until, 500*time.Millisecond)
			} else {
				require.False(t, res.Denied, "fail open by default")
			}
			t0 := time.Now()
			for range 100 {
				require.Equal(t, inline.SourcePolicy, c.Check(req("acme")).Source)
			}
			require.Less(t, time.Since(t0), 50*time.Millisecond, "a failed Redis is not asked again on every request")
		})
	}
}

// TestChecker_manualUnblock_allowedAtOnce blocks and unblocks a client
// through the daemon's admin API (what `ratemon block` and
// `ratemon unblock` call): the unblock reaches the checker at once.
func TestChecker_manualUnblock_allowedAtOnce(t *testing.T) {
	n := testenv.StartNATS(t)
	d := startDaemon(t, n.URL(), perClient(100, time.Minute))
	c := newChecker(t, d, inline.CheckerOptions{NATS: n.Connect(t)})
	runChecker(t, c)
	require.Eventually(t, c.FeedUp, 5*time.Second, 5*time.Millisecond)

	require.Equal(t, http.StatusOK, d.Admin(t, http.MethodPost, "/v1/blocks", `{"key":"client=acme","for":"1h","reason":"abuse","author":"ops"}`))
	require.Eventually(t, func() bool { return c.Check(req("acme")).Denied }, time.Second, time.Millisecond)
	res := c.Check(req("acme"))
	require.True(t, res.Manual)
	require.Equal(t, inline.SourceLocal, res.Source)
	require.WithinDuration(t, time.Now().Add(time.Hour), res.Until, time.Minute)

	start := time.Now()
	require.Equal(t, http.StatusOK, d.Admin(t, http.MethodDelete, "/v1/blocks/client=acme", ""))
	require.Eventually(t, func() bool { return !c.Check(req("acme")).Denied }, time.Second, 100*time.Microsecond)
	t.Logf("allowed %v after the unblock request", time.Since(start))
	require.Less(t, time.Since(start), time.Second, "at once, not at the next poll")
}

// TestChecker_entriesEndOnTime: a check reads no clock, so the set must
// lose an entry at its until, without any decision saying so.
func TestChecker_entriesEndOnTime(t *testing.T) {
	n := testenv.StartNATS(t)
	nc := n.Connect(t)
	rs, err := limiter.NewRuleset(perClient(10, time.Minute))
	require.NoError(t, err)
	rdb := testenv.Redis(t)
	prefix := testenv.Prefix(t, rdb)
	c, err := inline.NewChecker(inline.CheckerOptions{NATS: nc, Redis: rdb, Rules: rs, RedisPrefix: prefix, SubjectPrefix: prefix})
	require.NoError(t, err)
	runChecker(t, c)
	require.Eventually(t, c.FeedUp, 5*time.Second, time.Millisecond)

	for _, ttl := range []time.Duration{300 * time.Millisecond, 100 * time.Millisecond} { // the second ends first
		until := time.Now().Add(ttl)
		b, err := json.Marshal(limiter.Decision{Key: limiter.LimitKey("client=c" + ttl.String()), Kind: limiter.FlagDeny,
			Rule: "per-client", Until: until.UnixMilli(), Source: "rule"})
		require.NoError(t, err)
		require.NoError(t, nc.Publish(prefix+".decisions", b))
	}
	require.NoError(t, nc.Flush())
	for _, ttl := range []time.Duration{100 * time.Millisecond, 300 * time.Millisecond} {
		client := "c" + ttl.String()
		require.Eventually(t, func() bool { return c.Check(req(client)).Denied }, time.Second, time.Millisecond)
		res := c.Check(req(client))
		require.Eventually(t, func() bool { return !c.Check(req(client)).Denied }, 2*time.Second, time.Millisecond)
		late := time.Since(res.Until)
		t.Logf("%s: allowed %v after its until", client, late)
		require.GreaterOrEqual(t, late, time.Duration(0), "never before the flag ends")
		require.Less(t, late, 250*time.Millisecond, "ended on time, not at the next periodic sweep")
	}
}

// TestChecker_privacyHash: with privacy.hash the daemon's limit keys hold
// keyed hashes of client ids and addresses; a checker given the same key
// computes the same keys, and one without it refuses to guess.
func TestChecker_privacyHash(t *testing.T) {
	const keyEnv = "RATEMON_TEST_INLINE_HASH_KEY"
	key := "a-secret-of-16-bytes-or-more"
	t.Setenv(keyEnv, key)
	n := testenv.StartNATS(t)
	d := daemontest.StartWith(t, n.URL(), perClient(2, time.Minute), func(c *config.Config) {
		c.Privacy.Hash = []limiter.Field{limiter.FieldClient, limiter.FieldIP}
		c.Privacy.KeyEnv = keyEnv
	})
	_, err := inline.FetchRules(t.Context(), nil, d.Base, nil)
	require.ErrorContains(t, err, "privacy key is needed")

	nc := n.Connect(t)
	c := newChecker(t, d, inline.CheckerOptions{NATS: nc, HashKey: []byte(key)})
	runChecker(t, c)
	require.Eventually(t, c.FeedUp, 5*time.Second, 5*time.Millisecond)
	p, err := inline.NewPublisher(inline.PublisherOptions{NATS: nc, Service: "stocks", SubjectPrefix: d.Config.NATS.SubjectPrefix})
	require.NoError(t, err)
	for range 3 {
		p.Publish(req("acme")) // the raw id: the daemon hashes it
	}
	require.NoError(t, p.Close(t.Context()))
	var res inline.Result
	require.Eventually(t, func() bool { res = c.Check(req("acme")); return res.Denied }, 5*time.Second, time.Millisecond)
	require.True(t, strings.HasPrefix(string(res.Key), "client="+limiter.HashPrefix), string(res.Key))
	require.NotContains(t, string(res.Key), "acme")
	require.False(t, c.Check(req("calm")).Denied)
}
