package testenv

import (
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// NATS is an in-process NATS server with JetStream, on a random loopback
// port, storing in a temporary directory.
type NATS struct {
	t    testing.TB
	opts server.Options
	srv  *server.Server
}

// StartNATS starts a server that stops when the test ends.
func StartNATS(t testing.TB) *NATS {
	t.Helper()
	return StartNATSWith(t, func(*server.Options) {})
}

func (n *NATS) start() {
	n.t.Helper()
	srv, err := server.NewServer(&n.opts)
	if err != nil {
		n.t.Fatalf("testenv: new nats server: %v", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		n.t.Fatalf("testenv: nats server not ready")
	}
	// Keep the port across restarts, so clients reconnect to the same URL.
	if a, ok := srv.Addr().(*net.TCPAddr); ok {
		n.opts.Port = a.Port
	}
	n.srv = srv
}

// URL is the server's client URL.
func (n *NATS) URL() string { return n.srv.ClientURL() }

// Shutdown stops the server; it is safe to call twice.
func (n *NATS) Shutdown() {
	if n.srv != nil {
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
	}
}

// Restart stops the server and starts it again on the same port and store.
func (n *NATS) Restart() {
	n.t.Helper()
	n.Shutdown()
	n.start()
}

// Connect returns a client connection closed when the test ends.
func (n *NATS) Connect(t testing.TB) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(n.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatalf("testenv: connect nats: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}
