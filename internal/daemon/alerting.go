package daemon

import (
	"context"
	"errors"
	"time"

	"github.com/ratemon/ratemon/alerting"
)

// alertParts is the daemon's alerting: the component, built in New so that
// a bad sink (a secret missing from the environment) stops the daemon
// before it starts, and run by runPipeline after the workers.
type alertParts struct {
	a *alerting.Alerting
}

// initAlerting builds the alerting component from the configuration. Its
// nats sinks publish on the daemon's connection once Run has opened it.
func (d *Daemon) initAlerting() error {
	a, err := alerting.New(alerting.Options{
		Config: d.cfg.Alerting, Redis: d.rdb, Keys: d.keys, Rules: d.Rules, Subjects: d.subjects,
		NATS: alertPublisher{d.pub}, Replica: d.opts.Consumer, Clock: d.opts.Clock, Logger: d.log,
		Metrics: alerting.NewMetrics(d.reg), FlushTimeout: min(5*time.Second, d.opts.ShutdownTimeout/3),
	})
	if err != nil {
		return err
	}
	d.alerts.a = a
	return nil
}

// run runs alerting until ctx is cancelled, which runPipeline does once
// the workers have stopped; it then flushes the sinks, bounded.
func (p alertParts) run(ctx context.Context) error { return p.a.Run(ctx) }

// alertPublisher publishes alerts on the daemon's NATS connection.
type alertPublisher struct{ d *decisions }

// Publish implements alerting.Publisher.
func (p alertPublisher) Publish(subject string, data []byte) error {
	nc := p.d.conn.Load()
	if nc == nil {
		return errors.New("nats connection not open yet")
	}
	return nc.Publish(subject, data)
}
