package chaos

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/redis/go-redis/v9"

	"github.com/ratemon/ratemon/internal/backoff"
	"github.com/ratemon/ratemon/internal/bench"
)

// redisServer is a redis-server process without persistence on a fixed
// loopback port: killed and started again, it comes back empty, as a
// volatile Redis does.
type redisServer struct {
	proc *proc
	addr string
}

func startRedis(ctx context.Context, bin, dir string) (*redisServer, error) {
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, fmt.Errorf("the fault checker needs %s (Debian package redis-server): %w", bin, err)
	}
	port, err := bench.FreePort()
	if err != nil {
		return nil, err
	}
	r := &redisServer{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	r.proc = &proc{
		name: "redis-server", path: path, logPath: filepath.Join(dir, "redis.log"),
		args: []string{"--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--save", "", "--appendonly", "no",
			"--dir", dir, "--protected-mode", "no"},
	}
	if err := r.start(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// start runs the server and waits until it answers.
func (r *redisServer) start(ctx context.Context) error {
	if err := r.proc.start(); err != nil {
		return err
	}
	c := redis.NewClient(&redis.Options{Addr: r.addr, MaxRetries: -1})
	defer c.Close()
	return poll(ctx, 10*time.Second, 20*time.Millisecond, "redis-server "+r.addr+" to answer", func() (bool, error) {
		if !r.proc.running() {
			return false, fmt.Errorf("redis-server exited: %s", r.proc.logTail(1000))
		}
		pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		return c.Ping(pctx).Err() == nil, nil
	})
}

// restartEmpty kills the server with SIGKILL, leaves it down for down, and
// starts a new one on the same port: with no persistence, every key is gone.
func (r *redisServer) restartEmpty(ctx context.Context, down time.Duration) error {
	if err := r.proc.kill(); err != nil {
		return err
	}
	if err := backoff.Sleep(ctx, down); err != nil {
		return err
	}
	return r.start(ctx)
}

func (r *redisServer) close() { _ = r.proc.kill() }

// natsServer is an in-process NATS server with JetStream on a fixed
// loopback port, storing in a directory kept across restarts.
type natsServer struct {
	port int // -1 until the first start picks one
	dir  string
	srv  *server.Server
}

func startNATS(dir string) (*natsServer, error) {
	n := &natsServer{port: -1, dir: dir}
	if err := n.start(); err != nil {
		return nil, err
	}
	return n, nil
}

func (n *natsServer) start() error {
	srv, err := bench.StartNATS(n.port, n.dir)
	if err != nil {
		return err
	}
	// The next start listens on the same port, so clients reconnect.
	if a, ok := srv.Addr().(*net.TCPAddr); ok {
		n.port = a.Port
	}
	n.srv = srv
	return nil
}

func (n *natsServer) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

func (n *natsServer) shutdown() {
	if n.srv != nil {
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
		n.srv = nil
	}
}

// restart shuts the server down, leaves it down for down and starts it
// again on the same port and store.
func (n *natsServer) restart(ctx context.Context, down time.Duration) error {
	n.shutdown()
	if err := backoff.Sleep(ctx, down); err != nil {
		return err
	}
	return n.start()
}

// poll calls cond every interval until it reports true, returns an error,
// or timeout passes (then the error names what was awaited).
func poll(ctx context.Context, timeout, interval time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waited %v for %s", timeout, what)
		}
		if err := backoff.Sleep(ctx, interval); err != nil {
			return err
		}
	}
}
