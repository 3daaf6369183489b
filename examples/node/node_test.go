//go:build examples

// Package node_test runs the Node example (test.mjs) against a real
// daemon. It needs node and the example's packages: make test-examples
// runs `npm ci` first, then `go test -tags examples ./examples/...`.
package node_test

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

func TestNodeExample(t *testing.T) {
	node, err := exec.LookPath("node")
	require.NoError(t, err, "node is required by the Node example (Node 18 or later)")
	_, err = os.Stat("node_modules")
	require.NoError(t, err, "run `npm ci` in examples/node first (make test-examples does)")
	n := testenv.StartNATS(t)
	d := daemontest.Start(t, n.URL(), []limiter.Rule{{Name: "per-client", Match: limiter.Match{Service: "stocks"},
		Key: []limiter.Field{limiter.FieldClient}, Limit: 3, Window: 30 * time.Second, Action: limiter.ActionDeny}})
	var cases []map[string]string
	for _, v := range []string{"acme", "a{b}|c=d%", "new\nline\x00\x7f", "ünïcode ok", "100%"} {
		cases = append(cases, map[string]string{"value": v, "escaped": keyspace.Escape(v)})
	}
	js, err := json.Marshal(cases)
	require.NoError(t, err)
	cmd := exec.Command(node, "--test", "test.mjs")
	cmd.Env = append(os.Environ(), "REDIS_URL=redis://"+testenv.RedisAddr(), "NATS_URL="+n.URL(),
		"RATEMON_PREFIX="+d.Config.Redis.Prefix, "RATEMON_SUBJECT_PREFIX="+d.Config.NATS.SubjectPrefix,
		"RATEMON_LIMIT=3", "RATEMON_WINDOW_SECONDS=30", "RATEMON_ESCAPE_CASES="+string(js))
	out, err := cmd.CombinedOutput()
	t.Logf("node --test test.mjs:\n%s", out)
	require.NoError(t, err)
}
