package alerting

import (
	"context"
	"log/slog"
	"time"
)

// logSink writes one log line per alert: warn when exceeded, info otherwise.
// The limit key is logged at those levels on purpose: the line is the alert.
type logSink struct {
	log *slog.Logger
}

// Send implements Sink.
func (s *logSink) Send(ctx context.Context, alerts ...Alert) (bool, error) {
	for i := range alerts {
		a := &alerts[i]
		level := slog.LevelInfo
		if a.State == StateExceeded {
			level = slog.LevelWarn
		}
		attrs := []any{"rule", a.Rule, "limit_key", string(a.Key), "state", string(a.State), "count", a.Count,
			"limit", a.Limit, "window", time.Duration(a.Window).String(), "severity", string(a.Severity),
			"first_seen", a.Since.Format(time.RFC3339), "flag", a.Flag.Kind}
		if a.Previous != "" {
			attrs = append(attrs, "previous", string(a.Previous))
		}
		if a.Repeat > 0 {
			attrs = append(attrs, "repeat", a.Repeat)
		}
		if !a.Flag.Until.IsZero() {
			attrs = append(attrs, "flag_until", a.Flag.Until.Format(time.RFC3339))
		}
		if a.Link != "" {
			attrs = append(attrs, "link", a.Link)
		}
		s.log.Log(ctx, level, "alert: "+a.Summary(), attrs...)
	}
	return false, nil
}
