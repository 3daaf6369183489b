package daemon

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/nats-io/nats.go"

	"github.com/ratemon/ratemon/limiter"
	"github.com/ratemon/ratemon/pipeline"
)

// decisions publishes flag changes on the decisions subject through the
// daemon's NATS connection, which exists only once Run has started: the
// HTTP API is built before it. conn is set once by Run.
type decisions struct {
	conn    atomic.Pointer[nats.Conn]
	subject string
}

// PublishDecisions implements httpapi.Publisher and pipeline.DecisionPublisher.
func (p *decisions) PublishDecisions(ctx context.Context, ds []limiter.Decision) error {
	nc := p.conn.Load()
	if nc == nil {
		return errors.New("nats connection not open yet")
	}
	return pipeline.NATSDecisions{Conn: nc, Subject: p.subject}.PublishDecisions(ctx, ds)
}
