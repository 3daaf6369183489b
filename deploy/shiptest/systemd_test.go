package shiptest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/internal/testenv"
)

const unitPath = "../systemd/ratemon.service"

// unit reads the [Service] directives of the unit: name to values (a
// directive may repeat).
func unit(t *testing.T) map[string][]string {
	f, err := os.Open(unitPath)
	require.NoError(t, err)
	defer f.Close()
	out := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = line
		case section == "[Service]":
			k, v, _ := strings.Cut(line, "=")
			out[k] = append(out[k], v)
		}
	}
	require.NoError(t, sc.Err())
	return out
}

// need fails when a tool the tests run is missing.
func need(t *testing.T, bins ...string) {
	for _, b := range bins {
		_, err := exec.LookPath(b)
		require.NoError(t, err, "%s is needed (Debian: util-linux for unshare and setpriv, systemd for systemd-analyze)", b)
	}
}

// binary builds bin/ratemon as `make build` does, into a directory every
// user may read, and returns its path.
func binary(t *testing.T) string {
	need(t, "go")
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o755))
	require.NoError(t, os.Chmod(filepath.Dir(dir), 0o755))
	out := filepath.Join(dir, "ratemon")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version=shiptest", "-o", out, "./cmd/ratemon")
	cmd.Dir = repoDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build: %s", b)
	return out
}

// run runs a command and returns its output, failing on a non-zero exit.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	b, err := exec.Command(name, args...).CombinedOutput()
	require.NoError(t, err, "%s %v: %s", name, args, b)
	return string(b)
}

// TestSystemd_unitVerifies runs systemd-analyze verify on the unit, with
// the binary path replaced by a real binary, and checks the sandboxing
// directives the unit promises.
func TestSystemd_unitVerifies(t *testing.T) {
	need(t, "systemd-analyze")
	u := unit(t)
	for k, v := range map[string]string{
		"DynamicUser": "yes", "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
		"PrivateTmp": "yes", "PrivateDevices": "yes", "CapabilityBoundingSet": "", "RestrictSUIDSGID": "yes",
		"MemoryDenyWriteExecute": "yes", "LockPersonality": "yes", "KillSignal": "SIGTERM",
	} {
		require.Equal(t, []string{v}, u[k], k)
	}
	require.Equal(t, []string{"AF_INET AF_INET6 AF_UNIX"}, u["RestrictAddressFamilies"])
	require.Contains(t, u["SystemCallFilter"], "@system-service")
	require.Equal(t, []string{"/usr/local/bin/ratemon serve --config /etc/ratemon/ratemon.yaml"}, u["ExecStart"])

	bin := binary(t)
	src, err := os.ReadFile(unitPath)
	require.NoError(t, err)
	dst := filepath.Join(t.TempDir(), "ratemon.service")
	require.NoError(t, os.WriteFile(dst, bytes.ReplaceAll(src, []byte("/usr/local/bin/ratemon"), []byte(bin)), 0o644))
	out, err := exec.Command("systemd-analyze", "verify", dst).CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Empty(t, strings.TrimSpace(string(out)), "systemd-analyze verify complains")
}

// installDir is where the sandbox shows the directory of the built binary
// (and the test's config), as the unit expects the binary to be installed.
const installDir = "/usr/local/bin"

// sandbox wraps a command in what this machine can reproduce of the unit:
// a private mount namespace where binDir appears at installDir, every file
// system is read-only but a fresh /tmp (ProtectSystem=strict,
// PrivateTmp=yes), then an unprivileged user and group (DynamicUser=yes),
// no new privileges (NoNewPrivileges=yes) and no capabilities
// (CapabilityBoundingSet=, AmbientCapabilities=).
func sandbox(ctx context.Context, binDir string, args ...string) *exec.Cmd {
	script := `set -e
mount --bind "$BINDIR" ` + installDir + `
for m in $(cut -d' ' -f5 /proc/self/mountinfo | sort -u); do
	case "$m" in /proc*|/sys*|/dev*) ;; *) mount -o remount,bind,ro "$m" 2>/dev/null || true ;; esac
done
mount -t tmpfs -o mode=1777 tmpfs /tmp
exec setpriv --reuid=65534 --regid=65534 --clear-groups --no-new-privs --inh-caps=-all --bounding-set=-all "$@"`
	all := append([]string{"-m", "--propagation", "private", "sh", "-c", script, "sandbox"}, args...)
	cmd := exec.CommandContext(ctx, "unshare", all...)
	cmd.Env = append(os.Environ(), "BINDIR="+binDir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

// TestSystemd_runsSandboxed runs the built binary in the sandbox: the
// sandbox itself refuses writes; `ratemon version` and `ratemon config
// validate` succeed; `ratemon serve` becomes ready against Redis and NATS
// and exits 0 on SIGTERM.
func TestSystemd_runsSandboxed(t *testing.T) {
	need(t, "unshare", "setpriv")
	binDir := filepath.Dir(binary(t))
	bin := installDir + "/ratemon"
	ctx := t.Context()

	probe, err := sandbox(ctx, binDir, "sh", "-c", "id -u; touch "+installDir+"/x 2>/dev/null || echo refused; touch /tmp/x && echo tmp-ok").CombinedOutput()
	require.NoError(t, err, "%s", probe)
	require.Equal(t, []string{"65534", "refused", "tmp-ok"}, lastLines(string(probe), 3), "the sandbox is not what it claims: %s", probe)

	out, err := sandbox(ctx, binDir, bin, "version").CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "shiptest")

	n := testenv.StartNATS(t)
	rdb := testenv.Redis(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	name := testenv.Name(t)
	cfgFile := installDir + "/ratemon.yaml"
	require.NoError(t, os.WriteFile(filepath.Join(binDir, "ratemon.yaml"), []byte(fmt.Sprintf(`redis: {url: "redis://%s/0", prefix: %q}
nats: {url: %q, stream: EV%s, deadletter_stream: DL%s, subject_prefix: rm%s}
http: {addr: %q}
rules:
  - {name: per-client-minute, match: {service: stocks}, key: [client], limit: 100, window: 1m}
`, testenv.RedisAddr(), testenv.Prefix(t, rdb), n.URL(), name, name, name, addr)), 0o644))

	out, err = sandbox(ctx, binDir, bin, "config", "validate", cfgFile).CombinedOutput()
	require.NoError(t, err, "%s", out)

	var logs bytes.Buffer
	serve := sandbox(ctx, binDir, bin, "serve", "--config", cfgFile)
	serve.Stdout, serve.Stderr = &logs, &logs
	require.NoError(t, serve.Start())
	exited := make(chan error, 1)
	go func() { exited <- serve.Wait() }()
	t.Cleanup(func() { _ = syscall.Kill(-serve.Process.Pid, syscall.SIGKILL) })
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 20*time.Second, 50*time.Millisecond, "ratemon serve never became ready in the sandbox:\n%s", &logs)

	// serve runs as the sandbox's pid: unshare and sh exec into it.
	require.NoError(t, serve.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-exited:
		require.NoError(t, err, "ratemon serve did not exit cleanly on SIGTERM:\n%s", &logs)
	case <-time.After(20 * time.Second):
		t.Fatalf("ratemon serve did not stop within 20s of SIGTERM:\n%s", &logs)
	}
}

func lastLines(s string, n int) []string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return slices.Clone(lines[max(0, len(lines)-n):])
}
