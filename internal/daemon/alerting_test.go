package daemon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/alerting"
	"github.com/ratemon/ratemon/internal/config"
	"github.com/ratemon/ratemon/internal/daemon"
	"github.com/ratemon/ratemon/internal/keyspace"
	"github.com/ratemon/ratemon/internal/testenv"
	"github.com/ratemon/ratemon/limiter"
)

// TestAlerting_alertmanager runs a daemon with an Alertmanager sink against
// a real Alertmanager: an abusive client raises RateLimitExceeded, and once
// it calms down Alertmanager sees the alert resolved.
func TestAlerting_alertmanager(t *testing.T) {
	am := testenv.StartAlertmanager(t)
	n := testenv.StartNATS(t)
	rdb := testenv.Redis(t)
	name := testenv.Name(t)
	cfg := &config.Config{Rules: []limiter.Rule{{
		Name: "per-client", Match: limiter.Match{Service: "stocks"}, Key: []limiter.Field{limiter.FieldClient},
		Limit: 10, Window: 2 * time.Second, Action: limiter.ActionDeny,
	}}}
	cfg.Alerting = alerting.Config{
		ResolveAfter: 500 * time.Millisecond, GroupWait: 100 * time.Millisecond, GroupInterval: 200 * time.Millisecond,
		CheckInterval: 50 * time.Millisecond,
		LinkTemplate:  "https://grafana.example/d/ratemon?var-key={{urlquery .Key}}",
		Sinks:         []alerting.SinkConfig{{Name: "am", Type: alerting.SinkAlertmanager, URL: am.URL}},
	}
	cfg.SetDefaults()
	cfg.Redis.URL = "redis://" + testenv.RedisAddr() + "/0"
	cfg.Redis.Prefix = testenv.Prefix(t, rdb)
	cfg.NATS.URL = n.URL()
	cfg.NATS.Stream = "EV" + name
	cfg.NATS.DeadLetterStream = "DL" + name
	cfg.NATS.SubjectPrefix = "rm" + name
	cfg.Workers.Block = 50 * time.Millisecond
	require.NoError(t, cfg.Validate())
	base := runDaemon(t, cfg)

	subjects, err := keyspace.NewSubjects(cfg.NATS.SubjectPrefix)
	require.NoError(t, err)
	js, err := jetstream.New(n.Connect(t))
	require.NoError(t, err)
	var buf []byte
	for range 15 {
		buf = append(buf, fmt.Sprintf(`{"client":"abuser","route":"GET /stocks","ts":%d}`+"\n", time.Now().UnixMilli())...)
	}
	_, err = js.Publish(t.Context(), subjects.Events("stocks"), buf)
	require.NoError(t, err)

	// Alertmanager receives RateLimitExceeded for the abuser.
	var got testenv.AlertmanagerAlert
	require.Eventually(t, func() bool {
		as, err := am.Alerts(t.Context())
		if err != nil || len(as) != 1 {
			return false
		}
		got = as[0]
		return true
	}, 10*time.Second, 20*time.Millisecond, "alertmanager never got the alert")
	require.Equal(t, map[string]string{"alertname": "RateLimitExceeded", "rule": "per-client", "key": "client=abuser",
		"severity": "critical", "service": "stocks", "action": "deny"}, got.Labels)
	require.Equal(t, "active", got.Status.State)
	require.Equal(t, "15", got.Annotations["count"])
	require.Equal(t, "https://grafana.example/d/ratemon?var-key=client%3Dabuser", got.Annotations["link"])

	// The daemon lists it too.
	code, body := fetch(t, base+"/v1/alerts")
	require.Equal(t, http.StatusOK, code)
	var list struct{ Alerts []alerting.Alert }
	require.NoError(t, json.Unmarshal(body, &list))
	require.Len(t, list.Alerts, 1)
	require.Equal(t, alerting.StateExceeded, list.Alerts[0].State)
	require.Equal(t, limiter.LimitKey("client=abuser"), list.Alerts[0].Key)

	// No more traffic: the window frees up, and resolve_after later the
	// alert is resolved in Alertmanager.
	require.Eventually(t, func() bool {
		as, err := am.Alerts(t.Context())
		return err == nil && len(as) == 0
	}, 15*time.Second, 50*time.Millisecond, "alertmanager still has the alert")
	code, body = fetch(t, base+"/v1/alerts")
	require.Equal(t, http.StatusOK, code)
	require.JSONEq(t, `{"alerts":[]}`, string(body))
}

// runDaemon runs a daemon with cfg until the test ends and returns its base URL.
func runDaemon(t *testing.T, cfg *config.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	d, err := daemon.New(daemon.Options{Config: cfg, Listener: ln, Logger: testLogger(t)})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(20 * time.Second):
			t.Error("daemon did not stop within 20s")
		}
	})
	base := "http://" + ln.Addr().String()
	require.Eventually(t, func() bool {
		code, _ := fetch(t, base+"/readyz")
		return code == http.StatusOK
	}, 15*time.Second, 20*time.Millisecond, "daemon never became ready")
	return base
}

func fetch(t *testing.T, u string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}
