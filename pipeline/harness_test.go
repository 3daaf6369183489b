package pipeline_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/internal/keyspace"
	"github.com/ratemon/ratemon/internal/testenv"
	"github.com/ratemon/ratemon/limiter"
	"github.com/ratemon/ratemon/pipeline"
	"github.com/ratemon/ratemon/pipeline/event"
)

// harness is one pipeline (ingest + worker) on an in-process NATS server and
// the shared Redis, with names private to the test.
type harness struct {
	t        *testing.T
	nats     *testenv.NATS
	nc       *nats.Conn
	js       jetstream.JetStream
	rdb      *redis.Client
	keys     keyspace.Redis
	subjects keyspace.Subjects
	spec     pipeline.StreamSpec
	rules    *limiter.Ruleset
	store    *limiter.Store
	clock    limiter.Clock
	metrics  *pipeline.Metrics
	mode     pipeline.Evaluation
	tune     func(*pipeline.IngestConfig) // optional, applied to the ingest configuration by start
	// wholeFirstHold: every key holds its first events for the whole hold
	// (pipeline.IngestOptions.WholeFirstHold).
	wholeFirstHold bool
}

func newHarness(t *testing.T, rules []limiter.Rule, clock limiter.Clock) *harness {
	return newHarnessMode(t, rules, clock, pipeline.EvaluateInline)
}

// modes runs f once per evaluation mode.
func modes(t *testing.T, f func(t *testing.T, mode pipeline.Evaluation)) {
	for _, m := range []pipeline.Evaluation{pipeline.EvaluateInline, pipeline.EvaluateWorkers} {
		t.Run(string(m), func(t *testing.T) { f(t, m) })
	}
}

func newHarnessMode(t *testing.T, rules []limiter.Rule, clock limiter.Clock, mode pipeline.Evaluation) *harness {
	t.Helper()
	return newHarnessAck(t, rules, clock, mode, 2*time.Second)
}

// newHarnessAck is newHarnessMode with the consumer's ack wait.
func newHarnessAck(t *testing.T, rules []limiter.Rule, clock limiter.Clock, mode pipeline.Evaluation, ackWait time.Duration) *harness {
	t.Helper()
	h := &harness{t: t, nats: testenv.StartNATS(t), rdb: testenv.Redis(t), clock: clock, mode: mode}
	h.nc = h.nats.Connect(t)
	var err error
	h.js, err = jetstream.New(h.nc)
	require.NoError(t, err)
	name := testenv.Name(t)
	h.keys, err = keyspace.NewRedis(testenv.Prefix(t, h.rdb))
	require.NoError(t, err)
	h.subjects, err = keyspace.NewSubjects("rm" + name)
	require.NoError(t, err)
	for i := range rules {
		rules[i].SetDefaults()
	}
	h.rules, err = limiter.NewRuleset(rules)
	require.NoError(t, err)
	h.store, err = limiter.NewStore(limiter.StoreOptions{Client: h.rdb, Keys: h.keys, Clock: clock})
	require.NoError(t, err)
	require.NoError(t, h.store.Load(t.Context())) // as the daemon does: FCALL where Redis has Functions
	h.spec = pipeline.StreamSpec{
		Stream: "EV" + name, Subject: h.subjects.EventsAll(), Retention: time.Hour, Replicas: 1,
		Consumer: "ratemon", AckWait: ackWait, MaxAckPending: 10000, StartBack: time.Hour,
	}
	s, err := pipeline.EnsureStream(t.Context(), h.js, h.spec)
	require.NoError(t, err)
	_, err = pipeline.EnsureConsumer(t.Context(), s, h.spec)
	require.NoError(t, err)
	h.metrics = pipeline.NewMetrics(nil)
	return h
}

func (h *harness) consumer() jetstream.Consumer {
	c, err := h.js.Consumer(h.t.Context(), h.spec.Stream, h.spec.Consumer)
	require.NoError(h.t, err)
	return c
}

func ingestConfig(mode pipeline.Evaluation) pipeline.IngestConfig {
	c := pipeline.IngestConfig{Evaluation: mode, BatchSize: 50, Concurrency: 2, FloorRefresh: 100 * time.Millisecond}
	c.SetDefaults()
	return c
}

func workerConfig() pipeline.WorkerConfig {
	c := pipeline.WorkerConfig{Shards: 4, Block: 50 * time.Millisecond, ClaimIdle: time.Second}
	c.SetDefaults()
	return c
}

// start runs an ingest and a worker until the returned stop is called.
func (h *harness) start(afterStore func([]jetstream.Msg) error) (stop func()) {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cfg := ingestConfig(h.mode)
	if h.tune != nil {
		h.tune(&cfg)
	}
	in, err := pipeline.NewIngest(pipeline.IngestOptions{
		Config: cfg, Consumer: h.consumer(), Conn: h.nc, Subjects: h.subjects,
		Store: h.store, Redis: h.rdb, Rules: func() *limiter.Ruleset { return h.rules }, Shards: 4,
		Metrics: h.metrics, AfterStore: afterStore, Clock: h.clock, WholeFirstHold: h.wholeFirstHold,
		Decisions: pipeline.NATSDecisions{Conn: h.nc, Subject: h.subjects.Decisions()},
	})
	require.NoError(h.t, err)
	w, err := pipeline.NewWorker(pipeline.WorkerOptions{
		Config: workerConfig(), Redis: h.rdb, Store: h.store, Rules: func() *limiter.Ruleset { return h.rules },
		Decisions: pipeline.NATSDecisions{Conn: h.nc, Subject: h.subjects.Decisions()},
		Consumer:  "w-" + testenv.Name(h.t), Clock: h.clock, Metrics: h.metrics,
	})
	require.NoError(h.t, err)
	done := make(chan error, 2)
	go func() { done <- in.Run(ctx) }()
	go func() { done <- w.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		for range 2 {
			select {
			case err := <-done:
				require.NoError(h.t, err)
			case <-time.After(20 * time.Second):
				h.t.Fatal("pipeline did not stop within 20s")
			}
		}
	}
	h.t.Cleanup(stop)
	return stop
}

// publish sends events as NDJSON messages of up to per events each and
// returns how many messages it sent.
func (h *harness) publish(service string, evs []event.Event, per int) int {
	h.t.Helper()
	n := 0
	for i := 0; i < len(evs); i += per {
		var buf []byte
		for _, e := range evs[i:min(i+per, len(evs))] {
			buf = append(e.AppendJSON(buf), '\n')
		}
		h.publishRaw(service, buf)
		n++
	}
	return n
}

func (h *harness) publishRaw(service string, data []byte) {
	h.t.Helper()
	_, err := h.js.Publish(h.t.Context(), h.subjects.Events(service), data)
	require.NoError(h.t, err)
}

// waitDrained polls until every published message is acknowledged and every
// work notice evaluated. The ack floor must reach the stream's last
// message: right after a publish the consumer may not count the new
// message as pending yet.
func (h *harness) waitDrained(timeout time.Duration) {
	h.t.Helper()
	c := h.consumer()
	s, err := h.js.Stream(h.t.Context(), h.spec.Stream)
	require.NoError(h.t, err)
	require.Eventually(h.t, func() bool {
		si, err := s.Info(h.t.Context())
		if err != nil {
			return false
		}
		info, err := c.Info(h.t.Context())
		if err != nil || info.NumPending > 0 || info.NumAckPending > 0 || info.AckFloor.Stream < si.State.LastSeq {
			return false
		}
		for s := range 4 {
			p, err := h.rdb.XPending(h.t.Context(), h.keys.Work(s), "ratemon").Result()
			if err != nil && !errors.Is(err, redis.Nil) {
				if isNoGroup(err) {
					continue
				}
				return false
			}
			if p != nil && p.Count > 0 {
				return false
			}
			n, _ := h.rdb.XLen(h.t.Context(), h.keys.Work(s)).Result()
			if n > 0 {
				g, err := h.rdb.XInfoGroups(h.t.Context(), h.keys.Work(s)).Result()
				if err != nil || len(g) == 0 || g[0].Lag != 0 {
					return false
				}
			}
		}
		return true
	}, timeout, 20*time.Millisecond, "pipeline did not drain")
}

func isNoGroup(err error) bool {
	return err != nil && len(err.Error()) >= 7 && err.Error()[:7] == "NOGROUP"
}
