package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/ratemon/ratemon/internal/config"
)

// replica is one running daemon: a `ratemon serve` subprocess or a
// RunDaemon call in this process. stop ends it and waits.
type replica struct {
	addr    string // its HTTP address, for /readyz
	cmd     *exec.Cmd
	logPath string
	cancel  context.CancelFunc
	done    chan error // receives the exit once
	exited  error      // the exit, once stop or exitedEarly received it
	stopped bool
}

// pid is the process id of a subprocess replica, 0 in process.
func (r *replica) pid() int {
	if r.cmd == nil {
		return 0
	}
	return r.cmd.Process.Pid
}

// startReplicas starts Options.Replicas daemons with cfg, each on its own
// free HTTP port, and waits until every one answers /readyz.
func (b *Bench) startReplicas(ctx context.Context, cfg *config.Config, dir string) ([]*replica, error) {
	var rs []*replica
	for i := range b.opts.Replicas {
		port, err := FreePort()
		if err != nil {
			return nil, errors.Join(err, stopAll(rs))
		}
		c := *cfg
		c.HTTP.Addr = fmt.Sprintf("127.0.0.1:%d", port)
		r, err := b.startReplica(&c, dir, i)
		if err != nil {
			return nil, errors.Join(err, stopAll(rs))
		}
		rs = append(rs, r)
	}
	if err := waitReady(ctx, rs); err != nil {
		return nil, errors.Join(err, stopAll(rs))
	}
	return rs, nil
}

func (b *Bench) startReplica(cfg *config.Config, dir string, i int) (*replica, error) {
	r := &replica{addr: cfg.HTTP.Addr, done: make(chan error, 1)}
	if b.opts.InProcess {
		ctx, cancel := context.WithCancel(context.Background())
		r.cancel = cancel
		log := slog.New(minLevel{Handler: b.opts.Logger.Handler(), min: cfg.Log.Level.SlogLevel()}).With("replica", i)
		go func() { r.done <- b.opts.RunDaemon(ctx, cfg, log) }()
		return r, nil
	}
	path := filepath.Join(dir, fmt.Sprintf("replica-%d.yaml", i))
	if err := WriteConfig(path, cfg); err != nil {
		return nil, err
	}
	r.logPath = filepath.Join(dir, fmt.Sprintf("replica-%d.log", i))
	logf, err := os.Create(r.logPath)
	if err != nil {
		return nil, fmt.Errorf("replica log: %w", err)
	}
	defer logf.Close()
	r.cmd = exec.Command(b.opts.Exe, "serve", "--config", path, "--reload-interval", "0")
	// The secrets (redis and nats passwords, nats token) are not in the
	// file (WriteConfig): they go through the environment.
	r.cmd.Env = append(append(CleanEnv(os.Environ()), cfg.SecretEnv()...), b.opts.Env...)
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	if err := r.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s serve: %w", b.opts.Exe, err)
	}
	go func() { r.done <- r.cmd.Wait() }()
	return r, nil
}

// CleanEnv drops every RATEMON_* variable: they would override the
// generated config file (its fresh names above all).
func CleanEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, config.EnvPrefix) {
			out = append(out, kv)
		}
	}
	return out
}

// WriteConfig writes cfg as a YAML file `ratemon serve` reads. Secrets are
// left out, as a Secret marshals as "<secret>": the admin token, which
// neither the bench nor the fault checker needs, and the Redis and NATS
// passwords and token, which cfg.SecretEnv hands to the process.
func WriteConfig(path string, cfg *config.Config) error {
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("marshal replica config: %w", err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("re-read replica config: %w", err)
	}
	for _, section := range m {
		if sm, ok := section.(map[string]any); ok {
			for k, v := range sm {
				if v == "<secret>" {
					delete(sm, k)
				}
			}
		}
	}
	if b, err = yaml.Marshal(m); err != nil {
		return fmt.Errorf("marshal replica config: %w", err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("write replica config: %w", err)
	}
	return nil
}

// waitReady polls every replica's /readyz until all answer 200, one exits,
// or 30 s pass.
func waitReady(ctx context.Context, rs []*replica) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for _, r := range rs {
		for {
			if err := r.exitedEarly(); err != nil {
				return err
			}
			if ready(ctx, client, r.addr) {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("daemon on %s not ready within 30s%s", r.addr, r.logTail())
			}
			if err := sleep(ctx, 20*time.Millisecond); err != nil {
				return err
			}
		}
	}
	return nil
}

func ready(ctx context.Context, c *http.Client, addr string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/readyz", nil)
	if err != nil {
		return false
	}
	resp, err := c.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// exitedEarly returns an error when the replica has already stopped.
func (r *replica) exitedEarly() error {
	select {
	case err := <-r.done:
		r.stopped, r.exited = true, err
		if err == nil {
			err = errors.New("exit status 0")
		}
		return fmt.Errorf("daemon on %s exited during the run (%w)%s", r.addr, err, r.logTail())
	default:
		return nil
	}
}

// logTail is the end of a subprocess replica's log, for error messages.
func (r *replica) logTail() string {
	if r.logPath == "" {
		return ""
	}
	b, err := os.ReadFile(r.logPath)
	if err != nil || len(b) == 0 {
		return ""
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return "; its log ends with:\n" + string(b)
}

// stop ends the replica as SIGTERM does and waits up to 30 s, then kills it.
func (r *replica) stop() error {
	if r.stopped {
		return nil
	}
	r.stopped = true
	if r.cancel != nil {
		r.cancel()
	} else {
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case r.exited = <-r.done:
	case <-time.After(30 * time.Second):
		if r.cmd != nil {
			_ = r.cmd.Process.Kill()
		}
		return fmt.Errorf("daemon on %s did not stop within 30s", r.addr)
	}
	var ee *exec.ExitError
	if errors.As(r.exited, &ee) {
		return fmt.Errorf("daemon on %s: %w%s", r.addr, r.exited, r.logTail())
	}
	return r.exited
}

func stopAll(rs []*replica) error {
	var errs []error
	for _, r := range rs {
		errs = append(errs, r.stop())
	}
	return errors.Join(errs...)
}

// logReplicaExit is for cleanup paths that have no error to return.
func logReplicaExit(log *slog.Logger, rs []*replica) {
	if err := stopAll(rs); err != nil {
		log.Warn("stopping daemons", "err", err)
	}
}

// minLevel drops records below min, so that an in-process daemon logs at
// its configured level through the bench's handler.
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{Handler: h.Handler.WithAttrs(as), min: h.min}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{Handler: h.Handler.WithGroup(name), min: h.min}
}
