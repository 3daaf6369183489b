package inline_test

import (
	"os"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/internal/testenv"
	"github.com/ratemon/ratemon/limiter/inline"
	"github.com/ratemon/ratemon/pipeline/event"
)

// benchEvent is a typical request event.
func benchEvent() event.Event {
	return event.Event{Client: "key-0000300", TS: 1_767_225_600_000, Service: "stocks", Route: "GET /stocks/{symbol}/history",
		Method: "GET", IP: "192.0.2.1", Status: 200, Weight: 1}
}

// TestPublisher_overheadAt100k publishes at 100,000 events per second (in
// bursts every millisecond, as requests arrive) and logs how long each
// Publish call takes: p50, p99, max and mean, and the drops. It runs for
// RATEMON_PUBLISH_SECONDS (default 0.3).
func TestPublisher_overheadAt100k(t *testing.T) {
	seconds := 0.3
	if v := os.Getenv("RATEMON_PUBLISH_SECONDS"); v != "" {
		var err error
		seconds, err = strconv.ParseFloat(v, 64)
		require.NoError(t, err)
	}
	const rate = 100_000
	n := testenv.StartNATS(t)
	m := inline.NewMetrics(nil)
	p, _ := startPublisher(t, inline.PublisherOptions{NATS: n.Connect(t), Service: "stocks", Metrics: m})
	total := int(seconds * rate)
	took := make([]time.Duration, 0, total)
	e := benchEvent()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	for i := 0; i < total; {
		due := min(int(time.Since(start)*rate/time.Second), total)
		for ; i < due; i++ {
			t0 := time.Now()
			p.PublishTimed(&e, 1234*time.Microsecond)
			took = append(took, time.Since(t0))
		}
		time.Sleep(200 * time.Microsecond)
	}
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	require.NoError(t, p.Close(t.Context()))
	slices.Sort(took)
	var sum time.Duration
	for _, d := range took {
		sum += d
	}
	pub := testutil.ToFloat64(m.EventsPublished)
	var dropped float64
	for _, r := range []string{inline.DropBufferFull, inline.DropNATSDown, inline.DropClosed} {
		dropped += testutil.ToFloat64(m.EventsDropped.WithLabelValues(r))
	}
	t.Logf("%d events in %v (%.0f/s, race %v): Publish p50 %v p99 %v max %v mean %v; published %.0f dropped %.0f; "+
		"process mallocs per event %.3f (publisher, sender and the in-process NATS server)",
		total, elapsed.Round(time.Millisecond), float64(total)/elapsed.Seconds(), raceEnabled,
		took[len(took)/2], took[len(took)*99/100], took[len(took)-1], sum/time.Duration(len(took)),
		pub, dropped, float64(after.Mallocs-before.Mallocs)/float64(total))
	require.InDelta(t, float64(total), pub+dropped, 0, "every event is either published or counted as dropped")
}
