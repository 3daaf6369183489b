package alerting

import (
	"context"
	_ "embed"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

var (
	//go:embed scripts/lib.lua
	luaLib string
	//go:embed scripts/observe.lua
	luaObserve string
	//go:embed scripts/check.lua
	luaCheck string
	//go:embed scripts/claim.lua
	luaClaim string
	//go:embed scripts/done.lua
	luaDone string
	//go:embed scripts/handed.lua
	luaHanded string
	//go:embed scripts/reschedule.lua
	luaReschedule string
	//go:embed scripts/lease.lua
	luaLease string
	//go:embed scripts/release.lua
	luaRelease string
)

// scripts holds the Lua scripts of the alert lifecycle. observe and check
// are lib.lua followed by their own file.
type scripts struct {
	observe, check, claim, done, handed, reschedule, lease, release *redis.Script
}

func newScripts() *scripts {
	return &scripts{
		observe:    redis.NewScript(luaLib + "\n" + luaObserve),
		check:      redis.NewScript(luaLib + "\n" + luaCheck),
		claim:      redis.NewScript(luaClaim),
		done:       redis.NewScript(luaDone),
		handed:     redis.NewScript(luaHanded),
		reschedule: redis.NewScript(luaReschedule),
		lease:      redis.NewScript(luaLease),
		release:    redis.NewScript(luaRelease),
	}
}

// scriptCall is one script invocation inside a pipeline.
type scriptCall struct {
	script *redis.Script
	keys   []string
	args   []any
	cmd    *redis.Cmd
}

// runScripts runs calls in one pipeline by SHA; calls that fail with
// NOSCRIPT are run again with EVAL (every script here is safe to retry).
// Errors stay on each call's cmd; the result is the first one that is not
// NOSCRIPT.
func runScripts(ctx context.Context, rdb redis.UniversalClient, calls []*scriptCall) error {
	if len(calls) == 0 {
		return nil
	}
	pipe := rdb.Pipeline()
	for _, c := range calls {
		c.cmd = c.script.EvalSha(ctx, pipe, c.keys, c.args...)
	}
	_, _ = pipe.Exec(ctx)
	var retry []*scriptCall
	for _, c := range calls {
		if err := c.cmd.Err(); err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
			retry = append(retry, c)
		}
	}
	if len(retry) > 0 {
		pipe = rdb.Pipeline()
		for _, c := range retry {
			c.cmd = c.script.Eval(ctx, pipe, c.keys, c.args...)
		}
		_, _ = pipe.Exec(ctx)
	}
	for _, c := range calls {
		if err := c.cmd.Err(); err != nil {
			return fmt.Errorf("redis script on %s: %w", c.keys[0], err)
		}
	}
	return nil
}
