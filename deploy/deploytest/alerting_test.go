package deploytest

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// withAlerting checks that the daemon runs its alerting component with the
// "log" sink that startDaemon configures, so that the dashboard's
// alerts-by-sink panel and the RatemonAlertSinkFailing rule are checked
// against the real metric names of package alerting.
func withAlerting(t *testing.T, r *running) {
	t.Helper()
	waitFor(t, 10*time.Second, "the daemon does not expose its alerting metrics", func() string {
		code, body := get(r.base + "/metrics")
		if code != http.StatusOK {
			return "GET /metrics: " + http.StatusText(code)
		}
		if !strings.Contains(string(body), "ratemon_alerting_leader") {
			return "no ratemon_alerting_leader in /metrics"
		}
		return ""
	})
}
