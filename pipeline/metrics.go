package pipeline

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/ratemon/ratemon/limiter"
	"github.com/ratemon/ratemon/pipeline/event"
)

// maxServiceLabels bounds the distinct values of the service label: anyone
// can publish on a new subject, and a label per subject would let them grow
// the metrics without bound. Later services are counted as "other".
const maxServiceLabels = 200

// Metrics are the pipeline's Prometheus metrics.
type Metrics struct {
	Messages       *prometheus.CounterVec // result: ok, dead, redelivered, retry
	Events         *prometheus.CounterVec // service, result: accepted, rejected
	Rejected       *prometheus.CounterVec // reason
	Clamped        prometheus.Counter
	Duplicates     *prometheus.CounterVec // kind: message, id
	Late           prometheus.Counter
	BatchSize      prometheus.Histogram
	BatchSeconds   *prometheus.HistogramVec // stage: ingest, evaluate
	Evaluations    prometheus.Counter
	Decisions      *prometheus.CounterVec // kind, allowed
	DeniesSet      *prometheus.CounterVec // rule
	ShadowSet      *prometheus.CounterVec // rule
	DetectionLag   prometheus.Histogram
	Errors         *prometheus.CounterVec // system: redis, nats; op
	NoticesPending *prometheus.GaugeVec   // shard
	NoticesLag     *prometheus.GaugeVec   // shard
	OldestPending  *prometheus.GaugeVec   // shard
	StreamPending  prometheus.Gauge
	StreamAcks     prometheus.Gauge
	HeldEvents     prometheus.Gauge
	HeldMessages   prometheus.Gauge
	HoldSends      *prometheus.CounterVec // reason: near, age, full, drain
	HoldPeeks      *prometheus.CounterVec // result: room, unknown
	Delivery       prometheus.Histogram

	mu       sync.Mutex
	services map[string]bool
}

// NewMetrics registers the metrics on reg; a nil reg gives unregistered
// metrics that still count (for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	m := &Metrics{
		Messages: f.NewCounterVec(prometheus.CounterOpts{
			Name: "ratemon_ingest_messages_total", Help: "NATS messages handled by ingestion, by result.",
		}, []string{"result"}),
		Events: f.NewCounterVec(prometheus.CounterOpts{
			Name: "ratemon_ingest_events_total", Help: "Events decoded by ingestion, by service and result.",
		}, []string{"service", "result"}),
		Rejected: f.NewCounterVec(prometheus.CounterOpts{
			Name: "ratemon_ingest_rejected_total", Help: "Events or messages dead-lettered, by reason.",
		}, []string{"reason"}),
		Clamped: f.NewCounter(prometheus.CounterOpts{
			Name: "ratemon_ingest_clamped_total", Help: "Events stamped further in the future than max_skew, clamped to their JetStream time.",
		}),
		Duplicates: f.NewCounterVec(prometheus.CounterOpts{
			Name: "ratemon_ingest_duplicates_total", Help: "Redelivered messages and repeated event ids not counted again, by kind.",
		}, []string{"kind"}),
		Late: f.NewCounter(prometheus.CounterOpts{
			Name: "ratemon_ingest_late_weight_total", Help: "Weight of events older than every window that could count them.",
		}),
		BatchSize: f.NewHistogram(prometheus.HistogramOpts{
			Name: "ratemon_ingest_batch_messages", Help: "NATS messages per ingest batch.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8),
		}),
		BatchSeconds: f.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ratemon_pipeline_batch_seconds", Help: "Time to handle one batch, by stage.",
			Buckets: prometheus.ExponentialBuckets(0.0002, 2.5, 12),
		}, []string{"stage"}),
		Evaluations: f.NewCounter(prometheus.CounterOpts{
			Name: "ratemon_worker_evaluations_total", Help: "Limit keys evaluated by workers.",
		}),
		Decisions: f.NewCounterVec(prometheus.CounterOpts{
			Name: "ratemon_limiter_decisions_total", Help: "Flag changes published, by kind and whether the key is allowed now.",
		}, []string{"kind", "allowed"}),
		DeniesSet: f.NewCounterVec(prometheus.CounterOpts{
			Name: "ratemon_limiter_denies_total", Help: "Deny flags set or extended by the rules, by rule.",
		}, []string{"rule"}),
		ShadowSet: f.NewCounterVec(prometheus.CounterOpts{
			Name: "ratemon_limiter_shadow_denies_total", Help: "Shadow flags set or extended (who would have been denied), by rule.",
		}, []string{"rule"}),
		DetectionLag: f.NewHistogram(prometheus.HistogramOpts{
			Name: "ratemon_detection_lag_seconds", Help: "From the newest event time of a key to its flag being written.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		Errors: f.NewCounterVec(prometheus.CounterOpts{
			Name: "ratemon_pipeline_errors_total", Help: "Errors talking to Redis or NATS, by system and operation.",
		}, []string{"system", "op"}),
		NoticesPending: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ratemon_worker_pending_entries", Help: "Work notices delivered to a worker and not yet acknowledged, by shard.",
		}, []string{"shard"}),
		NoticesLag: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ratemon_worker_lag_entries", Help: "Work notices not yet delivered to any worker, by shard.",
		}, []string{"shard"}),
		OldestPending: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ratemon_worker_oldest_pending_seconds", Help: "Idle time of the oldest unacknowledged work notice, by shard.",
		}, []string{"shard"}),
		StreamPending: f.NewGauge(prometheus.GaugeOpts{
			Name: "ratemon_ingest_stream_pending_messages", Help: "Messages in the events stream not yet delivered to ratemon (JetStream consumer).",
		}),
		StreamAcks: f.NewGauge(prometheus.GaugeOpts{
			Name: "ratemon_ingest_ack_pending_messages", Help: "Messages delivered to ratemon and not yet acknowledged (JetStream consumer).",
		}),
		HeldEvents: f.NewGauge(prometheus.GaugeOpts{
			Name: "ratemon_ingest_held_events", Help: "Events held back because their keys cannot reach a threshold yet (ingest.hold).",
		}),
		HeldMessages: f.NewGauge(prometheus.GaugeOpts{
			Name: "ratemon_ingest_held_messages", Help: "Messages left unacknowledged because some of their events are held.",
		}),
		HoldSends: f.NewCounterVec(prometheus.CounterOpts{
			Name: "ratemon_ingest_hold_sends_total", Help: "Limit keys whose events were sent to Redis, by reason: near (could reach a threshold, or room unknown), age (due: held ingest.hold, or a flag of the key ends within a second), full (ingest.hold_messages reached), drain (shutdown or new rules).",
		}, []string{"reason"}),
		Delivery: f.NewHistogram(prometheus.HistogramOpts{
			Name: "ratemon_ingest_delivery_seconds", Help: "From JetStream storing a message to the start of the batch that handles it (a redelivered message: its first storing).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		HoldPeeks: f.NewCounterVec(prometheus.CounterOpts{
			Name: "ratemon_ingest_hold_peeks_total", Help: "Limit keys never sent by this daemon whose state was read to learn their room, by result: room (their events can be held), unknown (a flag, an override or a deny_for block: their events are sent).",
		}, []string{"result"}),
		services: map[string]bool{},
	}
	for _, r := range []string{sendNear, sendAge, sendFull, sendDrain} {
		m.HoldSends.WithLabelValues(r)
	}
	for _, r := range []string{"room", "unknown"} {
		m.HoldPeeks.WithLabelValues(r)
	}
	for _, r := range []string{"ok", "dead", "redelivered", "retry"} {
		m.Messages.WithLabelValues(r)
	}
	for _, r := range event.Reasons() {
		m.Rejected.WithLabelValues(string(r))
	}
	for _, k := range []string{"message", "id"} {
		m.Duplicates.WithLabelValues(k)
	}
	for _, s := range []string{"ingest", "evaluate"} {
		m.BatchSeconds.WithLabelValues(s)
	}
	for _, k := range []limiter.FlagKind{limiter.FlagDeny, limiter.FlagShadow} {
		for _, allowed := range []string{"false", "true"} {
			m.Decisions.WithLabelValues(string(k), allowed)
		}
	}
	for _, e := range [][2]string{{"redis", "append"}, {"redis", "notice"}, {"redis", "evaluate"}, {"redis", "read"}, {"redis", "peek"}, {"nats", "fetch"}, {"nats", "ack"}, {"nats", "publish"}} {
		m.Errors.WithLabelValues(e[0], e[1])
	}
	return m
}

// service returns the label value for a service name, bounded.
func (m *Metrics) service(s string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.services[s] {
		return s
	}
	if len(m.services) >= maxServiceLabels {
		return "other"
	}
	m.services[s] = true
	return s
}
