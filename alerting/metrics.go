package alerting

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics are the alerting metrics. Labels are sink names and rule names,
// both from the configuration; a limit key is never a label.
type Metrics struct {
	Notifications *prometheus.CounterVec   // sink, result: sent, failed, dead, dropped
	Retries       *prometheus.CounterVec   // sink
	Dead          *prometheus.CounterVec   // sink
	QueueDepth    *prometheus.GaugeVec     // sink
	SendSeconds   *prometheus.HistogramVec // sink
	Transitions   *prometheus.CounterVec   // rule, state
	Observations  *prometheus.CounterVec   // result: tracked, dropped
	Errors        *prometheus.CounterVec   // op
	Leader        prometheus.Gauge
}

// NewMetrics registers the metrics on reg; a nil reg gives unregistered
// metrics that still count (for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	m := &Metrics{
		Notifications: f.NewCounterVec(prometheus.CounterOpts{
			Name: "ratemon_alerting_notifications_total",
			Help: "Messages handed to a sink, by sink and result (sent, failed: an attempt failed, dead: given up, dropped: queue full).",
		}, []string{"sink", "result"}),
		Retries: f.NewCounterVec(prometheus.CounterOpts{
			Name: "ratemon_alerting_retries_total", Help: "Attempts to send a message again after a failure, by sink.",
		}, []string{"sink"}),
		Dead: f.NewCounterVec(prometheus.CounterOpts{
			Name: "ratemon_alerting_dead_total", Help: "Messages a sink never got (retries exhausted, permanent error or queue full), by sink.",
		}, []string{"sink"}),
		QueueDepth: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ratemon_alerting_queue_depth", Help: "Messages waiting for a sink, by sink.",
		}, []string{"sink"}),
		SendSeconds: f.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ratemon_alerting_send_seconds", Help: "Time of one attempt to send a message, by sink.",
			Buckets: prometheus.ExponentialBuckets(0.001, 3, 11),
		}, []string{"sink"}),
		Transitions: f.NewCounterVec(prometheus.CounterOpts{
			Name: "ratemon_alerting_transitions_total", Help: "Notifications decided (transitions and reminders), by rule and state.",
		}, []string{"rule", "state"}),
		Observations: f.NewCounterVec(prometheus.CounterOpts{
			Name: "ratemon_alerting_observations_total",
			Help: "Rule results near or over a limit handed to the alert tracker, by result (tracked, dropped: queue full).",
		}, []string{"result"}),
		Errors: f.NewCounterVec(prometheus.CounterOpts{
			Name: "ratemon_alerting_errors_total", Help: "Redis errors of the alert lifecycle, by operation.",
		}, []string{"op"}),
		Leader: f.NewGauge(prometheus.GaugeOpts{
			Name: "ratemon_alerting_leader", Help: "1 while this replica holds the lease to deliver notifications.",
		}),
	}
	for _, r := range []string{"tracked", "dropped"} {
		m.Observations.WithLabelValues(r)
	}
	for _, op := range []string{"observe", "check", "handoff", "deliver", "lease"} {
		m.Errors.WithLabelValues(op)
	}
	return m
}

// initSink creates the series of one sink, so they exist before anything
// happens.
func (m *Metrics) initSink(name string) {
	for _, r := range []string{"sent", "failed", "dead", "dropped"} {
		m.Notifications.WithLabelValues(name, r)
	}
	m.Retries.WithLabelValues(name)
	m.Dead.WithLabelValues(name)
	m.QueueDepth.WithLabelValues(name)
	m.SendSeconds.WithLabelValues(name)
}
