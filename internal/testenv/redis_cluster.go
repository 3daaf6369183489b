package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// ClusterNodeTimeout is the cluster-node-timeout of test clusters: a master
// that stops answering is declared failed and replaced by its replica after
// about twice this.
const ClusterNodeTimeout = time.Second

// RedisCluster is a Redis Cluster of private redis-server processes on
// loopback: three masters, each with one replica, with a short node timeout
// so that a failover takes a couple of seconds. Every process is killed when
// the test ends.
type RedisCluster struct {
	t     testing.TB
	mu    sync.Mutex
	nodes []*redisNode
}

type redisNode struct {
	addr string
	dir  string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
}

// StartRedisCluster starts six redis-server processes with
// --cluster-enabled yes, joins them with `redis-cli --cluster create
// --cluster-replicas 1`, and waits until every node reports
// cluster_state:ok and every replica is in sync with its master.
func StartRedisCluster(t testing.TB) *RedisCluster {
	t.Helper()
	for _, bin := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("testenv: %s is not installed (Debian packages redis-server, redis-tools): %v", bin, err)
		}
	}
	c := &RedisCluster{t: t}
	t.Cleanup(c.stop)
	root := t.TempDir()
	for i := range 6 {
		n, err := startRedisNode(filepath.Join(root, "n"+strconv.Itoa(i)), true)
		if err != nil {
			t.Fatalf("testenv: %v", err)
		}
		c.nodes = append(c.nodes, n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := []string{"--cluster", "create"}
	args = append(args, c.Addrs()...)
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("testenv: redis-cli --cluster create: %v\n%s", err, out)
	}
	c.WaitHealthy(ctx)
	return c
}

// startRedisNode starts one redis-server without persistence on a free
// loopback port; with cluster, in cluster mode with its bus on a second
// free port. It returns once the server answers PING. A port taken by
// another process between the probe and the server's bind makes the
// server exit; it is then started again on new ports.
func startRedisNode(dir string, cluster bool) (*redisNode, error) {
	var last error
	for range 5 {
		n, err := launchRedisNode(dir, cluster)
		if err != nil {
			return nil, err
		}
		if last = n.waitReady(15 * time.Second); last == nil {
			return n, nil
		}
		_ = n.cmd.Process.Kill()
		<-n.done
	}
	return nil, last
}

// waitReady polls the node until it answers PING, its process exits, or
// the timeout passes.
func (n *redisNode) waitReady(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for !ping(ctx, n.addr) {
		select {
		case <-n.done:
			log, _ := os.ReadFile(filepath.Join(n.dir, "redis.log"))
			return fmt.Errorf("redis-server on %s exited:\n%s", n.addr, log)
		case <-ctx.Done():
			return fmt.Errorf("redis-server on %s does not answer after %v", n.addr, timeout)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

func launchRedisNode(dir string, cluster bool) (*redisNode, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	// A retry starts from a clean directory: no nodes.conf of the try before.
	_ = os.Remove(filepath.Join(dir, "nodes.conf"))
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	bus, err := freePort()
	if err != nil {
		return nil, err
	}
	args := []string{"--bind", "127.0.0.1", "--port", strconv.Itoa(port),
		"--dir", dir, "--save", "", "--appendonly", "no", "--repl-diskless-sync-delay", "0",
		"--logfile", filepath.Join(dir, "redis.log"), "--protected-mode", "no"}
	if cluster {
		args = append(args, "--cluster-port", strconv.Itoa(bus),
			"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", strconv.FormatInt(ClusterNodeTimeout.Milliseconds(), 10),
			"--cluster-replica-validity-factor", "0") // a replica may always take over
	}
	cmd := exec.Command("redis-server", args...)
	// Its own process group: a Ctrl-C on `go test` must not reach it before
	// the test's cleanup does.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start redis-server on port %d: %w", port, err)
	}
	n := &redisNode{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), dir: dir, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(n.done) }()
	return n, nil
}

// freePort returns a loopback port nothing listens on right now.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func ping(ctx context.Context, addr string) bool {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	return c.Ping(ctx).Err() == nil
}

// Addrs returns the address of every node, killed ones included.
func (c *RedisCluster) Addrs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.addr
	}
	return out
}

// URL is a redis+cluster:// URL naming every node as a seed.
func (c *RedisCluster) URL() string {
	return "redis+cluster://" + strings.Join(c.Addrs(), ",")
}

// Client returns a cluster client closed when the test ends.
func (c *RedisCluster) Client(t testing.TB) *redis.ClusterClient {
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// alive returns the nodes whose process still runs.
func (c *RedisCluster) alive() []*redisNode {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*redisNode
	for _, n := range c.nodes {
		select {
		case <-n.done:
		default:
			out = append(out, n)
		}
	}
	return out
}

// Masters returns the addresses of the masters that hold slots, as the
// live nodes see them.
func (c *RedisCluster) Masters(ctx context.Context) ([]string, error) {
	for _, n := range c.alive() {
		nc := redis.NewClient(&redis.Options{Addr: n.addr, MaxRetries: -1})
		slots, err := nc.ClusterSlots(ctx).Result() //nolint:staticcheck // the slot map as go-redis's cluster client reads it
		_ = nc.Close()
		if err != nil {
			continue
		}
		var out []string
		for _, s := range slots {
			if len(s.Nodes) > 0 && !slices.Contains(out, s.Nodes[0].Addr) {
				out = append(out, s.Nodes[0].Addr)
			}
		}
		slices.Sort(out)
		return out, nil
	}
	return nil, fmt.Errorf("no live node answers CLUSTER SLOTS")
}

// WaitHealthy waits until every live node says cluster_state:ok, knows
// every live node, sees all 16384 slots served by live masters, and every
// live replica's link to its master is up.
func (c *RedisCluster) WaitHealthy(ctx context.Context) {
	c.t.Helper()
	c.waitFor(ctx, "a healthy cluster", func() bool { return c.healthy(ctx) })
}

func (c *RedisCluster) healthy(ctx context.Context) bool {
	live := c.alive()
	var addrs []string
	for _, n := range live {
		addrs = append(addrs, n.addr)
	}
	for _, n := range live {
		nc := redis.NewClient(&redis.Options{Addr: n.addr, MaxRetries: -1})
		info, err := nc.ClusterInfo(ctx).Result()
		repl, rerr := nc.Info(ctx, "replication").Result()
		_ = nc.Close()
		if err != nil || rerr != nil {
			return false
		}
		if !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_slots_ok:16384") {
			return false
		}
		if strings.Contains(repl, "role:slave") && !strings.Contains(repl, "master_link_status:up") {
			return false
		}
	}
	masters, err := c.Masters(ctx)
	if err != nil || len(masters) != 3 {
		return false
	}
	for _, m := range masters {
		if !slices.Contains(addrs, m) {
			return false
		}
	}
	return true
}

// KillMaster kills the master at addr with SIGKILL, as a crash would, and
// returns at once; WaitFailover waits for its replica to take over.
func (c *RedisCluster) KillMaster(addr string) {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.nodes {
		if n.addr == addr {
			_ = n.cmd.Process.Kill()
			<-n.done
			return
		}
	}
	c.t.Fatalf("testenv: no cluster node %s", addr)
}

// WaitFailover waits until the slots of a killed master are served by a
// live node again and the cluster is healthy.
func (c *RedisCluster) WaitFailover(ctx context.Context) {
	c.t.Helper()
	c.WaitHealthy(ctx)
}

// MoveSlots migrates n slots, with their keys, from the master at from to
// the master at to with `redis-cli --cluster reshard`. While a slot moves,
// clients get ASK redirections (and TRYAGAIN for multi-key commands whose
// keys are split), then MOVED once it has moved.
func (c *RedisCluster) MoveSlots(ctx context.Context, from, to string, n int) error {
	id := func(addr string) (string, error) {
		nc := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
		defer nc.Close()
		return nc.ClusterMyID(ctx).Result()
	}
	fromID, err := id(from)
	if err != nil {
		return fmt.Errorf("cluster myid of %s: %w", from, err)
	}
	toID, err := id(to)
	if err != nil {
		return fmt.Errorf("cluster myid of %s: %w", to, err)
	}
	out, err := exec.CommandContext(ctx, "redis-cli", "--cluster", "reshard", from,
		"--cluster-from", fromID, "--cluster-to", toID, "--cluster-slots", strconv.Itoa(n),
		"--cluster-yes", "--cluster-pipeline", "10").CombinedOutput()
	if err != nil {
		return fmt.Errorf("redis-cli --cluster reshard: %w\n%s", err, out)
	}
	return nil
}

// waitFor polls cond every 50ms until it holds or ctx ends.
func (c *RedisCluster) waitFor(ctx context.Context, what string, cond func() bool) {
	c.t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			c.t.Fatalf("testenv: timed out waiting for %s", what)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop kills every node that still runs.
func (c *RedisCluster) stop() {
	for _, n := range c.alive() {
		_ = n.cmd.Process.Kill()
		<-n.done
	}
}
