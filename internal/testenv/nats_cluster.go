package testenv

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// NATSCluster is three in-process nats-server nodes with JetStream, joined
// in one cluster over routes on loopback, so that streams can have three
// replicas. A node can be shut down and restarted on the same ports and
// store, as a crash and a restart would.
type NATSCluster struct {
	t     testing.TB
	nodes []*NATS
}

// StartNATSCluster starts the three nodes and waits until JetStream has a
// meta leader that every node agrees on.
func StartNATSCluster(t testing.TB) *NATSCluster {
	t.Helper()
	c := &NATSCluster{t: t}
	var clientPorts, routePorts []int
	for range 3 {
		cp, err := freePort()
		if err != nil {
			t.Fatalf("testenv: %v", err)
		}
		rp, err := freePort()
		if err != nil {
			t.Fatalf("testenv: %v", err)
		}
		clientPorts, routePorts = append(clientPorts, cp), append(routePorts, rp)
	}
	var routes []string
	for _, rp := range routePorts {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", rp))
	}
	for i := range 3 {
		n := &NATS{t: t, opts: server.Options{
			ServerName: fmt.Sprintf("n%d", i+1),
			Host:       "127.0.0.1",
			Port:       clientPorts[i],
			JetStream:  true,
			StoreDir:   t.TempDir(),
			NoLog:      true,
			NoSigs:     true,
			Cluster: server.ClusterOpts{
				Name: "ratemon-test",
				Host: "127.0.0.1",
				Port: routePorts[i],
			},
			Routes: server.RoutesFromStr(strings.Join(routes, ",")),
		}}
		c.nodes = append(c.nodes, n)
	}
	// The nodes must start together: JetStream waits for its peers before
	// a node is ready for connections.
	for _, n := range c.nodes {
		srv, err := server.NewServer(&n.opts)
		if err != nil {
			t.Fatalf("testenv: new nats server: %v", err)
		}
		go srv.Start()
		n.srv = srv
	}
	t.Cleanup(c.Shutdown)
	for _, n := range c.nodes {
		if !n.srv.ReadyForConnections(20 * time.Second) {
			t.Fatalf("testenv: nats cluster node %s not ready", n.opts.ServerName)
		}
	}
	c.WaitJetStream()
	return c
}

// Node returns node i (0, 1 or 2).
func (c *NATSCluster) Node(i int) *NATS { return c.nodes[i] }

// URL is the comma-separated client URL of every node, as nats.url takes it.
func (c *NATSCluster) URL() string {
	var urls []string
	for _, n := range c.nodes {
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", n.opts.Port))
	}
	return strings.Join(urls, ",")
}

// Connect returns a client connection to the cluster, reconnecting to any
// node forever; it is closed when the test ends.
func (c *NATSCluster) Connect(t testing.TB) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(c.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatalf("testenv: connect nats cluster: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// WaitJetStream waits until the running nodes agree on a JetStream meta
// leader.
func (c *NATSCluster) WaitJetStream() {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		leaders, running, current := 0, 0, 0
		for _, n := range c.nodes {
			if n.srv == nil || !n.srv.Running() {
				continue
			}
			running++
			if n.srv.JetStreamIsLeader() {
				leaders++
			}
			if n.srv.JetStreamIsCurrent() {
				current++
			}
		}
		if leaders == 1 && current == running {
			return
		}
		time.Sleep(50 * time.Millisecond) // polling interval, not synchronisation
	}
	c.t.Fatalf("testenv: nats cluster has no jetstream meta leader after 30s")
}

// Shutdown stops every node.
func (c *NATSCluster) Shutdown() {
	for _, n := range c.nodes {
		n.Shutdown()
	}
}

// Name is the server name of a cluster node ("n1", "n2", "n3"); empty for a
// standalone server.
func (n *NATS) Name() string { return n.opts.ServerName }
