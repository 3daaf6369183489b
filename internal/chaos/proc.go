package chaos

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// proc is one child process the checker runs and hurts (redis-server or
// ratemon serve). Its output goes to one log file, appended across
// restarts. An exit the checker did not cause is recorded: a daemon must
// survive every fault but the SIGKILL aimed at it.
type proc struct {
	name    string
	path    string
	args    []string
	env     []string // nil: the checker's environment
	logPath string

	mu         sync.Mutex // guards the fields below
	cmd        *exec.Cmd
	done       chan struct{} // closed when the current process has exited
	exit       error         // its exit status, once done is closed
	wanted     bool          // the checker stopped or killed it
	unexpected []string      // exits nobody asked for
}

// start runs the process (again). It must not be running.
func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done != nil {
		select {
		case <-p.done:
		default:
			return fmt.Errorf("%s: already running", p.name)
		}
	}
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("%s: open log: %w", p.name, err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "--- chaos: start %s at %s\n", p.name, time.Now().UTC().Format(time.RFC3339Nano))
	cmd := exec.Command(p.path, p.args...)
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group: a Ctrl-C meant for the checker must not stop
	// it before the checker has cleaned up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: start %s: %w", p.name, p.path, err)
	}
	done := make(chan struct{})
	p.cmd, p.done, p.exit, p.wanted = cmd, done, nil, false
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		defer p.mu.Unlock()
		p.exit = err
		if !p.wanted {
			p.unexpected = append(p.unexpected, fmt.Sprintf("%s exited by itself at %s (%v)",
				p.name, time.Now().UTC().Format(time.RFC3339), exitText(err)))
		}
		close(done)
	}()
	return nil
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// running reports whether the process is alive (a stopped one counts).
func (p *proc) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// pid is the process id of the current process, 0 when none runs.
func (p *proc) pid() int {
	if !p.running() {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd.Process.Pid
}

// signal sends sig to the running process.
func (p *proc) signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return fmt.Errorf("%s: not started", p.name)
	}
	if sig == syscall.SIGKILL || sig == syscall.SIGTERM {
		p.wanted = true
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("%s: send %v: %w", p.name, sig, err)
	}
	return nil
}

// kill sends SIGKILL and waits until the process is gone.
func (p *proc) kill() error {
	if !p.running() {
		return nil
	}
	if err := p.signal(syscall.SIGKILL); err != nil && p.running() {
		return err
	}
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	<-done
	return nil
}

// stop sends SIGTERM (SIGCONT first, in case it is paused) and waits up to
// timeout for a clean exit; then it kills the process and says so.
func (p *proc) stop(timeout time.Duration) error {
	if !p.running() {
		return nil
	}
	_ = p.signal(syscall.SIGCONT)
	if err := p.signal(syscall.SIGTERM); err != nil && p.running() {
		return err
	}
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	select {
	case <-done:
	case <-time.After(timeout):
		_ = p.kill()
		return fmt.Errorf("%s: did not stop within %v of SIGTERM", p.name, timeout)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var ee *exec.ExitError
	if errors.As(p.exit, &ee) {
		return fmt.Errorf("%s: stopped with %w", p.name, p.exit)
	}
	return nil
}

// unexpectedExits lists the exits the checker did not cause.
func (p *proc) unexpectedExits() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.unexpected...)
}

// logTail is the end of the process's log, for error messages.
func (p *proc) logTail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil || len(b) == 0 {
		return ""
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
