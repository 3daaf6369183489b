// Package devenv gives `make run` (`ratemon serve --dev`) what it needs on a
// fresh machine: when the configured NATS or Redis does not answer, it starts
// an in-process NATS server with JetStream, and a local redis-server when one
// is installed, else an in-process Redis stand-in that is for trying ratemon
// only. Nothing here runs unless --dev is given.
package devenv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/redis/go-redis/v9"
)

// Env holds what Ensure started; Close stops it.
type Env struct {
	stops []func()
}

// Close stops everything Ensure started, in reverse order.
func (e *Env) Close() {
	for i := len(e.stops) - 1; i >= 0; i-- {
		e.stops[i]()
	}
}

// Options tells Ensure where the services are expected and where to keep
// their data.
type Options struct {
	RedisURL string // redis://host:port/db
	NATSURL  string // nats://host:port (the first of a list)
	DataDir  string // JetStream storage of the in-process NATS (default .ratemon-dev/nats)
	// RedisServer is the redis-server program to start (default
	// "redis-server", looked up in PATH); when it is not found the
	// in-process stand-in is used.
	RedisServer string
	Logger      *slog.Logger
}

// Ensure starts what does not answer at the configured addresses. Only
// loopback addresses are started; a remote one that does not answer is an
// error.
func Ensure(ctx context.Context, o Options) (*Env, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.RedisServer == "" {
		o.RedisServer = "redis-server"
	}
	if o.DataDir == "" {
		o.DataDir = filepath.Join(".ratemon-dev", "nats")
	}
	env := &Env{}
	if err := env.ensureNATS(o); err != nil {
		env.Close()
		return nil, err
	}
	if err := env.ensureRedis(ctx, o); err != nil {
		env.Close()
		return nil, err
	}
	return env, nil
}

func answers(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

func loopbackHostPort(raw, defPort string) (host string, port int, err error) {
	u, err := url.Parse(strings.TrimSpace(strings.Split(raw, ",")[0]))
	if err != nil {
		return "", 0, errors.New("cannot parse the url") // config validation has named the problem
	}
	host, p := u.Hostname(), u.Port()
	if p == "" {
		p = defPort
	}
	if host == "" {
		host = "127.0.0.1"
	}
	port, err = strconv.Atoi(p)
	if err != nil {
		return "", 0, fmt.Errorf("port of %s: %w", u.Host, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return "", 0, fmt.Errorf("%s does not answer and is not a loopback address, so --dev will not start it", u.Host)
	}
	return host, port, nil
}

func (e *Env) ensureNATS(o Options) error {
	host, port, err := loopbackHostPort(o.NATSURL, "4222")
	if err != nil {
		if answers(hostPortOf(o.NATSURL, "4222")) {
			return nil
		}
		return err
	}
	if answers(net.JoinHostPort(host, strconv.Itoa(port))) {
		return nil
	}
	if err := os.MkdirAll(o.DataDir, 0o750); err != nil {
		return fmt.Errorf("nats data dir: %w", err)
	}
	srv, err := server.NewServer(&server.Options{
		Host: host, Port: port, JetStream: true, StoreDir: o.DataDir, NoSigs: true, NoLog: true,
	})
	if err != nil {
		return fmt.Errorf("in-process nats: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return errors.New("in-process nats did not start")
	}
	e.stops = append(e.stops, func() { srv.Shutdown(); srv.WaitForShutdown() })
	o.Logger.Warn("NATS was not running: started an in-process NATS server with JetStream (dev mode)",
		"component", "devenv", "url", srv.ClientURL(), "store", o.DataDir)
	return nil
}

func hostPortOf(raw, defPort string) string {
	u, err := url.Parse(strings.TrimSpace(strings.Split(raw, ",")[0]))
	if err != nil {
		return raw
	}
	p := u.Port()
	if p == "" {
		p = defPort
	}
	return net.JoinHostPort(u.Hostname(), p)
}

func (e *Env) ensureRedis(ctx context.Context, o Options) error {
	host, port, err := loopbackHostPort(o.RedisURL, "6379")
	if err != nil {
		if answers(hostPortOf(o.RedisURL, "6379")) {
			return nil
		}
		return err
	}
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	if answers(addr) {
		return nil
	}
	if bin, err := exec.LookPath(o.RedisServer); err == nil {
		cmd := exec.Command(bin, "--bind", host, "--port", strconv.Itoa(port), "--save", "", "--appendonly", "no")
		// Its own process group: a Ctrl-C meant for ratemon must not stop
		// Redis before ratemon has finished its shutdown; Close stops it.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start redis-server: %w", err)
		}
		e.stops = append(e.stops, func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		if err := waitRedis(ctx, addr); err != nil {
			return err
		}
		o.Logger.Warn("Redis was not running: started a local redis-server without persistence (dev mode)",
			"component", "devenv", "addr", addr, "pid", cmd.Process.Pid)
		return nil
	}
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr(addr); err != nil {
		return fmt.Errorf("in-process redis stand-in: %w", err)
	}
	e.stops = append(e.stops, m.Close)
	o.Logger.Warn("!!! TRIAL ONLY: neither Redis nor redis-server was found; using an in-process Redis stand-in (miniredis). "+
		"It keeps nothing, is slow and is not Redis. Install redis-server for real use. !!!", "component", "devenv", "addr", addr)
	return nil
}

func waitRedis(ctx context.Context, addr string) error {
	c := redis.NewClient(&redis.Options{Addr: addr})
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
			return fmt.Errorf("redis-server on %s did not answer: %w", addr, err)
		}
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
}
