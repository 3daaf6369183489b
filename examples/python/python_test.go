//go:build examples

// Package python_test runs the Python example (test_ratemon.py, standard
// library only) against a real daemon: make test-examples.
package python_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/internal/daemontest"
	"github.com/ratemon/ratemon/internal/keyspace"
	"github.com/ratemon/ratemon/internal/testenv"
	"github.com/ratemon/ratemon/limiter"
)

func TestPythonExample(t *testing.T) {
	python, err := exec.LookPath("python3")
	require.NoError(t, err, "python3 (3.10 or later) is required by the Python example")
	n := testenv.StartNATS(t)
	d := daemontest.Start(t, n.URL(), []limiter.Rule{{Name: "per-client", Match: limiter.Match{Service: "stocks"},
		Key: []limiter.Field{limiter.FieldClient}, Limit: 3, Window: 30 * time.Second, Action: limiter.ActionDeny}})
	var cases []map[string]string
	for _, v := range []string{"acme", "a{b}|c=d%", "new\nline\x00\x7f", "ünïcode ok", "100%"} {
		cases = append(cases, map[string]string{"value": v, "escaped": keyspace.Escape(v)})
	}
	js, err := json.Marshal(cases)
	require.NoError(t, err)
	cmd := exec.Command(python, "-m", "unittest", "-v", "test_ratemon")
	cmd.Env = append(os.Environ(), "REDIS_URL=redis://"+testenv.RedisAddr(), "NATS_URL="+n.URL(),
		"RATEMON_PREFIX="+d.Config.Redis.Prefix, "RATEMON_SUBJECT_PREFIX="+d.Config.NATS.SubjectPrefix,
		"RATEMON_LIMIT=3", "RATEMON_WINDOW_SECONDS=30", "RATEMON_ESCAPE_CASES="+string(js), "PYTHONDONTWRITEBYTECODE=1")
	out, err := cmd.CombinedOutput()
	t.Logf("python3 -m unittest test_ratemon:\n%s", out)
	require.NoError(t, err)
}
