package deploytest

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/internal/config"
	"github.com/ratemon/ratemon/internal/testenv"
)

// TestMetrics_promtoolCheck lints the live /metrics output of a daemon that
// handled traffic, denies, rejects, blocks and reloads, so that every
// metric family has samples.
func TestMetrics_promtoolCheck(t *testing.T) {
	n := testenv.StartNATS(t)
	var r *running
	load := &reloadable{cfg: func() *config.Config { return r.cfg }}
	r = startDaemon(t, n.URL(), trafficRules(), load.load)
	withAlerting(t, r)
	js, err := jetstream.New(n.Connect(t))
	require.NoError(t, err)
	tr := newTraffic(t, r, js)
	tr.round()
	tr.operate(load)

	var body []byte
	require.Eventually(t, func() bool {
		var code int
		code, body = get(r.base + "/metrics")
		return code == http.StatusOK &&
			strings.Contains(string(body), `ratemon_limiter_denies_total{rule="per-client"}`) &&
			strings.Contains(string(body), "ratemon_detection_lag_seconds_count")
	}, 10*time.Second, 20*time.Millisecond, "the daemon never denied the abuser")

	out, ok := promtool(t, body, "check", "metrics")
	require.True(t, ok, "promtool check metrics on the daemon's /metrics:\n%s", out)
	require.Empty(t, strings.TrimSpace(out), "promtool check metrics found problems")

	t.Run("a bad exposition fails", func(t *testing.T) {
		out, ok := promtool(t, []byte("# TYPE ratemon_bad counter\nratemon_bad 1\n"), "check", "metrics")
		require.False(t, ok, "promtool check metrics passed a counter without _total or help:\n%s", out)
	})

	requireDocumented(t, body)
}

// readDoc reads a file of the repository, relative to its root.
func readDoc(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(deployDir(t), "..", path))
	require.NoError(t, err)
	return string(b)
}

// requireDocumented checks that every ratemon metric family of a /metrics
// body has a row in docs/OPERATIONS.md and in the README's Metrics section.
func requireDocumented(t *testing.T, body []byte) {
	t.Helper()
	ops := readDoc(t, "docs/OPERATIONS.md")
	readme := readDoc(t, "README.md")
	families := 0
	var undocumented []string
	for line := range strings.Lines(string(body)) {
		name, ok := strings.CutPrefix(line, "# TYPE ratemon_")
		if !ok {
			continue
		}
		families++
		row := "| `ratemon_" + strings.Fields(name)[0] + "` |"
		if !strings.Contains(ops, row) {
			undocumented = append(undocumented, "docs/OPERATIONS.md: no row "+row)
		}
		if !strings.Contains(readme, row) {
			undocumented = append(undocumented, "README.md Metrics: no row "+row)
		}
	}
	require.Empty(t, undocumented, "metrics served but not documented")
	require.Greater(t, families, 20, "ratemon metric families in /metrics")
}
