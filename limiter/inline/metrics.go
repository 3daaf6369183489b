package inline

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Drop reasons, the values of the reason label of
// ratemon_inline_events_dropped_total.
const (
	DropBufferFull = "buffer_full" // every batch buffer was waiting to be sent
	DropNATSDown   = "nats_down"   // a batch could not be sent within RetryFor
	DropClosed     = "closed"      // Publish after Close, or left over when Close gave up
)

// Metrics are the inline package's Prometheus metrics. One Metrics serves
// every Checker and Publisher of a process; build it once per registry.
type Metrics struct {
	EventsPublished prometheus.Counter
	EventsDropped   *prometheus.CounterVec // reason
	Batches         *prometheus.CounterVec // result: ok, retry, dropped
	Checks          *CheckCounts           // source: local, redis, policy; result: allowed, denied
	FeedUp          prometheus.Gauge
	FeedLosses      prometheus.Counter
	Reloads         *prometheus.CounterVec // result: ok, error
	Decisions       *prometheus.CounterVec // result: deny, allow, ignored, invalid
	DeniedKeys      prometheus.Gauge

	droppedFull, droppedDown, droppedClosed prometheus.Counter // children of EventsDropped
}

// NewMetrics registers the metrics on reg. A nil reg gives metrics that
// count but are registered nowhere.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	m := &Metrics{
		EventsPublished: f.NewCounter(prometheus.CounterOpts{
			Name: "ratemon_inline_events_published_total", Help: "Request events sent to NATS by inline publishers.",
		}),
		EventsDropped: f.NewCounterVec(prometheus.CounterOpts{
			Name: "ratemon_inline_events_dropped_total", Help: "Request events inline publishers gave up on, by reason.",
		}, []string{"reason"}),
		Batches: f.NewCounterVec(prometheus.CounterOpts{
			Name: "ratemon_inline_batches_total", Help: "Event batches (one NATS message each) by result: ok, retry, dropped.",
		}, []string{"result"}),
		Checks: &CheckCounts{},
		FeedUp: f.NewGauge(prometheus.GaugeOpts{
			Name: "ratemon_inline_feed_up", Help: "1 while the decision feed is live and the local deny set is in sync.",
		}),
		FeedLosses: f.NewCounter(prometheus.CounterOpts{
			Name: "ratemon_inline_feed_losses_total", Help: "Times the decision feed was lost and checks fell back to Redis.",
		}),
		Reloads: f.NewCounterVec(prometheus.CounterOpts{
			Name: "ratemon_inline_reloads_total", Help: "Loads of the deny set from Redis, by result.",
		}, []string{"result"}),
		Decisions: f.NewCounterVec(prometheus.CounterOpts{
			Name: "ratemon_inline_decisions_total", Help: "Decisions received on the feed, by result: deny, allow, ignored, invalid.",
		}, []string{"result"}),
		DeniedKeys: f.NewGauge(prometheus.GaugeOpts{
			Name: "ratemon_inline_denied_keys", Help: "Limit keys in the local deny set.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.Checks)
	}
	m.droppedFull = m.EventsDropped.WithLabelValues(DropBufferFull)
	m.droppedDown = m.EventsDropped.WithLabelValues(DropNATSDown)
	m.droppedClosed = m.EventsDropped.WithLabelValues(DropClosed)
	for _, r := range []string{"ok", "retry", "dropped"} {
		m.Batches.WithLabelValues(r)
	}
	for _, r := range []string{"ok", "error"} {
		m.Reloads.WithLabelValues(r)
	}
	for _, r := range []string{"deny", "allow", "ignored", "invalid"} {
		m.Decisions.WithLabelValues(r)
	}
	return m
}

// checkSources lists the sources in the order of CheckCounts' counters.
func checkSources() [3]Source { return [3]Source{SourceLocal, SourceRedis, SourcePolicy} }

// checksDesc describes ratemon_inline_checks_total.
func checksDesc() *prometheus.Desc {
	return prometheus.NewDesc("ratemon_inline_checks_total",
		"Inline checks by source of the answer (local, redis, policy) and result.", []string{"source", "result"}, nil)
}

// CheckCounts counts checks by source and result. Every check counts, on
// every core, so each counter is striped over cache lines: checks on
// different cores do not contend on one atomic. It is a
// prometheus.Collector of ratemon_inline_checks_total.
type CheckCounts struct {
	c [3][2]stripes // by source index, then 0 allowed / 1 denied
}

// stripes is one counter spread over 16 cache lines.
type stripes [16]struct {
	n atomic.Uint64
	_ [56]byte
}

func (s *stripes) sum() uint64 {
	var n uint64
	for i := range s {
		n += s[i].n.Load()
	}
	return n
}

func sourceIndex(s Source) int {
	switch s {
	case SourceLocal:
		return 0
	case SourceRedis:
		return 1
	}
	return 2
}

func resultIndex(denied bool) int {
	if denied {
		return 1
	}
	return 0
}

// add counts one check; hint spreads the writers over the stripes.
func (c *CheckCounts) add(s Source, denied bool, hint uint64) {
	c.c[sourceIndex(s)][resultIndex(denied)][hint&15].n.Add(1)
}

// Count returns the number of checks answered by s with the given result.
func (c *CheckCounts) Count(s Source, denied bool) uint64 {
	return c.c[sourceIndex(s)][resultIndex(denied)].sum()
}

// Describe implements prometheus.Collector.
func (c *CheckCounts) Describe(ch chan<- *prometheus.Desc) { ch <- checksDesc() }

// Collect implements prometheus.Collector.
func (c *CheckCounts) Collect(ch chan<- prometheus.Metric) {
	d := checksDesc()
	for _, s := range checkSources() {
		for _, denied := range []bool{false, true} {
			result := "allowed"
			if denied {
				result = "denied"
			}
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(c.Count(s, denied)), string(s), result)
		}
	}
}
