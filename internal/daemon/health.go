package daemon

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/redis/go-redis/v9"
)

// health tracks whether the daemon can do its job. Probes write it; the
// HTTP server reads it. mu guards problems.
type health struct {
	mu       sync.Mutex
	problems map[string]string // component -> problem; empty when ready
	ready    prometheus.Gauge
}

func newHealth(reg prometheus.Registerer) *health {
	h := &health{problems: map[string]string{"setup": "starting"}}
	h.ready = promauto.With(reg).NewGauge(prometheus.GaugeOpts{
		Name: "ratemon_ready", Help: "1 when the daemon can do its job (what /readyz says), 0 otherwise.",
	})
	return h
}

func (h *health) set(component, problem string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if problem == "" {
		delete(h.problems, component)
	} else {
		h.problems[component] = problem
	}
	if len(h.problems) == 0 {
		h.ready.Set(1)
	} else {
		h.ready.Set(0)
	}
}

// Ready implements httpapi.Health.
func (h *health) Ready() (bool, []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]string, 0, len(h.problems))
	for c, p := range h.problems {
		out = append(out, c+": "+p)
	}
	sort.Strings(out)
	return len(out) == 0, out
}

// probe checks Redis and NATS every interval until ctx is done.
func (h *health) probe(ctx context.Context, rdb redis.UniversalClient, nc *nats.Conn, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, interval)
		if err := rdb.Ping(pctx).Err(); err != nil {
			h.set("redis", "unreachable: "+err.Error())
		} else {
			h.set("redis", "")
		}
		cancel()
		switch {
		case nc.IsConnected():
			h.set("nats", "")
		case nc.LastError() != nil: // such as an authorization violation
			h.set("nats", "not connected ("+nc.Status().String()+"): "+nc.LastError().Error())
		default:
			h.set("nats", "not connected ("+nc.Status().String()+")")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
