package alerting

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
)

// Sink delivers one message: the alerts of one group (same rule and state)
// that passed the sink's filter. retry says whether the failure is
// transient and the same message may be sent again; Send must honour ctx.
type Sink interface {
	Send(ctx context.Context, alerts ...Alert) (retry bool, err error)
}

// Publisher publishes a NATS message; *nats.Conn implements it.
type Publisher interface {
	Publish(subject string, data []byte) error
}

// Secret holds a secret read from the environment. It prints, logs and
// marshals as "<secret>", so that it never shows up by accident.
type Secret []byte

// String returns "<secret>".
func (Secret) String() string { return "<secret>" }

// GoString returns "<secret>".
func (Secret) GoString() string { return "<secret>" }

// LogValue logs "<secret>".
func (Secret) LogValue() slog.Value { return slog.StringValue("<secret>") }

// MarshalJSON writes "<secret>".
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"<secret>"`), nil }

// buildSinks builds a runner per configured sink.
func (a *Alerting) buildSinks() ([]*sinkRunner, error) {
	var out []*sinkRunner
	var errs []error
	for i, sc := range a.cfg.Sinks {
		s, err := a.newSink(sc)
		if err != nil {
			errs = append(errs, fmt.Errorf("alerting.sinks[%d] (%s): %w", i, sc.Name, err))
			continue
		}
		a.m.initSink(sc.Name)
		out = append(out, newSinkRunner(a, sc, s))
	}
	return out, errors.Join(errs...)
}

func (a *Alerting) newSink(sc SinkConfig) (Sink, error) {
	client := a.opts.HTTPClient
	switch sc.Type {
	case SinkLog:
		return &logSink{log: a.log.With("sink", sc.Name)}, nil
	case SinkWebhook:
		var secret Secret
		if sc.SecretEnv != "" {
			v := a.opts.Getenv(sc.SecretEnv)
			if v == "" {
				return nil, fmt.Errorf("secret_env: environment variable %s is not set or empty", sc.SecretEnv)
			}
			secret = Secret(v)
		}
		return &webhookSink{name: sc.Name, url: sc.URL, secret: secret, client: client}, nil
	case SinkSlack:
		return &slackSink{url: sc.URL, channel: sc.Channel, client: client}, nil
	case SinkAlertmanager:
		u, err := url.JoinPath(sc.URL, "/api/v2/alerts")
		if err != nil {
			return nil, fmt.Errorf("url: %w", err)
		}
		return &alertmanagerSink{url: u, client: client, firing: max(3*a.cfg.RepeatInterval, 5*a.cfg.ResolveAfter)}, nil
	case SinkNATS:
		if a.opts.NATS == nil {
			return nil, errors.New("a nats sink needs a nats connection")
		}
		return &natsSink{pub: a.opts.NATS, subject: a.opts.Subjects.Alerts()}, nil
	}
	return nil, fmt.Errorf("unknown sink type %q", sc.Type)
}

// wants reports whether a sink with config sc takes alert x. A resolved
// alert passes only if the state it resolves passes too.
func (sc *SinkConfig) wants(x *Alert) bool {
	if len(sc.Rules) > 0 && !slices.Contains(sc.Rules, x.Rule) {
		return false
	}
	if len(sc.Severities) > 0 && !slices.Contains(sc.Severities, x.Severity) {
		return false
	}
	if len(sc.States) > 0 {
		if !slices.Contains(sc.States, x.State) {
			return false
		}
		if x.State == StateResolved && x.Previous != "" && !slices.Contains(sc.States, x.Previous) {
			return false
		}
	}
	return true
}
