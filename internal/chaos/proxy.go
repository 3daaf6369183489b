package chaos

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// proxy is a TCP proxy between the daemons and Redis that delays every
// reply: each chunk read from Redis is written to the daemon delay after
// it was read, without limiting throughput (chunks queue, as on a long
// link). The delay can be changed at any time; 0 passes replies through.
type proxy struct {
	ln     net.Listener
	target string
	log    *slog.Logger
	delay  atomic.Int64 // nanoseconds
	held   atomic.Int64 // reply chunks read from Redis, not yet written on

	mu    sync.Mutex // guards conns and closed
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func startProxy(target string, log *slog.Logger) (*proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("latency proxy: listen: %w", err)
	}
	p := &proxy{ln: ln, target: target, log: log, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

// setDelay sets the delay added to every reply from now on.
func (p *proxy) setDelay(d time.Duration) { p.delay.Store(int64(d)) }

// holding reports whether a reply Redis has sent is being held: the command
// has run in Redis, and its client has not heard so yet.
func (p *proxy) holding() bool { return p.held.Load() > 0 }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				p.log.Warn("latency proxy: accept", "err", err)
			}
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.serve(c)
		}()
	}
}

func (p *proxy) track(c net.Conn, add bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if add {
		p.conns[c] = struct{}{}
	} else {
		delete(p.conns, c)
	}
}

func (p *proxy) serve(client net.Conn) {
	server, err := net.DialTimeout("tcp", p.target, 2*time.Second)
	if err != nil {
		_ = client.Close()
		return
	}
	p.track(client, true)
	p.track(server, true)
	defer func() {
		_ = client.Close()
		_ = server.Close()
		p.track(client, false)
		p.track(server, false)
	}()
	done := make(chan struct{}, 2)
	go func() {
		_, _ = io.Copy(server, client)
		_ = server.Close()
		done <- struct{}{}
	}()
	go func() {
		p.delayed(client, server)
		_ = client.Close()
		done <- struct{}{}
	}()
	<-done
	<-done
}

// chunk is a piece of a reply and when it may be written on.
type chunk struct {
	b   []byte
	due time.Time
}

// delayed copies src to dst, each chunk delay after it was read.
func (p *proxy) delayed(dst, src net.Conn) {
	q := make(chan chunk, 4096)
	go func() {
		defer close(q)
		for {
			b := make([]byte, 32<<10)
			n, err := src.Read(b)
			if n > 0 {
				p.held.Add(1)
				q <- chunk{b: b[:n], due: time.Now().Add(time.Duration(p.delay.Load()))}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range q {
		if wait := time.Until(c.due); wait > 0 {
			time.Sleep(wait) // the injected latency itself, not a synchronisation
		}
		_, err := dst.Write(c.b)
		p.held.Add(-1)
		if err != nil {
			_ = src.Close()
			for range q { // let the reader finish
				p.held.Add(-1)
			}
			return
		}
	}
}

// close stops accepting and cuts every connection.
func (p *proxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
