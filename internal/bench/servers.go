package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/redis/go-redis/v9"
)

// servers are the private Redis and NATS that Options.Start asks for: a
// redis-server process on a free loopback port, without persistence, and
// an in-process NATS server with JetStream storing in a temporary
// directory. close stops both and removes the directory.
type servers struct {
	redisURL string
	natsURL  string
	redis    *exec.Cmd
	nats     *server.Server
	dir      string
}

func startServers(ctx context.Context, redisServer string) (*servers, error) {
	dir, err := os.MkdirTemp("", "ratemon-bench-servers-")
	if err != nil {
		return nil, fmt.Errorf("temporary directory: %w", err)
	}
	s := &servers{dir: dir}
	if err := s.startRedis(ctx, redisServer); err != nil {
		s.close()
		return nil, err
	}
	if err := s.startNATS(); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

func (s *servers) startRedis(ctx context.Context, bin string) error {
	path, err := exec.LookPath(bin)
	if err != nil {
		return fmt.Errorf("--start needs %s (Debian package redis-server): %w", bin, err)
	}
	port, err := FreePort()
	if err != nil {
		return err
	}
	cmd := exec.Command(path, "--bind", "127.0.0.1", "--port", strconv.Itoa(port),
		"--save", "", "--appendonly", "no", "--dir", s.dir, "--logfile", filepath.Join(s.dir, "redis.log"))
	// Its own process group: a Ctrl-C meant for the bench must not stop
	// Redis before the bench has cleaned up; close stops it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", path, err)
	}
	s.redis = cmd
	s.redisURL = fmt.Sprintf("redis://127.0.0.1:%d/0", port)
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port)})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		err := c.Ping(pctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("redis-server on port %d did not answer: %w", port, err)
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
}

func (s *servers) startNATS() error {
	srv, err := StartNATS(-1, filepath.Join(s.dir, "nats"))
	if err != nil {
		return err
	}
	s.nats = srv
	s.natsURL = srv.ClientURL()
	return nil
}

// StartNATS starts an in-process NATS server with JetStream on
// 127.0.0.1:port (-1: a free port), storing in dir, and waits until it
// takes connections. The bench and the fault checker run theirs with it.
func StartNATS(port int, dir string) (*server.Server, error) {
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true,
	})
	if err != nil {
		return nil, fmt.Errorf("in-process nats: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("in-process nats did not start within 10s")
	}
	return srv, nil
}

func (s *servers) close() {
	if s.nats != nil {
		s.nats.Shutdown()
		s.nats.WaitForShutdown()
	}
	if s.redis != nil {
		_ = s.redis.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = s.redis.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = s.redis.Process.Kill()
			<-done
		}
	}
	_ = os.RemoveAll(s.dir)
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	return port, nil
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
