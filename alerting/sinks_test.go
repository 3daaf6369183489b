package alerting_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/alerting"
	"github.com/ratemon/ratemon/internal/testenv"
	"github.com/ratemon/ratemon/limiter"
)

func TestSlack_incomingWebhookFormat(t *testing.T) {
	rc := newReceiver(t, nil)
	sink := alerting.SinkConfig{Name: "chat", Type: alerting.SinkSlack, URL: rc.URL, Channel: "#ratelimits"}
	in := start(t, instanceOpts{prefix: testenv.Prefix(t, testenv.Redis(t)), cfg: fastConfig(sink), rules: testRules(t)})
	in.Observe(t.Context(), []limiter.Evaluation{
		result("client=a", 12, 10, time.Now().Add(time.Minute).UnixMilli()),
		result("client=b", 13, 10, time.Now().Add(time.Minute).UnixMilli()),
	})
	require.Eventually(t, func() bool { return len(rc.all()) == 1 }, 5*time.Second, 5*time.Millisecond)
	var msg alerting.SlackMessage
	require.NoError(t, json.Unmarshal(rc.all()[0].raw, &msg))
	require.Equal(t, "#ratelimits", msg.Channel)
	require.Equal(t, "*[EXCEEDED] per-client*: 2 key(s)", msg.Text)
	require.Len(t, msg.Attachments, 1)
	require.Equal(t, "danger", msg.Attachments[0].Color)
	require.Contains(t, msg.Attachments[0].Text, "• `client=a` count 12 / limit 10 per 1s, since ")
	require.Contains(t, msg.Attachments[0].Text, "deny flag until")
	require.Equal(t, 2, strings.Count(msg.Attachments[0].Text, "\n")+1)
}

// TestAlertmanager_payload checks the API v2 body: a firing alert with the
// labels Alertmanager routes on, then its resolution with endsAt.
func TestAlertmanager_payload(t *testing.T) {
	rc := newReceiver(t, nil)
	sink := alerting.SinkConfig{Name: "am", Type: alerting.SinkAlertmanager, URL: rc.URL}
	in := start(t, instanceOpts{prefix: testenv.Prefix(t, testenv.Redis(t)), cfg: fastConfig(sink), rules: testRules(t)})
	in.Observe(t.Context(), []limiter.Evaluation{result("client=a", 8, 10, 0)})
	require.Eventually(t, func() bool { return len(rc.all()) == 1 }, 5*time.Second, 5*time.Millisecond)
	in.Observe(t.Context(), []limiter.Evaluation{result("client=a", 12, 10, time.Now().Add(100*time.Millisecond).UnixMilli())})
	require.Eventually(t, func() bool { return len(rc.all()) >= 3 }, 5*time.Second, 5*time.Millisecond)

	var posts [][]alerting.PostableAlert
	for _, p := range rc.all() {
		require.Equal(t, "/api/v2/alerts", p.path)
		var as []alerting.PostableAlert
		require.NoError(t, json.Unmarshal(p.raw, &as))
		posts = append(posts, as)
	}
	near := posts[0][0]
	require.Equal(t, map[string]string{"alertname": "RateLimitNearLimit", "rule": "per-client", "key": "client=a",
		"severity": "warning", "service": "stocks", "action": "deny"}, near.Labels)
	require.True(t, near.EndsAt.After(time.Now()), "firing")

	// Escalation: near resolved, exceeded firing.
	require.Len(t, posts[1], 2)
	require.Equal(t, "RateLimitNearLimit", posts[1][0].Labels["alertname"])
	require.False(t, posts[1][0].EndsAt.After(time.Now()), "the near alert ends")
	ex := posts[1][1]
	require.Equal(t, "RateLimitExceeded", ex.Labels["alertname"])
	require.Equal(t, "critical", ex.Labels["severity"])
	require.True(t, ex.EndsAt.After(time.Now()))
	require.Equal(t, "12", ex.Annotations["count"])
	require.Equal(t, "10", ex.Annotations["limit"])
	require.Equal(t, "1s", ex.Annotations["window"])
	require.Equal(t, "deny", ex.Annotations["flag"])
	require.NotEmpty(t, ex.Annotations["flag_until"])
	require.Contains(t, ex.Annotations["summary"], "client=a exceeded 10 per 1s (count 12)")

	res := posts[2][0]
	require.Equal(t, ex.Labels, res.Labels, "same labels: Alertmanager resolves the same alert")
	require.False(t, res.EndsAt.After(time.Now()))
}

func TestNATSSink_publishesEachAlert(t *testing.T) {
	n := testenv.StartNATS(t)
	nc := n.Connect(t)
	prefix := testenv.Prefix(t, testenv.Redis(t))
	in := start(t, instanceOpts{prefix: prefix, cfg: fastConfig(alerting.SinkConfig{Name: "bus", Type: alerting.SinkNATS}),
		rules: testRules(t), nats: nc})
	sub, err := nc.SubscribeSync("rm" + prefix + ".alerts")
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	in.Observe(t.Context(), []limiter.Evaluation{result("client=a", 12, 10, time.Now().Add(time.Minute).UnixMilli())})
	m, err := sub.NextMsg(5 * time.Second)
	require.NoError(t, err)
	var a alerting.Alert
	require.NoError(t, json.Unmarshal(m.Data, &a))
	require.Equal(t, "per-client:client=a:1", a.ID)
	require.Equal(t, alerting.StateExceeded, a.State)
	require.Equal(t, limiter.LimitKey("client=a"), a.Key)

	_, err = alerting.New(alerting.Options{Config: fastConfig(alerting.SinkConfig{Name: "bus", Type: alerting.SinkNATS}),
		Redis: testenv.Redis(t), Keys: testKeys(t), Rules: testRules(t), Replica: "r"})
	require.ErrorContains(t, err, "a nats sink needs a nats connection")
}

func TestLogSink(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	in := start(t, instanceOpts{prefix: testenv.Prefix(t, testenv.Redis(t)), cfg: fastConfig(alerting.SinkConfig{Name: "log", Type: alerting.SinkLog}),
		rules: testRules(t), logger: log})
	in.Observe(t.Context(), []limiter.Evaluation{result("client=a", 12, 10, time.Now().Add(time.Minute).UnixMilli())})
	require.Eventually(t, func() bool { return strings.Contains(buf.String(), "level=WARN msg=") }, 5*time.Second, 5*time.Millisecond)
	require.Contains(t, buf.String(), `msg="alert: client=a exceeded 10 per 1s (count 12) on rule per-client" replica=r1 component=alerting sink=log rule=per-client limit_key="client=a" state=exceeded count=12 limit=10`)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
