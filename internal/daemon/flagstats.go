package daemon

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/ratemon/ratemon/limiter"
)

// flagStats publishes how many flags are in force, by kind and rule, from a
// periodic scan of the flag keys (flags expire on their own in Redis, so
// counting set and cleared events would drift). Manual blocks count under
// the rule "manual". Every replica scans; the values agree.
type flagStats struct {
	active *prometheus.GaugeVec
	blocks prometheus.Gauge
	allows prometheus.Gauge
}

func newFlagStats(reg prometheus.Registerer) *flagStats {
	f := promauto.With(reg)
	return &flagStats{
		active: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ratemon_limiter_active_flags", Help: "Deny and shadow flags in force, by kind and rule (manual: blocks by a person).",
		}, []string{"kind", "rule"}),
		blocks: f.NewGauge(prometheus.GaugeOpts{
			Name: "ratemon_limiter_manual_blocks", Help: "Manual blocks in force.",
		}),
		allows: f.NewGauge(prometheus.GaugeOpts{
			Name: "ratemon_limiter_allow_entries", Help: "Allow-list entries in force.",
		}),
	}
}

// run rescans every interval until ctx is done.
func (fs *flagStats) run(ctx context.Context, store *limiter.Store, rules func() *limiter.Ruleset, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		fs.scan(ctx, store, rules())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (fs *flagStats) scan(ctx context.Context, store *limiter.Store, rs *limiter.Ruleset) {
	counts := map[[2]string]int{}
	for _, r := range rs.Rules() {
		switch r.Action {
		case limiter.ActionDeny:
			counts[[2]string{"deny", r.Name}] = 0
		case limiter.ActionShadow:
			counts[[2]string{"shadow", r.Name}] = 0
		}
	}
	counts[[2]string{"deny", "manual"}] = 0
	for _, kind := range []limiter.FlagKind{limiter.FlagDeny, limiter.FlagShadow} {
		flags, err := store.Flags(ctx, kind)
		if err != nil {
			return // Redis trouble is reported by the health probe
		}
		for _, f := range flags {
			rule := f.Rule
			if f.Source == "manual" {
				rule = "manual"
			}
			if _, known := counts[[2]string{string(kind), rule}]; known {
				counts[[2]string{string(kind), rule}]++
			}
		}
	}
	fs.active.Reset()
	for k, n := range counts {
		fs.active.WithLabelValues(k[0], k[1]).Set(float64(n))
	}
	if es, err := store.Entries(ctx, limiter.OpBlock); err == nil {
		fs.blocks.Set(float64(len(es)))
	}
	if es, err := store.Entries(ctx, limiter.OpAllow); err == nil {
		fs.allows.Set(float64(len(es)))
	}
}
