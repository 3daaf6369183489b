package inline_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/internal/testenv"
	"github.com/ratemon/ratemon/limiter/inline"
	"github.com/ratemon/ratemon/pipeline/event"
)

// collector gathers the events of every message on a subject.
type collector struct {
	mu     sync.Mutex
	events []event.Event
	ids    map[string]int
	msgs   int
}

func collect(t *testing.T, nc *nats.Conn, subject string) *collector {
	t.Helper()
	c := &collector{ids: map[string]int{}}
	sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
		evs, rejects := event.DecodeAll(m.Data, event.Limits{})
		c.mu.Lock()
		defer c.mu.Unlock()
		if len(rejects) > 0 {
			panic("undecodable batch: " + string(m.Data))
		}
		c.events = append(c.events, evs...)
		c.ids[m.Header.Get(nats.MsgIdHdr)]++
		c.msgs++
	})
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return c
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.events)
}

func startPublisher(t *testing.T, opts inline.PublisherOptions) (*inline.Publisher, chan error) {
	t.Helper()
	p, err := inline.NewPublisher(opts)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return p, done
}

func TestPublisher_batchesEventsToNATS(t *testing.T) {
	n := testenv.StartNATS(t)
	nc := n.Connect(t)
	prefix := testenv.Name(t)
	c := collect(t, n.Connect(t), prefix+".events.stocks")
	// No flush by time (a loaded machine took more than the default 5 ms
	// over the 1000 events, and the interval sent a part of a batch): the
	// ten full batches go when the tenth closes (a quarter of 40 buffers
	// waiting), and none is dropped meanwhile.
	p, _ := startPublisher(t, inline.PublisherOptions{NATS: nc, Service: "stocks", SubjectPrefix: prefix, BatchSize: 100,
		FlushInterval: time.Hour, Buffers: 40})
	for i := range 1000 {
		e := event.Event{Client: "acme", TS: 1_767_225_600_000 + int64(i), Route: "GET /x", Weight: 1}
		if i%2 == 0 {
			require.True(t, p.Publish(&e))
		} else {
			require.True(t, p.PublishTimed(&e, 1500*time.Microsecond))
		}
	}
	require.Eventually(t, func() bool { return c.count() == 1000 }, 5*time.Second, 5*time.Millisecond)
	c.mu.Lock()
	defer c.mu.Unlock()
	require.Equal(t, 10, c.msgs, "one message per full batch")
	require.Len(t, c.ids, 10, "every batch has its own message id")
	for id := range c.ids {
		require.NotEmpty(t, id)
	}
	for i, e := range c.events {
		require.Equal(t, "stocks", e.Service, "the publisher's service fills the gap")
		require.Equal(t, int64(1_767_225_600_000+i), e.TS, "order is kept")
	}
}

func TestPublisher_flushesOnIntervalAndClose(t *testing.T) {
	n := testenv.StartNATS(t)
	nc := n.Connect(t)
	prefix := testenv.Name(t)
	c := collect(t, n.Connect(t), prefix+".events.svc")
	p, _ := startPublisher(t, inline.PublisherOptions{NATS: nc, Service: "svc", SubjectPrefix: prefix, FlushInterval: 5 * time.Millisecond})
	p.Publish(&event.Event{Client: "a"})
	require.Eventually(t, func() bool { return c.count() == 1 }, 2*time.Second, time.Millisecond, "a lone event goes out within the interval")

	// Without Run, Close sends what is buffered.
	q, err := inline.NewPublisher(inline.PublisherOptions{NATS: nc, Service: "svc", SubjectPrefix: prefix, FlushInterval: time.Hour})
	require.NoError(t, err)
	for range 7 {
		q.Publish(&event.Event{Client: "b"})
	}
	require.NoError(t, q.Close(t.Context()))
	require.NoError(t, nc.Flush())
	require.Eventually(t, func() bool { return c.count() == 8 }, 2*time.Second, time.Millisecond)
	require.False(t, q.Publish(&event.Event{Client: "late"}), "closed")
}

func TestPublisher_JetStream(t *testing.T) {
	n := testenv.StartNATS(t)
	nc := n.Connect(t)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	prefix := testenv.Name(t)
	s, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "EV" + prefix, Subjects: []string{prefix + ".events.>"}})
	require.NoError(t, err)
	p, _ := startPublisher(t, inline.PublisherOptions{NATS: nc, JetStream: js, Service: "svc", SubjectPrefix: prefix, BatchSize: 10})
	for range 95 {
		p.Publish(&event.Event{Client: "a"})
	}
	require.NoError(t, p.Close(t.Context()))
	info, err := s.Info(t.Context())
	require.NoError(t, err)
	require.Equal(t, uint64(10), info.State.Msgs, "9 full batches and the rest, flushed by Close")

	// A retried batch carries the same message id: JetStream stores it once.
	m, err := s.GetMsg(t.Context(), 1)
	require.NoError(t, err)
	ack, err := js.PublishMsg(t.Context(), &nats.Msg{Subject: m.Subject, Data: m.Data, Header: m.Header})
	require.NoError(t, err)
	require.True(t, ack.Duplicate)
}

func TestPublisher_NATSOutage_dropsWithCountAndNeverBlocks(t *testing.T) {
	n := testenv.StartNATS(t)
	nc := n.Connect(t)
	prefix := testenv.Name(t)
	reg := prometheus.NewPedanticRegistry()
	m := inline.NewMetrics(reg)
	p, _ := startPublisher(t, inline.PublisherOptions{NATS: nc, Service: "svc", SubjectPrefix: prefix,
		BatchSize: 10, Buffers: 4, RetryFor: 300 * time.Millisecond, Metrics: m})

	n.Shutdown()
	require.Eventually(t, func() bool { return !nc.IsConnected() }, 5*time.Second, time.Millisecond)
	const total = 20000
	var slowest time.Duration
	start := time.Now()
	for range total {
		t0 := time.Now()
		p.Publish(&event.Event{Client: "a"})
		slowest = max(slowest, time.Since(t0))
	}
	elapsed := time.Since(start)
	t.Logf("%d publishes during the outage in %v, slowest %v", total, elapsed, slowest)
	require.Less(t, slowest, 100*time.Millisecond, "Publish never waits for NATS")
	require.Less(t, elapsed, 5*time.Second)

	dropped := func(reason string) float64 { return testutil.ToFloat64(m.EventsDropped.WithLabelValues(reason)) }
	require.Greater(t, dropped(inline.DropBufferFull), float64(total-4*10-10))
	require.Eventually(t, func() bool { return dropped(inline.DropNATSDown) > 0 }, 5*time.Second, 5*time.Millisecond,
		"batches that cannot be sent within RetryFor are dropped and counted")

	// NATS comes back: events flow again.
	n.Restart()
	c := collect(t, n.Connect(t), prefix+".events.svc")
	require.Eventually(t, func() bool { return nc.IsConnected() }, 10*time.Second, 5*time.Millisecond)
	require.Eventually(t, func() bool {
		p.Publish(&event.Event{Client: "after"})
		return c.count() > 0
	}, 10*time.Second, 20*time.Millisecond)
	require.Positive(t, testutil.ToFloat64(m.EventsPublished))
	metrics, err := testutil.GatherAndCount(reg, "ratemon_inline_events_dropped_total")
	require.NoError(t, err)
	require.Equal(t, 3, metrics, "every reason is exported from the start")
}

func TestPublisher_Publish_doesNotAllocate(t *testing.T) {
	n := testenv.StartNATS(t)
	p, err := inline.NewPublisher(inline.PublisherOptions{NATS: n.Connect(t), Service: "svc", BatchSize: 1 << 20, Buffers: 1})
	require.NoError(t, err)
	e := event.Event{Client: "acme", TS: 1_767_225_600_000, Service: "stocks", Route: "GET /stocks/{symbol}/history",
		Method: "GET", IP: "192.0.2.1", Status: 200, Weight: 1}
	allocs := testing.AllocsPerRun(10000, func() { p.PublishTimed(&e, 1234*time.Microsecond) })
	require.Zero(t, allocs)
}
