package alerting

import (
	"context"
	"errors"
	"fmt"
)

// natsSink publishes each alert as one JSON message (an Alert) on the alerts
// subject, `ratemon.alerts` by default.
type natsSink struct {
	pub     Publisher
	subject string
}

// Send implements Sink. A failed publish may be retried; alerts already
// published are published again then, with the same id.
func (s *natsSink) Send(ctx context.Context, alerts ...Alert) (bool, error) {
	var errs []error
	for i := range alerts {
		if err := ctx.Err(); err != nil {
			return true, err
		}
		b, err := marshalJSON(&alerts[i])
		if err != nil {
			return false, fmt.Errorf("encode alert: %w", err)
		}
		if err := s.pub.Publish(s.subject, b); err != nil {
			errs = append(errs, fmt.Errorf("publish alert on %s: %w", s.subject, err))
		}
	}
	return true, errors.Join(errs...)
}
