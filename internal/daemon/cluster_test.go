package daemon_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/internal/config"
	"github.com/ratemon/ratemon/internal/daemon"
	"github.com/ratemon/ratemon/internal/keyspace"
	"github.com/ratemon/ratemon/internal/modelcheck"
	"github.com/ratemon/ratemon/internal/testenv"
	"github.com/ratemon/ratemon/internal/tracegen"
	"github.com/ratemon/ratemon/limiter"
	"github.com/ratemon/ratemon/pipeline"
)

// FailoverWindow is the documented bound of what a Redis master failover
// may lose (docs/RELIABILITY.md, "Redis Cluster failover"): writes that the
// old master acknowledged but had not yet sent to its replica. Replication
// lag on a healthy link is well under a millisecond; the test allows the
// events acknowledged by JetStream in the last FailoverWindow before the
// crash, on the keys of the master that crashed.
const FailoverWindow = time.Second

func clusterRules() []limiter.Rule {
	return []limiter.Rule{
		// total counts every event of a client over the whole trace: its
		// count is the number of events stored, to measure any loss.
		{Name: "total", Limit: 1_000_000, Window: 5 * time.Minute, Action: limiter.ActionAlert},
		{Name: "minute", Limit: 60, Window: time.Minute},
		{Name: "per-route", Key: []limiter.Field{limiter.FieldClient, limiter.FieldRoute}, Limit: 15, Window: 20 * time.Second},
	}
}

// TestDaemon_redisClusterFailover runs two daemons on a three-master Redis
// Cluster (one replica each), with evaluation by the workers' consumer
// group so that the work shards spread over the masters, and kills the
// busiest master with SIGKILL under load. The daemons stay up, retry, and
// resume on the promoted replica. Keys of the surviving masters match the
// model exactly; keys of the failed master may only miss events acknowledged
// within FailoverWindow before the crash, and are never counted twice.
func TestDaemon_redisClusterFailover(t *testing.T) {
	cluster := testenv.StartRedisCluster(t)
	n := testenv.StartNATS(t)
	cc := cluster.Client(t)
	names := newShared(t, "rmtest-"+testenv.Name(t))
	started := time.Now()
	now := started.UnixMilli()
	clock := limiter.FixedClock(time.UnixMilli(now))
	edit := func(c *config.Config) {
		names.apply(c)
		c.Redis.URL = cluster.URL()
		c.Ingest.Evaluation = pipeline.EvaluateWorkers
		c.Ingest.BatchSize = 20
		c.Workers.ClaimIdle = 2 * time.Second
	}
	regs := []*prometheus.Registry{prometheus.NewRegistry(), prometheus.NewRegistry()}
	d := []*running{
		startDaemonWith(t, n.URL(), clusterRules(), edit, withClock(clock), withRegistry(regs[0])),
		startDaemonWith(t, n.URL(), clusterRules(), edit, withClock(clock), withRegistry(regs[1])),
	}
	trace := tracegen.Generate(tracegen.Options{
		Seed: 13, Now: now, Span: 60 * time.Second, Events: 8000, Clients: 120, Zipf: 1.1,
		OutOfOrder: 0.2, Jitter: 2 * time.Second, Duplicates: 0.03, MaxWeight: 2,
		Routes: []string{"GET /stocks/{symbol}/history", "POST /login"},
	})
	rs := ruleset(t, clusterRules())
	keys, err := keyspace.NewRedis(names.prefix)
	require.NoError(t, err)

	// Which master holds which limit key, and the busiest master.
	ctx := t.Context()
	owner := map[limiter.LimitKey]string{}
	load := map[string]int{}
	var hits []limiter.Hit
	for i := range trace {
		hits = rs.Match(hits[:0], &trace[i])
		for _, h := range hits {
			if _, ok := owner[h.Key]; !ok {
				m, err := cc.MasterForKey(ctx, keys.State(string(h.Key)))
				require.NoError(t, err)
				owner[h.Key] = m.Options().Addr
			}
			load[owner[h.Key]]++
		}
	}
	require.Len(t, load, 3, "the keys must spread over every master")
	victim := ""
	for addr, l := range load {
		if victim == "" || l > load[victim] {
			victim = addr
		}
	}

	// A client built as the daemon builds its own, which has read the slot
	// map before the crash.
	rcfg := config.RedisConfig{URL: cluster.URL()}
	rcfg.SetDefaults()
	rdb, err := daemon.NewRedis(rcfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = rdb.Close() })
	var victimKey string
	for k, addr := range owner {
		if addr == victim {
			victimKey = keys.State(string(k))
			break
		}
	}
	require.NoError(t, rdb.Exists(ctx, victimKey).Err())

	subjects, err := keyspace.NewSubjects(names.subjects)
	require.NoError(t, err)
	js, err := jetstream.New(n.Connect(t))
	require.NoError(t, err)
	p := &publisher{js: js, subject: subjects.Events("stocks")}
	done := p.start(ctx, trace, 20, 10*time.Millisecond) // ~410 messages in ~4s
	p.waitSent(t, 120)
	killed := time.Now()
	cluster.KillMaster(victim)
	fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	cluster.WaitFailover(fctx)
	cancel()
	t.Logf("master %s killed; its replica took over in %v", victim, time.Since(killed))
	// The client drops the dead master at once, not after go-redis's
	// one-minute slot map refresh.
	require.Eventually(t, func() bool { return rdb.Exists(ctx, victimKey).Err() == nil }, 2*time.Second, 10*time.Millisecond,
		"the client still sends the dead master's slots to it")
	require.NoError(t, <-done)
	waitDrained(t, js, names.stream, config.DefaultNATSConsumer, 45*time.Second)

	errs := 0.0
	for i, r := range d {
		code, _ := get(t, r.base+"/readyz")
		require.Equal(t, http.StatusOK, code, "daemon %d did not recover", i)
		e := counter(t, regs[i], "ratemon_pipeline_errors_total", "system", "redis")
		t.Logf("daemon %d: %v redis errors, %v batches retried", i, e,
			counter(t, regs[i], "ratemon_ingest_messages_total", "result", "retry"))
		errs += e
	}
	require.Positive(t, errs, "the failover went unnoticed: the test did not test it")

	// Compare every key with the model.
	model := modelOf(rs, now, trace)
	st, err := limiter.NewStore(limiter.StoreOptions{Client: rdb, Keys: keys, Clock: clock})
	require.NoError(t, err)
	evals, err := st.Evaluate(ctx, rs, model.Keys())
	require.NoError(t, err)
	var lost int64
	for _, ev := range evals {
		want := model.Evaluate(now, ev.Key)
		for i, w := range want.Rules {
			g := ev.Rules[i]
			require.LessOrEqual(t, g.Count, w.Count, "%s %s counted more than the model: counted twice", ev.Key, w.Rule)
			if owner[ev.Key] != victim {
				require.Equal(t, []any{w.Rule, w.Count, w.Over, w.Until}, []any{g.Rule, g.Count, g.Over, g.Until},
					"%s on a surviving master differs from the model", ev.Key)
			}
			if w.Rule == "total" {
				lost += w.Count - g.Count
			}
		}
	}
	allowed := windowWeight(rs, p.sent, owner, victim, killed)
	t.Logf("failover lost %d events (weight); the window allows %d", lost, allowed)
	require.LessOrEqual(t, lost, allowed, "lost more than the events acknowledged in the failover window")
	if lost == 0 {
		rep, err := modelcheck.Compare(ctx, modelcheck.Options{
			Store: st, Rules: rs, Redis: rdb, Keys: keys, Model: model, Now: now, Started: started,
		})
		require.NoError(t, err)
		require.Empty(t, rep.Mismatches)
	}
	for _, r := range d {
		r.stop(t)
	}
}

// windowWeight sums the weight, counted by the rule "total", of the events
// on the victim's keys whose message JetStream acknowledged within
// FailoverWindow before the crash.
func windowWeight(rs *limiter.Ruleset, msgs []sent, owner map[limiter.LimitKey]string, victim string, crash time.Time) int64 {
	var w int64
	var hits []limiter.Hit
	for _, m := range msgs {
		if m.acked.Before(crash.Add(-FailoverWindow)) || m.acked.After(crash) {
			continue
		}
		for i := range m.events {
			e := m.events[i]
			hits = rs.Match(hits[:0], &e)
			for _, h := range hits {
				if owner[h.Key] == victim && h.Key == limiter.LimitKey("client="+e.Client) {
					w += e.Weight
				}
			}
		}
	}
	return w
}
