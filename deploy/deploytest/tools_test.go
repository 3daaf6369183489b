package deploytest

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

// tool returns the path of a binary the tests need, failing the test (never
// skipping it) when it is not installed: a skipped check hides a broken CI.
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	require.NoError(t, err, "%s is not installed: apt-get install prometheus (the Debian package gives prometheus and promtool; .ci/run installs it)", name)
	return p
}

// deployDir is the repository's deploy/ directory.
func deployDir(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	require.True(t, ok)
	return filepath.Dir(filepath.Dir(file))
}

// promtool runs promtool with args and stdin; it returns the combined
// output and whether it exited 0.
func promtool(t *testing.T, stdin []byte, args ...string) (string, bool) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), tool(t, "promtool"), args...)
	cmd.Dir = deployDir(t)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		var ee *exec.ExitError
		require.ErrorAs(t, err, &ee, "run promtool %v", args)
		return string(out), false
	}
	return string(out), true
}
