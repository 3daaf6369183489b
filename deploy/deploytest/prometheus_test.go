package deploytest

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// promServer is a real prometheus process started by startPrometheus.
type promServer struct {
	base string // http://127.0.0.1:port
	log  string // file holding its output
}

// startPrometheus runs prometheus with the shipped deploy/prometheus
// configuration, changed only to scrape target every second and to load the
// rules by absolute path. It stops when the test ends.
func startPrometheus(t *testing.T, target string) *promServer {
	t.Helper()
	bin := tool(t, "prometheus")
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "prometheus.yml")
	require.NoError(t, os.WriteFile(cfgPath, testPromConfig(t, target), 0o600))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // prometheus cannot listen on port 0 and say which port it got

	p := &promServer{base: "http://" + addr, log: filepath.Join(dir, "prometheus.log")}
	logf, err := os.Create(p.log)
	require.NoError(t, err)
	t.Cleanup(func() { _ = logf.Close() })
	cmd := exec.Command(bin,
		"--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--log.level=warn",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	require.NoError(t, cmd.Start())
	var waitErr error
	exited := make(chan struct{}) // closed once prometheus exited; waitErr is set then
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})

	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	timeout := time.After(20 * time.Second)
	for {
		if code, _ := get(p.base + "/-/ready"); code == http.StatusOK {
			return p
		}
		select {
		case <-exited:
			require.Failf(t, "prometheus exited", "%v\n%s", waitErr, p.output())
		case <-timeout:
			require.Failf(t, "prometheus not ready after 20s", "%s", p.output())
		case <-tick.C:
		}
	}
}

// testPromConfig is deploy/prometheus/prometheus.yml with the job's target
// replaced, a 1s scrape interval and absolute rule paths.
func testPromConfig(t *testing.T, target string) []byte {
	t.Helper()
	dir := filepath.Join(deployDir(t), "prometheus")
	b, err := os.ReadFile(filepath.Join(dir, "prometheus.yml"))
	require.NoError(t, err)
	var cfg struct {
		Global        map[string]any   `yaml:"global"`
		RuleFiles     []string         `yaml:"rule_files"`
		ScrapeConfigs []map[string]any `yaml:"scrape_configs"`
	}
	require.NoError(t, yaml.Unmarshal(b, &cfg))
	cfg.Global["scrape_interval"] = "1s"
	cfg.Global["scrape_timeout"] = "1s"
	cfg.Global["evaluation_interval"] = "1s"
	for i, f := range cfg.RuleFiles {
		cfg.RuleFiles[i] = filepath.Join(dir, f)
	}
	require.Len(t, cfg.ScrapeConfigs, 1, "prometheus.yml: one scrape job, ratemon")
	job := cfg.ScrapeConfigs[0]
	require.Equal(t, "ratemon", job["job_name"], "prometheus.yml: the rules and the dashboard expect job ratemon")
	job["static_configs"] = []map[string]any{{"targets": []string{target}}}
	out, err := yaml.Marshal(cfg)
	require.NoError(t, err)
	return out
}

func (p *promServer) output() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// apiResponse is the envelope of every Prometheus HTTP API answer.
type apiResponse struct {
	Status    string          `json:"status"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Data      json.RawMessage `json:"data"`
}

// api GETs a Prometheus API path and decodes its data into v; a query
// Prometheus refuses is an error.
func (p *promServer) api(path string, params url.Values, v any) error {
	u := p.base + path
	if params != nil {
		u += "?" + params.Encode()
	}
	code, body := get(u)
	if code == 0 {
		return errors.New("prometheus does not answer")
	}
	var r apiResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return fmt.Errorf("GET %s: status %d: %s", path, code, body)
	}
	if r.Status != "success" {
		return fmt.Errorf("GET %s: %s: %s", path, r.ErrorType, r.Error)
	}
	return json.Unmarshal(r.Data, v)
}

// series is one series of a query answer: a vector has Value, a matrix
// Values.
type series struct {
	Metric map[string]string `json:"metric"`
	Value  []any             `json:"value"`
	Values [][]any           `json:"values"`
}

// queryRange evaluates expr every step from start to now.
func (p *promServer) queryRange(expr string, start time.Time, step time.Duration) ([]series, error) {
	var d struct {
		Result []series `json:"result"`
	}
	now := time.Now()
	err := p.api("/api/v1/query_range", url.Values{
		"query": {expr},
		"start": {strconv.FormatInt(start.Unix(), 10)},
		"end":   {strconv.FormatInt(now.Unix(), 10)},
		"step":  {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)},
	}, &d)
	return d.Result, err
}

// query evaluates expr now.
func (p *promServer) query(expr string) ([]series, error) {
	var d struct {
		Result []series `json:"result"`
	}
	err := p.api("/api/v1/query", url.Values{"query": {expr}}, &d)
	return d.Result, err
}

// finite reports whether any sample of the answer is a number (not NaN or
// ±Inf): an empty answer, or one whose quantiles are all NaN because
// nothing was observed, draws nothing in Grafana.
func finite(ss []series) bool {
	for _, s := range ss {
		samples := s.Values
		if s.Value != nil {
			samples = append(samples, s.Value)
		}
		for _, v := range samples {
			if len(v) != 2 {
				continue
			}
			str, _ := v[1].(string)
			f, err := strconv.ParseFloat(str, 64)
			if err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
				return true
			}
		}
	}
	return false
}

// describe names the series of an answer, for failure messages.
func describe(ss []series) string {
	var parts []string
	for _, s := range ss {
		parts = append(parts, fmt.Sprint(s.Metric))
	}
	return "[" + strings.Join(parts, " ") + "]"
}
