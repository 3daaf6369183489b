package deploytest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/internal/config"
	"github.com/ratemon/ratemon/limiter"
)

// trafficRules are the rules of the daemon under synthetic traffic: a deny
// rule per client of one service, a deny rule per IP on one route, and a
// shadow rule over everything.
func trafficRules() []limiter.Rule {
	return []limiter.Rule{
		{
			Name: "per-client", Match: limiter.Match{Service: "stocks"}, Key: []limiter.Field{limiter.FieldClient},
			Limit: 20, Window: 10 * time.Second, Action: limiter.ActionDeny,
		},
		{
			Name: "login-burst", Match: limiter.Match{Route: "POST /login"}, Key: []limiter.Field{limiter.FieldIP},
			Limit: 5, Window: 10 * time.Second, Action: limiter.ActionDeny,
		},
		{
			Name: "watch", Key: []limiter.Field{limiter.FieldClient},
			Limit: 10, Window: 10 * time.Second, Action: limiter.ActionShadow,
		},
	}
}

// traffic drives a daemon: events over NATS and operator actions over its
// admin API.
type traffic struct {
	t    *testing.T
	r    *running
	js   jetstream.JetStream
	tick int
}

func newTraffic(t *testing.T, r *running, js jetstream.JetStream) *traffic {
	return &traffic{t: t, r: r, js: js}
}

// round publishes one round of events: calm clients on two services, a
// fresh client over the per-client limit (so a new deny is set every
// round), a fresh IP over the login limit, a client over the shadow rule
// only, and one element without a client (rejected, dead-lettered).
func (tr *traffic) round() {
	tr.t.Helper()
	tr.tick++
	now := time.Now().UnixMilli()
	var stocks, login strings.Builder
	line := func(b *strings.Builder, client, ip, route string, ts int64) {
		fmt.Fprintf(b, `{"client":%q,"ip":%q,"route":%q,"ts":%d}`+"\n", client, ip, route, ts)
	}
	for i := range 3 {
		line(&stocks, fmt.Sprintf("calm-%d", i), "10.0.0.1", "GET /stocks/{symbol}/history", now)
	}
	for i := range 25 {
		line(&stocks, fmt.Sprintf("abuser-%d", tr.tick), "10.0.1.1", "GET /stocks/{symbol}/history", now-int64(i))
	}
	stocks.WriteString(`{"route":"GET /stocks/{symbol}/history"}` + "\n") // no client: rejected
	for i := range 7 {
		line(&login, fmt.Sprintf("user-%d", i), fmt.Sprintf("10.2.0.%d", tr.tick%250), "POST /login", now-int64(i))
	}
	for range 12 {
		line(&login, "crawler", "10.3.0.1", "GET /search", now)
	}
	tr.publish("stocks", stocks.String())
	tr.publish("auth", login.String())
}

func (tr *traffic) publish(service, body string) {
	tr.t.Helper()
	_, err := tr.js.Publish(tr.t.Context(), tr.r.subjects.Events(service), []byte(body))
	require.NoError(tr.t, err)
}

// operate does what an operator does once: block a client, allow another,
// reload the configuration successfully and try an invalid one.
func (tr *traffic) operate(load *reloadable) {
	tr.t.Helper()
	tr.admin("/v1/blocks", map[string]string{"key": "client=mallory", "for": "1h", "reason": "credential stuffing", "author": "deploytest"})
	tr.admin("/v1/allows", map[string]string{"key": "client=partner", "for": "1h", "reason": "trusted partner", "author": "deploytest"})
	require.NoError(tr.t, tr.r.d.Reload(), "reload of a valid configuration")
	load.fail(true)
	require.Error(tr.t, tr.r.d.Reload(), "reload of an invalid configuration")
	load.fail(false)
}

func (tr *traffic) admin(path string, body any) {
	tr.t.Helper()
	b, err := json.Marshal(body)
	require.NoError(tr.t, err)
	req, err := http.NewRequestWithContext(tr.t.Context(), http.MethodPost, tr.r.base+path, bytes.NewReader(b))
	require.NoError(tr.t, err)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(tr.t, err)
	defer resp.Body.Close()
	require.Equal(tr.t, http.StatusOK, resp.StatusCode, "POST %s", path)
}

// reloadable is the daemon's Options.Load: it gives the running
// configuration (read from r once the daemon runs) or, while failing, an
// error.
type reloadable struct {
	cfg     func() *config.Config
	failing bool
}

func (l *reloadable) fail(on bool) { l.failing = on }

func (l *reloadable) load() (*config.Config, error) {
	if l.failing {
		return nil, fmt.Errorf("deploytest.yaml:1:1: rules[0].limit: must be between 1 and 1099511627776, got -5")
	}
	return l.cfg(), nil
}
