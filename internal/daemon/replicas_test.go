package daemon_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/internal/config"
	"github.com/ratemon/ratemon/internal/keyspace"
	"github.com/ratemon/ratemon/internal/modelcheck"
	"github.com/ratemon/ratemon/internal/testenv"
	"github.com/ratemon/ratemon/internal/tracegen"
	"github.com/ratemon/ratemon/limiter"
	"github.com/ratemon/ratemon/pipeline"
)

func replicaRules() []limiter.Rule {
	return []limiter.Rule{
		{Name: "burst", Limit: 15, Window: 10 * time.Second},
		{Name: "minute", Limit: 80, Window: time.Minute},
		{Name: "shadow", Limit: 40, Window: 30 * time.Second, Action: limiter.ActionShadow},
		{Name: "fixed", Limit: 10, Window: 5 * time.Second, DenyFor: 2 * time.Minute},
		{Name: "per-route", Key: []limiter.Field{limiter.FieldClient, limiter.FieldRoute}, Limit: 12, Window: 20 * time.Second},
	}
}

// TestDaemon_replicas runs three daemons on one Redis prefix, one events
// stream and one durable consumer, with evaluation by the workers' consumer
// group, and publishes a trace while one daemon is stopped and another
// started, then a second one stopped: the durable consumer and the consumer
// group rebalance, and the counts and flags equal the reference model's,
// so nothing was lost or counted twice.
func TestDaemon_replicas(t *testing.T) {
	n := testenv.StartNATS(t)
	rdb := testenv.Redis(t)
	names := newShared(t, testenv.Prefix(t, rdb))
	started := time.Now()
	now := started.UnixMilli()
	clock := limiter.FixedClock(time.UnixMilli(now))
	edit := func(c *config.Config) {
		names.apply(c)
		c.Ingest.Evaluation = pipeline.EvaluateWorkers
		c.Ingest.BatchSize = 10 // small batches, so that every replica gets some
		c.Workers.Shards = 4
		c.Workers.ClaimIdle = time.Second
	}
	var regs []*prometheus.Registry
	start := func() *running {
		reg := prometheus.NewRegistry()
		regs = append(regs, reg)
		return startDaemonWith(t, n.URL(), replicaRules(), edit, withClock(clock), withRegistry(reg))
	}
	d := []*running{start(), start(), start()}

	trace := tracegen.Generate(tracegen.Options{
		Seed: 21, Now: now, Span: 80 * time.Second, Events: 6000, Clients: 40, Zipf: 1.2,
		OutOfOrder: 0.3, Jitter: 3 * time.Second, Late: 0.02, Duplicates: 0.05,
		Edges: []time.Duration{10 * time.Second, time.Minute, 5 * time.Second}, BurstSize: 15, MaxWeight: 2,
		Routes: []string{"GET /stocks/{symbol}/history", "POST /login"},
	})
	subjects, err := keyspace.NewSubjects(names.subjects)
	require.NoError(t, err)
	js, err := jetstream.New(n.Connect(t))
	require.NoError(t, err)
	p := &publisher{js: js, subject: subjects.Events("stocks")}
	release := p.holdBefore(100)
	t.Cleanup(release)
	done := p.start(t.Context(), trace, 20, 5*time.Millisecond) // 300 messages

	p.waitSent(t, 60)
	d[0].stop(t) // one replica leaves under load
	p.waitSent(t, 90)
	// Another joins. The publisher holds the rest of the trace until it is
	// ready (its start can take longer than publishing the rest on a loaded
	// machine), and a replica is stopped only once the new one has a share.
	d = append(d, start())
	release()
	joined := regs[len(regs)-1]
	require.Eventually(t, func() bool {
		return counter(t, joined, "ratemon_ingest_messages_total", "result", "ok") > 0
	}, 30*time.Second, 5*time.Millisecond, "the replica that joined got no message")
	p.waitSent(t, 250)
	d[1].stop(t)
	require.NoError(t, <-done)
	t.Logf("published %d messages (%d retries)", p.count(), p.retries)

	waitDrained(t, js, names.stream, config.DefaultNATSConsumer, 30*time.Second)
	keys, err := keyspace.NewRedis(names.prefix)
	require.NoError(t, err)
	waitNotices(t, rdb, keys, 4, 30*time.Second)

	rs := ruleset(t, replicaRules())
	model := modelOf(rs, now, trace)
	// The flags were written by the workers of the replicas, before the
	// comparison below evaluates anything itself.
	elapsed := time.Since(started).Milliseconds()
	denied := 0
	for _, k := range model.Keys() {
		want := model.Evaluate(now, k)
		if want.Deny.Until-now <= elapsed+1000 {
			continue // its TTL may have run out in real time
		}
		require.Equal(t, int64(1), rdb.Exists(t.Context(), keys.Deny(string(k))).Val(), "no deny flag on %s", k)
		denied++
	}
	require.Positive(t, denied)

	st, err := limiter.NewStore(limiter.StoreOptions{Client: rdb, Keys: keys, Clock: clock})
	require.NoError(t, err)
	rep, err := modelcheck.Compare(t.Context(), modelcheck.Options{
		Store: st, Rules: rs, Redis: rdb, Keys: keys, Model: model, Now: now, Started: started,
	})
	require.NoError(t, err)
	require.Empty(t, rep.Mismatches)
	require.Positive(t, rep.Over)

	total := 0.0
	for i, reg := range regs {
		ok := counter(t, reg, "ratemon_ingest_messages_total", "result", "ok")
		evals := counter(t, reg, "ratemon_worker_evaluations_total")
		t.Logf("replica %d: %v messages, %v evaluations", i, ok, evals)
		require.Positive(t, ok, "replica %d got no share of the messages", i)
		total += ok
	}
	require.GreaterOrEqual(t, total, float64(p.count()), "every message was handled by some replica")
	for _, r := range d {
		r.stop(t)
	}
}

// waitNotices polls until every work notice of every shard was delivered
// to a worker and acknowledged.
func waitNotices(t *testing.T, rdb redis.UniversalClient, keys keyspace.Redis, shards int, timeout time.Duration) {
	t.Helper()
	ctx := t.Context()
	require.Eventually(t, func() bool {
		for s := range shards {
			p, err := rdb.XPending(ctx, keys.Work(s), "ratemon").Result()
			switch {
			case err != nil && strings.HasPrefix(err.Error(), "NOGROUP"):
				continue
			case err != nil && !errors.Is(err, redis.Nil):
				return false
			case p != nil && p.Count > 0:
				return false
			}
			groups, err := rdb.XInfoGroups(ctx, keys.Work(s)).Result()
			if err != nil {
				continue // no stream yet: no notice
			}
			for _, g := range groups {
				if g.Name == "ratemon" && g.Lag != 0 {
					return false
				}
			}
		}
		return true
	}, timeout, 20*time.Millisecond, "work notices left unhandled")
}
