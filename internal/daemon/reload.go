package daemon

import (
	"context"
	"fmt"
	"reflect"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/ratemon/ratemon/internal/config"
	"github.com/ratemon/ratemon/limiter"
)

// reloadMetrics count configuration reloads.
type reloadMetrics struct {
	reloads *prometheus.CounterVec
	last    prometheus.Gauge
	ok      prometheus.Gauge
	rules   prometheus.Gauge
}

func newReloadMetrics(reg prometheus.Registerer) *reloadMetrics {
	f := promauto.With(reg)
	m := &reloadMetrics{
		reloads: f.NewCounterVec(prometheus.CounterOpts{
			Name: "ratemon_config_reloads_total", Help: "Configuration reloads, by result (ok, error).",
		}, []string{"result"}),
		last: f.NewGauge(prometheus.GaugeOpts{
			Name: "ratemon_config_last_reload_success_timestamp_seconds", Help: "When the rules in force were loaded.",
		}),
		ok: f.NewGauge(prometheus.GaugeOpts{
			Name: "ratemon_config_last_reload_successful", Help: "1 when the last reload of the configuration succeeded (or none was tried), 0 when it was refused.",
		}),
		rules: f.NewGauge(prometheus.GaugeOpts{
			Name: "ratemon_config_rules", Help: "Rules in force.",
		}),
	}
	m.reloads.WithLabelValues("ok")
	m.reloads.WithLabelValues("error")
	m.ok.Set(1)
	return m
}

// Reload reads the configuration again (Options.Load) and puts its rules in
// force at once. An invalid configuration is refused, logged, counted, and
// the rules in force keep running. Other settings need a restart; a change
// of them is logged.
func (d *Daemon) Reload() error {
	if d.opts.Load == nil {
		return fmt.Errorf("reload: the daemon was started without a config file")
	}
	cfg, err := d.opts.Load()
	if err == nil {
		var rs *limiter.Ruleset
		if rs, err = cfg.Ruleset(); err == nil {
			d.rules.Store(rs)
			d.reloadM.reloads.WithLabelValues("ok").Inc()
			d.reloadM.last.SetToCurrentTime()
			d.reloadM.ok.Set(1)
			d.precreate(rs)
			d.reloadM.rules.Set(float64(len(rs.Rules())))
			d.log.Info("config reloaded", "component", "reload", "rules", len(rs.Rules()))
			if !sameExceptRules(d.cfg, cfg) {
				d.log.Warn("settings other than rules changed; they take effect after a restart", "component", "reload")
			}
			return nil
		}
	}
	d.reloadM.reloads.WithLabelValues("error").Inc()
	d.reloadM.ok.Set(0)
	d.log.Error("config reload refused, the rules in force keep running", "component", "reload", "err", err)
	return fmt.Errorf("reload: %w", err)
}

// sameExceptRules reports whether two configurations differ only in rules.
func sameExceptRules(a, b *config.Config) bool {
	x, y := *a, *b
	x.Rules, y.Rules, x.Include, y.Include = nil, nil, nil, nil
	return reflect.DeepEqual(x, y)
}

// watch reloads when the rules the configuration gives change (the file or
// one of its includes), checking every interval; a file that stays invalid
// is reported once.
func (d *Daemon) watch(ctx context.Context, interval time.Duration) {
	if d.opts.Load == nil || interval <= 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	lastErr := ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cfg, err := d.opts.Load()
		if err != nil {
			if err.Error() != lastErr {
				lastErr = err.Error()
				d.reloadM.reloads.WithLabelValues("error").Inc()
				d.reloadM.ok.Set(0)
				d.log.Error("config file changed but is invalid, the rules in force keep running", "component", "reload", "err", err)
			}
			continue
		}
		lastErr = ""
		if reflect.DeepEqual(cfg.Rules, d.Rules().Rules()) {
			continue
		}
		_ = d.Reload()
	}
}

// precreate makes the per-rule series exist from the start, at zero, so that
// rates and dashboards see every rule, not only those that denied already.
func (d *Daemon) precreate(rs *limiter.Ruleset) {
	for _, r := range rs.Rules() {
		switch r.Action {
		case limiter.ActionDeny:
			d.metrics.DeniesSet.WithLabelValues(r.Name)
		case limiter.ActionShadow:
			d.metrics.ShadowSet.WithLabelValues(r.Name)
		}
	}
}
