package daemon_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/internal/config"
	"github.com/ratemon/ratemon/internal/keyspace"
	"github.com/ratemon/ratemon/internal/modelcheck"
	"github.com/ratemon/ratemon/internal/testenv"
	"github.com/ratemon/ratemon/internal/tracegen"
	"github.com/ratemon/ratemon/limiter"
)

// TestDaemon_natsClusterNodeKilled runs a daemon on a three-node JetStream
// cluster, with the events stream, the dead-letter stream and the durable
// consumer replicated three times, and shuts down the node that leads the
// consumer while events are published, then brings it back. The publisher
// retries what was not acknowledged (with a message id); the daemon
// reconnects to another node and resumes on the new consumer leader.
// Every acknowledged event is counted exactly once: the store equals the
// model.
func TestDaemon_natsClusterNodeKilled(t *testing.T) {
	nc := testenv.StartNATSCluster(t)
	rdb := testenv.Redis(t)
	names := newShared(t, testenv.Prefix(t, rdb))
	started := time.Now()
	now := started.UnixMilli()
	clock := limiter.FixedClock(time.UnixMilli(now))
	edit := func(c *config.Config) {
		names.apply(c)
		c.NATS.Replicas = 3
		c.Ingest.BatchSize = 20
	}
	r := startDaemonWith(t, nc.URL(), replicaRules(), edit, withClock(clock))

	js, err := jetstream.New(nc.Connect(t))
	require.NoError(t, err)
	ctx := t.Context()
	cons, err := js.Consumer(ctx, names.stream, config.DefaultNATSConsumer)
	require.NoError(t, err)
	info, err := cons.Info(ctx)
	require.NoError(t, err)
	require.NotNil(t, info.Cluster)
	require.Len(t, info.Cluster.Replicas, 2, "the consumer has three replicas")
	leader := info.Cluster.Leader
	victim := nc.Node(int(leader[len(leader)-1] - '1'))
	require.Equal(t, leader, victim.Name())

	trace := tracegen.Generate(tracegen.Options{
		Seed: 17, Now: now, Span: 80 * time.Second, Events: 5000, Clients: 40, Zipf: 1.2,
		OutOfOrder: 0.3, Jitter: 3 * time.Second, Duplicates: 0.05,
		Edges: []time.Duration{10 * time.Second, time.Minute}, BurstSize: 15,
		Routes: []string{"GET /stocks/{symbol}/history", "POST /login"},
	})
	subjects, err := keyspace.NewSubjects(names.subjects)
	require.NoError(t, err)
	p := &publisher{js: js, subject: subjects.Events("stocks")}
	done := p.start(ctx, trace, 20, 10*time.Millisecond) // ~260 messages
	p.waitSent(t, 80)
	victim.Shutdown()
	t.Logf("%v: node %s (consumer leader) shut down after %d messages", time.Since(started), leader, p.count())
	p.waitSent(t, 180)
	victim.Restart()
	t.Logf("%v: node %s restarted", time.Since(started), leader)
	require.NoError(t, <-done)
	t.Logf("%v: published %d messages, %d publish retries", time.Since(started), p.count(), p.retries)
	waitDrained(t, js, names.stream, config.DefaultNATSConsumer, 50*time.Second)
	info, err = cons.Info(ctx)
	require.NoError(t, err)
	t.Logf("%v: consumer leader now %s; delivered %d, redelivered %d", time.Since(started), info.Cluster.Leader, info.Delivered.Consumer, info.NumRedelivered)

	rs := ruleset(t, replicaRules())
	keys, err := keyspace.NewRedis(names.prefix)
	require.NoError(t, err)
	st, err := limiter.NewStore(limiter.StoreOptions{Client: rdb, Keys: keys, Clock: clock})
	require.NoError(t, err)
	rep, err := modelcheck.Compare(ctx, modelcheck.Options{
		Store: st, Rules: rs, Redis: rdb, Keys: keys, Model: modelOf(rs, now, trace), Now: now, Started: started,
	})
	require.NoError(t, err)
	require.Empty(t, rep.Mismatches, "an acknowledged event was lost or counted twice")
	require.Positive(t, rep.Over)

	code, body := get(t, r.base+"/readyz")
	require.Equal(t, http.StatusOK, code, string(body))
	require.NotContains(t, string(body), "nats")
	r.stop(t)
}
