package pipeline_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/limiter"
	"github.com/ratemon/ratemon/pipeline"
	"github.com/ratemon/ratemon/pipeline/event"
)

// countOf reads a client's count under the rule "minute" without writing.
func countOf(t *testing.T, h *harness, client string) int64 {
	t.Helper()
	res, err := h.store.Check(t.Context(), h.rules, event.Event{Client: client, Weight: 1})
	require.NoError(t, err)
	require.Len(t, res.Rules, 1)
	return res.Rules[0].Count
}

// A key far from its limit has its events held for ingest.hold (10 s,
// longer than the test takes), from its first events on: the daemon reads
// the room of a key it has never sent from its state (Store.Peek) instead
// of evaluating it. A key whose new events cross its limit is evaluated,
// with what it had held, in the batch that brings them: its deny flag is
// written while the others' events still wait. Stopping the pipeline sends
// what is held, and then every count equals the model's.
func TestPipeline_holdsKeysFarFromTheirLimits(t *testing.T) {
	started := time.Now()
	now := started.UnixMilli()
	clock := limiter.FixedClock(time.UnixMilli(now))
	rules := []limiter.Rule{{Name: "minute", Limit: 50, Window: time.Minute}}
	h := newHarnessAck(t, rules, clock, pipeline.EvaluateInline, 2*time.Minute)
	h.tune = func(c *pipeline.IngestConfig) { c.Hold = 10 * time.Second } // the longest allowed
	h.wholeFirstHold = true                                               // every key holds its first events 10 s
	stop := h.start(nil)

	const clients = 20
	var trace []event.Event
	phase := func(client int, n int, at int64) {
		for i := range n {
			trace = append(trace, event.Event{Client: fmt.Sprintf("c%d", client), TS: at + int64(i), Weight: 1})
		}
	}
	// 1: five events per client, one message each. The keys are new: their
	// states say a room of 50, and 5 < 50, so all are held, unacknowledged.
	for c := range clients {
		phase(c, 5, now-30000)
		h.publish("svc", trace[len(trace)-5:], 5)
	}
	require.Eventually(t, func() bool {
		return testutilValue(h.metrics.HeldEvents) == 5*clients
	}, 30*time.Second, 10*time.Millisecond, "phase 1 events held")
	require.Equal(t, clients, int(testutilValue(h.metrics.HoldPeeks.WithLabelValues("room"))))
	require.Zero(t, testutilValue(h.metrics.HoldSends.WithLabelValues("near")), "no key was sent to learn its room")
	require.Zero(t, countOf(t, h, "c0"), "held events are not in redis yet")

	// 2: five more each; 10 < 50, still held.
	for c := range clients {
		phase(c, 5, now-20000)
		h.publish("svc", trace[len(trace)-5:], 5)
	}
	require.Eventually(t, func() bool {
		return testutilValue(h.metrics.HeldEvents) == 10*clients
	}, 30*time.Second, 10*time.Millisecond, "phase 2 events held")
	require.Zero(t, countOf(t, h, "c0"))

	// 3: c0 sends 45 more (55 > 50): it is evaluated at once, with its held
	// ten, and denied; the other keys' events still wait.
	phase(0, 45, now-10000)
	h.publish("svc", trace[len(trace)-45:], 45)
	require.Eventually(t, func() bool {
		flags, err := h.store.Flags(t.Context(), limiter.FlagDeny)
		return err == nil && len(flags) == 1 && string(flags[0].Key) == "client=c0"
	}, 30*time.Second, 10*time.Millisecond, "c0 denied")
	require.Equal(t, int64(55), countOf(t, h, "c0"))
	require.Zero(t, countOf(t, h, "c1"), "c1's events still held")
	require.Equal(t, 1, int(testutilValue(h.metrics.HoldSends.WithLabelValues("near"))))

	// Stopping sends the rest and acknowledges every message.
	stop()
	h.waitDrained(30 * time.Second)
	require.Positive(t, testutilValue(h.metrics.HoldSends.WithLabelValues("drain")))
	for c := 1; c < clients; c++ {
		require.Equal(t, int64(10), countOf(t, h, fmt.Sprintf("c%d", c)))
	}
	require.GreaterOrEqual(t, histogramCount(t, h.metrics.Delivery), uint64(2*clients+1), "one delivery time per message")
	compare(t, h, modelOf(h.rules, now, trace), now, started)
}

// Held events go to Redis once the first of them has waited ingest.hold,
// without any further batch.
func TestPipeline_heldEventsAreSentAfterHold(t *testing.T) {
	started := time.Now()
	now := started.UnixMilli()
	clock := limiter.FixedClock(time.UnixMilli(now))
	h := newHarness(t, []limiter.Rule{{Name: "minute", Limit: 1000, Window: time.Minute}}, clock)
	h.tune = func(c *pipeline.IngestConfig) { c.Hold = 200 * time.Millisecond }
	h.start(nil)
	var trace []event.Event
	for round := range 3 {
		for c := range 10 {
			e := event.Event{Client: fmt.Sprintf("c%d", c), TS: now - 5000 + int64(round), Weight: 1}
			trace = append(trace, e)
			h.publish("svc", []event.Event{e}, 1)
		}
	}
	h.waitDrained(30 * time.Second)
	require.Positive(t, testutilValue(h.metrics.HoldSends.WithLabelValues("age")))
	for c := range 10 {
		require.Equal(t, int64(3), countOf(t, h, fmt.Sprintf("c%d", c)))
	}
	compare(t, h, modelOf(h.rules, now, trace), now, started)
}

// ingest.hold below zero turns holding off: every batch sends every key
// it touches, and the holder's metrics stay at zero.
func TestPipeline_negativeHoldTurnsHoldingOff(t *testing.T) {
	started := time.Now()
	now := started.UnixMilli()
	clock := limiter.FixedClock(time.UnixMilli(now))
	h := newHarness(t, []limiter.Rule{{Name: "minute", Limit: 1000, Window: time.Minute}}, clock)
	h.tune = func(c *pipeline.IngestConfig) { c.Hold = -time.Second }
	h.start(nil)
	var trace []event.Event
	for round := range 2 {
		e := event.Event{Client: "c0", TS: now - 5000 + int64(round), Weight: 1}
		trace = append(trace, e)
		h.publish("svc", []event.Event{e}, 1)
		h.waitDrained(30 * time.Second)
		require.Equal(t, int64(round+1), countOf(t, h, "c0"), "stored with its own batch")
	}
	for _, reason := range []string{"near", "age", "full", "drain"} {
		require.Zero(t, testutilValue(h.metrics.HoldSends.WithLabelValues(reason)), reason)
	}
	compare(t, h, modelOf(h.rules, now, trace), now, started)
}
