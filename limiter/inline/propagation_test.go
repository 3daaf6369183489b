package inline_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/internal/daemontest"
	"github.com/ratemon/ratemon/internal/testenv"
	"github.com/ratemon/ratemon/limiter"
	"github.com/ratemon/ratemon/limiter/inline"
)

// Environment of the propagation child process.
const (
	envChild    = "RATEMON_PROPAGATION_CHILD"
	envFlags    = "RATEMON_PROPAGATION_FLAGS" // how many flags TestPropagation measures (default 200)
	envNATS     = "RATEMON_PROPAGATION_NATS"
	envRedis    = "RATEMON_PROPAGATION_REDIS"
	envDaemon   = "RATEMON_PROPAGATION_DAEMON"
	envPrefix   = "RATEMON_PROPAGATION_PREFIX"
	envSubjects = "RATEMON_PROPAGATION_SUBJECTS"
)

// TestPropagation measures how long a decision takes to reach a checker
// in another process: from the moment the daemon writes a deny flag in
// Redis to the moment the checker refuses the client. For each flag the
// test publishes the events that exceed a fresh client's limit, polls
// Redis for the flag (bracketing the write between the last poll that
// missed it and the first that saw it), and reads from the child process
// the time its Check first answered denied (see TestPropagationChild). It
// logs p50/p99/max of the
// upper bound (refusal minus the last miss) and of the lower bound.
func TestPropagation(t *testing.T) {
	flags := 200
	if v := os.Getenv(envFlags); v != "" {
		var err error
		flags, err = strconv.Atoi(v)
		require.NoError(t, err, envFlags)
	}
	n := testenv.StartNATS(t)
	d := startDaemon(t, n.URL(), perClient(3, time.Minute))
	rdb := testenv.Redis(t)
	child := startChild(t, d, n.URL())

	nc := n.Connect(t)
	var upper, lower []time.Duration
	for i := range flags {
		client := fmt.Sprintf("p%d-%d", i, time.Now().UnixNano())
		child.send("watch " + client)
		child.expect(t, "watching "+client)
		var batch []byte
		for range 3 {
			batch = fmt.Appendf(batch, `{"client":%q,"service":"stocks","ts":%d}`+"\n", client, time.Now().UnixMilli())
		}
		missed := time.Now() // the flag cannot be written before the events are sent
		require.NoError(t, nc.Publish(d.Subjects.Events("stocks"), batch))
		seen := pollFlag(t, rdb, d.Keys.Deny("client="+client), &missed)
		line := child.expect(t, "refused "+client+" ")
		ns, err := strconv.ParseInt(line[strings.LastIndexByte(line, ' ')+1:], 10, 64)
		require.NoError(t, err)
		refused := time.Unix(0, ns)
		upper = append(upper, refused.Sub(missed))
		lower = append(lower, max(refused.Sub(seen), 0))
	}
	p := func(xs []time.Duration, q float64) time.Duration {
		s := slices.Clone(xs)
		slices.Sort(s)
		return s[max(int(float64(len(s))*q+0.999999)-1, 0)]
	}
	t.Logf("propagation over %d flags (GOMAXPROCS %d, race %v): upper bound p50 %v p99 %v max %v; lower bound p50 %v p99 %v max %v",
		flags, runtime.GOMAXPROCS(0), raceEnabled, p(upper, 0.5), p(upper, 0.99), p(upper, 1), p(lower, 0.5), p(lower, 0.99), p(lower, 1))
}

// pollFlag polls key until it exists and returns when it was first seen;
// *missed is moved to the send time of the last poll that did not see it.
func pollFlag(t *testing.T, rdb *redis.Client, key string, missed *time.Time) time.Time {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		sent := time.Now()
		n, err := rdb.Exists(context.Background(), key).Result()
		require.NoError(t, err)
		if n == 1 {
			return time.Now()
		}
		*missed = sent
	}
	t.Fatalf("flag %s never set", key)
	return time.Time{}
}

// child is the checker process.
type child struct {
	in    io.Writer
	lines chan string
}

func startChild(t *testing.T, d *daemontest.Daemon, natsURL string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestPropagationChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), envChild+"=1", envNATS+"="+natsURL, envRedis+"="+testenv.RedisAddr(),
		envDaemon+"="+d.Base, envPrefix+"="+d.Config.Redis.Prefix, envSubjects+"="+d.Config.NATS.SubjectPrefix)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	require.NoError(t, err)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	c := &child{in: in, lines: make(chan string, 16)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if line, ok := strings.CutPrefix(sc.Text(), "PROP "); ok {
				c.lines <- line
			}
		}
		close(c.lines)
	}()
	t.Cleanup(func() {
		_ = in.Close()
		_ = cmd.Wait()
	})
	c.expect(t, "ready")
	return c
}

func (c *child) send(line string) { _, _ = io.WriteString(c.in, line+"\n") }

func (c *child) expect(t *testing.T, prefix string) string {
	t.Helper()
	select {
	case line, ok := <-c.lines:
		require.True(t, ok, "the child process ended")
		require.True(t, strings.HasPrefix(line, prefix), "want %q, got %q", prefix, line)
		return line
	case <-time.After(15 * time.Second):
		t.Fatalf("no %q from the child process", prefix)
		return ""
	}
}

// TestPropagationChild is the checker process of TestPropagation; run
// alone, it does nothing. It reads "watch <client>" lines and prints the
// time at which its checker first refuses a watched client: it checks the
// client as soon as the checker has applied a decision about it.
func TestPropagationChild(t *testing.T) {
	if os.Getenv(envChild) == "" {
		return
	}
	nc, err := nats.Connect(os.Getenv(envNATS))
	require.NoError(t, err)
	defer nc.Close()
	rdb := redis.NewClient(&redis.Options{Addr: os.Getenv(envRedis)})
	defer rdb.Close()
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Printf("PROP "+format+"\n", args...)
	}
	watched := map[limiter.LimitKey]string{} // guarded by mu
	var c *inline.Checker
	c, err = inline.NewChecker(inline.CheckerOptions{NATS: nc, Redis: rdb, RulesURL: os.Getenv(envDaemon),
		RedisPrefix: os.Getenv(envPrefix), SubjectPrefix: os.Getenv(envSubjects),
		OnDecision: func(d limiter.Decision) {
			mu.Lock()
			client, ok := watched[d.Key]
			mu.Unlock()
			if !ok || !c.Check(req(client)).Denied {
				return
			}
			at := time.Now().UnixNano()
			mu.Lock()
			delete(watched, d.Key)
			mu.Unlock()
			say("refused %s %d", client, at)
		}})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = c.Run(ctx) }()
	for !c.FeedUp() {
		time.Sleep(time.Millisecond)
	}
	say("ready")
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		client := strings.TrimPrefix(sc.Text(), "watch ")
		mu.Lock()
		watched[limiter.LimitKey("client="+client)] = client
		mu.Unlock()
		say("watching %s", client)
	}
}
