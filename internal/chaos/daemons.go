package chaos

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ratemon/ratemon/internal/bench"
	"github.com/ratemon/ratemon/internal/config"
)

// daemon is one replica: a `ratemon serve --config F` process with its own
// config file and HTTP port. Killed and started again, it keeps both.
type daemon struct {
	proc *proc
	addr string // host:port of its HTTP server
	http *http.Client
}

// newDaemon writes replica i's config (cfg with its own HTTP port) and
// returns the replica, not started.
func newDaemon(exe, dir string, i int, cfg *config.Config) (*daemon, error) {
	port, err := bench.FreePort()
	if err != nil {
		return nil, err
	}
	c := *cfg
	c.HTTP.Addr = fmt.Sprintf("127.0.0.1:%d", port)
	path := filepath.Join(dir, fmt.Sprintf("daemon-%d.yaml", i))
	if err := bench.WriteConfig(path, &c); err != nil {
		return nil, err
	}
	name := fmt.Sprintf("daemon-%d", i)
	return &daemon{
		addr: c.HTTP.Addr,
		http: &http.Client{Timeout: time.Second},
		proc: &proc{
			name: name, path: exe, env: append(bench.CleanEnv(os.Environ()), c.SecretEnv()...),
			args:    []string{"serve", "--config", path, "--reload-interval", "0"},
			logPath: filepath.Join(dir, name+".log"),
		},
	}, nil
}

// ready reports whether the daemon answers 200 on /readyz.
func (d *daemon) ready(ctx context.Context) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+d.addr+"/readyz", nil)
	if err != nil {
		return false
	}
	resp, err := d.http.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// waitReady polls /readyz until the daemon is ready.
func (d *daemon) waitReady(ctx context.Context, timeout time.Duration) error {
	return poll(ctx, timeout, 20*time.Millisecond, d.proc.name+" to be ready", func() (bool, error) {
		if !d.proc.running() {
			return false, fmt.Errorf("%s exited; its log ends with:\n%s", d.proc.name, d.proc.logTail(2000))
		}
		return d.ready(ctx), nil
	})
}

// restart starts a killed daemon again and waits until it is ready.
func (d *daemon) restart(ctx context.Context) error {
	if err := d.proc.start(); err != nil {
		return err
	}
	return d.waitReady(ctx, 30*time.Second)
}

// counter reads one sample of the daemon's /metrics, named with its labels
// as the page writes it, e.g. `ratemon_ingest_duplicates_total{kind="id"}`.
func (d *daemon) counter(ctx context.Context, sample string) (float64, error) {
	page, err := d.metrics(ctx)
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(page) {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return 0, fmt.Errorf("%s: parse %s: %w", d.proc.name, sample, err)
			}
			return f, nil
		}
	}
	return 0, fmt.Errorf("%s: /metrics has no %s", d.proc.name, sample)
}

// metrics returns the daemon's /metrics page.
func (d *daemon) metrics(ctx context.Context) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+d.addr+"/metrics", nil)
	if err != nil {
		return "", err
	}
	resp, err := d.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("%s: get /metrics: %w", d.proc.name, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("%s: read /metrics: %w", d.proc.name, err)
	}
	return string(b), nil
}
