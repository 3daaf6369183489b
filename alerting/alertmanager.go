package alerting

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// alertmanagerSink posts to the Alertmanager API v2 (POST /api/v2/alerts).
// An active alert is sent with endsAt `firing` ahead, which each reminder
// pushes further; a resolved one with endsAt at its resolution, so
// Alertmanager resolves it at once. Going from near to exceeded resolves
// RateLimitNearLimit and fires RateLimitExceeded.
type alertmanagerSink struct {
	url    string // .../api/v2/alerts
	client *http.Client
	firing time.Duration
}

// PostableAlert is one alert of the Alertmanager API v2.
type PostableAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt,omitzero"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// Send implements Sink.
func (s *alertmanagerSink) Send(ctx context.Context, alerts ...Alert) (bool, error) {
	var out []PostableAlert
	for i := range alerts {
		out = append(out, amAlerts(&alerts[i], s.firing)...)
	}
	body, err := marshalJSON(out)
	if err != nil {
		return false, fmt.Errorf("encode alertmanager alerts: %w", err)
	}
	return postJSON(ctx, s.client, s.url, nil, body)
}

// amAlerts maps one notification to Alertmanager alerts.
func amAlerts(a *Alert, firing time.Duration) []PostableAlert {
	labels := func(name string, sev string) map[string]string {
		return map[string]string{
			"alertname": name, "rule": a.Rule, "key": string(a.Key), "severity": sev,
			"service": a.Service, "action": string(a.Action),
		}
	}
	ann := map[string]string{
		"summary": a.Summary(), "count": strconv.FormatInt(a.Count, 10), "peak": strconv.FormatInt(a.Peak, 10),
		"limit": strconv.FormatInt(a.Limit, 10), "window": time.Duration(a.Window).String(),
		"first_seen": a.Since.Format(time.RFC3339), "flag": a.Flag.Kind,
	}
	if !a.Flag.Until.IsZero() {
		ann["flag_until"] = a.Flag.Until.Format(time.RFC3339)
	}
	if a.Link != "" {
		ann["link"] = a.Link
	}
	p := PostableAlert{Labels: labels(a.Name(), string(a.Severity)), Annotations: ann, StartsAt: a.Since, GeneratorURL: a.Link}
	if a.State == StateResolved {
		p.EndsAt = a.At
		return []PostableAlert{p}
	}
	p.EndsAt = a.At.Add(firing)
	if a.State == StateExceeded && a.Previous == StateNear && a.Repeat == 0 {
		near := PostableAlert{Labels: labels(NameNearLimit, "warning"), Annotations: ann, StartsAt: a.Since, EndsAt: a.At, GeneratorURL: a.Link}
		return []PostableAlert{near, p}
	}
	return []PostableAlert{p}
}
