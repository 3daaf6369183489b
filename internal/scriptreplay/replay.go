package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"

	"github.com/redis/go-redis/v9"

	"github.com/ratemon/ratemon/internal/bench"
)

// options of one replay.
type options struct {
	script string // the Lua source run for every call
	batch  int    // calls per pipeline
	before string // shell command run once the warm-up calls are replayed
	after  string // shell command run once the measured calls are replayed
	// measure is the share of the calls, the last ones, that is measured
	// (0 < measure <= 1); the calls before fill the keys.
	measure float64
}

// result of one replay: the measured calls and what they cost, and the
// calls of the whole replay that failed.
type result struct {
	calls      int
	errors     int
	firstError error
	cpuUS      float64 // Redis CPU per call, µs
	after      string  // what the after command printed
}

// replay flushes the server, runs the first calls to fill its keys, then
// the last o.measure of them, measured: Redis's CPU from INFO, and
// whatever the before and after commands measure (callgrind_control
// for instruction counts). Every call runs the given script by SHA.
func replay(ctx context.Context, rdb *redis.Client, calls []call, o options) (result, error) {
	var res result
	sha, err := rdb.ScriptLoad(ctx, o.script).Result()
	if err != nil {
		return res, fmt.Errorf("load the script: %w", err)
	}
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		return res, fmt.Errorf("flushall: %w", err)
	}
	half := len(calls) - int(float64(len(calls))*o.measure)
	if err := run(ctx, rdb, sha, calls[:half], o.batch, &res); err != nil {
		return res, err
	}
	if err := shell(ctx, o.before, nil); err != nil {
		return res, err
	}
	cpu0, err := bench.RedisCPU(ctx, rdb)
	if err != nil {
		return res, err
	}
	if err := run(ctx, rdb, sha, calls[half:], o.batch, &res); err != nil {
		return res, err
	}
	cpu1, err := bench.RedisCPU(ctx, rdb)
	if err != nil {
		return res, err
	}
	if err := shell(ctx, o.after, &res.after); err != nil {
		return res, err
	}
	res.calls = len(calls) - half
	if res.calls > 0 {
		res.cpuUS = (cpu1 - cpu0) * 1e6 / float64(res.calls)
	}
	return res, nil
}

// run sends calls in pipelines of batch, counting the calls that failed.
func run(ctx context.Context, rdb *redis.Client, sha string, calls []call, batch int, res *result) error {
	for start := 0; start < len(calls); start += batch {
		pipe := rdb.Pipeline()
		for _, c := range calls[start:min(start+batch, len(calls))] {
			args := make([]any, len(c.args))
			for i, a := range c.args {
				args[i] = a
			}
			pipe.EvalSha(ctx, sha, c.keys, args...)
		}
		cmds, err := pipe.Exec(ctx)
		if err != nil && len(cmds) == 0 {
			return fmt.Errorf("replay pipeline: %w", err)
		}
		for _, c := range cmds {
			if e := c.Err(); e != nil && !errors.Is(e, redis.Nil) {
				res.errors++
				if res.firstError == nil {
					res.firstError = e
				}
			}
		}
	}
	return nil
}

// shell runs cmd with sh -c when it is set, keeping its output in out.
func shell(ctx context.Context, cmd string, out *string) error {
	if cmd == "" {
		return nil
	}
	b, err := exec.CommandContext(ctx, "sh", "-c", cmd).Output()
	if err != nil {
		return fmt.Errorf("run %q: %w", cmd, err)
	}
	if out != nil {
		*out = string(b)
	}
	return nil
}
