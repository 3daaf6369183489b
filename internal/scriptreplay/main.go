// Command scriptreplay replays the script calls of a `redis-cli monitor`
// capture against a scratch Redis server, to measure what each call costs
// Redis (docs/BENCHMARKS.md, "The cost of a script call"):
//
//	go run ./internal/scriptreplay --monitor paced.monitor --redis 127.0.0.1:6392 \
//	    --script /tmp/cut.lua --flush
//
// It runs every captured EVALSHA and FCALL, in order and by the SHA of --script
// (the scripts of limiter/scripts, whole or cut short after a step), over
// the server's emptied keyspace: the first half fills the keys, the second
// half is measured (--measure 0.2: the last fifth, after four fifths that
// fill the keys, for a capture longer than a key's hold). It prints the measured calls, Redis's CPU per call from
// INFO, and the output of --after (for example callgrind_control's counts
// when the server runs under valgrind).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"

	"github.com/redis/go-redis/v9"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := runMain(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "scriptreplay:", err)
		os.Exit(1)
	}
}

func runMain(ctx context.Context, argv []string, w io.Writer) error {
	fs := flag.NewFlagSet("scriptreplay", flag.ContinueOnError)
	monitor := fs.String("monitor", "", "file holding a redis-cli monitor capture")
	addr := fs.String("redis", "", "host:port of a scratch redis-server (its keys are deleted)")
	script := fs.String("script", "", "file holding the Lua script every call runs")
	flush := fs.Bool("flush", false, "confirm that the server's keys may be deleted (FLUSHALL)")
	batch := fs.Int("batch", 100, "calls per pipeline")
	before := fs.String("before", "", "shell command run before the measured half (e.g. callgrind_control -z)")
	after := fs.String("after", "", "shell command run after it; its output is printed")
	measure := fs.Float64("measure", 0.5, "share of the calls, the last ones, that is measured; the calls before fill the keys")
	if err := fs.Parse(argv); err != nil {
		return err
	}
	switch {
	case *monitor == "" || *addr == "" || *script == "":
		return errors.New("--monitor, --redis and --script are required")
	case !*flush:
		return fmt.Errorf("the replay deletes every key of %s: pass --flush to confirm it is a scratch server", *addr)
	case !(*measure > 0 && *measure <= 1):
		return fmt.Errorf("--measure must be in (0, 1], got %g", *measure)
	case *batch < 1:
		return fmt.Errorf("--batch must be at least 1, got %d", *batch)
	}
	f, err := os.Open(*monitor)
	if err != nil {
		return fmt.Errorf("open capture: %w", err)
	}
	defer f.Close()
	calls, err := readCalls(f)
	if err != nil {
		return err
	}
	src, err := os.ReadFile(*script)
	if err != nil {
		return fmt.Errorf("read script: %w", err)
	}
	// No timeouts: under valgrind a pipeline takes seconds.
	rdb := redis.NewClient(&redis.Options{Addr: *addr, ReadTimeout: -1, WriteTimeout: -1})
	defer rdb.Close()
	res, err := replay(ctx, rdb, calls, options{script: string(src), batch: *batch, before: *before, after: *after, measure: *measure})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "calls measured: %d (of %d captured), failed: %d of %d\n", res.calls, len(calls), res.errors, len(calls))
	if res.firstError != nil {
		fmt.Fprintf(w, "first failure: %v\n", res.firstError)
	}
	fmt.Fprintf(w, "redis cpu per call: %.1f us\n", res.cpuUS)
	if res.after != "" {
		fmt.Fprintf(w, "after: %s", res.after)
	}
	return nil
}
