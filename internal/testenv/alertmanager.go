package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Alertmanager is a real Prometheus Alertmanager (the Debian package
// prometheus-alertmanager) started for one test on a free port, without
// clustering, storing in a temporary directory.
type Alertmanager struct {
	URL string // http://127.0.0.1:port
}

// AlertmanagerAlert is what GET /api/v2/alerts says about one alert.
type AlertmanagerAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt"`
	Status      struct {
		State string `json:"state"` // active, suppressed, unprocessed
	} `json:"status"`
}

const alertmanagerConfig = `route:
  receiver: sink
  group_wait: 100ms
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: sink
`

// StartAlertmanager starts Alertmanager and waits until it is ready; it stops
// when the test ends. A missing binary fails the test: CI installs it
// (.ci/run), and a skipped test would hide that it does not.
func StartAlertmanager(t testing.TB) *Alertmanager {
	t.Helper()
	bin, err := exec.LookPath("prometheus-alertmanager")
	if err != nil {
		if bin, err = exec.LookPath("alertmanager"); err != nil {
			t.Fatalf("testenv: prometheus-alertmanager is not installed (apt-get install prometheus-alertmanager; .ci/run does): %v", err)
		}
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(cfg, []byte(alertmanagerConfig), 0o600); err != nil {
		t.Fatalf("testenv: write alertmanager config: %v", err)
	}
	addr := alertmanagerAddr(t)
	cmd := exec.Command(bin, "--config.file="+cfg, "--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--cluster.listen-address=", "--log.level=warn")
	var out alertmanagerOutput
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("testenv: start %s: %v", bin, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	am := &Alertmanager{URL: "http://" + addr}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(am.URL + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return am
			}
		}
		select {
		case <-exited:
			t.Fatalf("testenv: alertmanager exited at start:\n%s", out.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("testenv: alertmanager not ready after 20s:\n%s", out.String())
		}
	}
}

// Alerts returns the alerts Alertmanager holds that are not resolved.
func (am *Alertmanager) Alerts(ctx context.Context) ([]AlertmanagerAlert, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, am.URL+"/api/v2/alerts", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("get alerts: status %d", resp.StatusCode)
	}
	var out []AlertmanagerAlert
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("decode alerts: %w", err)
	}
	return out, nil
}

// alertmanagerAddr returns a loopback address with a port nothing listens on now.
func alertmanagerAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: find a free port: %v", err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// alertmanagerOutput collects a process's output for failure messages.
type alertmanagerOutput struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *alertmanagerOutput) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *alertmanagerOutput) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
