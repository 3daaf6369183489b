package pipeline

import (
	"context"
	"log/slog"
	"strconv"

	"github.com/ratemon/ratemon/limiter"
)

// reporter does what follows an evaluation, wherever it ran (a worker, or
// ingestion evaluating inline): publish the flag changes, count them, keep
// the top keys, and hand the evaluations to the observer (alerting).
type reporter struct {
	store     *limiter.Store
	decisions DecisionPublisher // optional
	observer  Observer          // optional
	clock     limiter.Clock
	m         *Metrics
	log       *slog.Logger
	shards    int
}

func (r *reporter) report(ctx context.Context, evals []limiter.Evaluation) {
	if len(evals) == 0 {
		return
	}
	now := limiter.NowMS(r.clock)
	var ds []limiter.Decision
	for _, ev := range evals {
		r.m.Evaluations.Inc()
		for _, d := range ev.Changes {
			ds = append(ds, d)
			r.m.Decisions.WithLabelValues(string(d.Kind), strconv.FormatBool(d.Allowed)).Inc()
			if d.Allowed || d.Source != "rule" {
				continue
			}
			if d.Kind == limiter.FlagShadow {
				r.m.ShadowSet.WithLabelValues(d.Rule).Inc()
			} else {
				r.m.DeniesSet.WithLabelValues(d.Rule).Inc()
			}
			for _, st := range ev.Rules {
				if st.Rule == d.Rule && st.Newest > 0 {
					r.m.DetectionLag.Observe(float64(max(now-st.Newest, 0)) / 1000)
				}
			}
		}
	}
	if len(ds) > 0 && r.decisions != nil {
		if err := r.decisions.PublishDecisions(ctx, ds); err != nil {
			r.m.Errors.WithLabelValues("nats", "publish").Inc()
			r.log.Warn("publish decisions; checkers fall back to redis", "err", err)
		}
	}
	if err := r.store.RecordTop(ctx, r.shards, evals); err != nil {
		r.m.Errors.WithLabelValues("redis", "evaluate").Inc()
	}
	if r.observer != nil {
		r.observer.Observe(ctx, evals)
	}
}
