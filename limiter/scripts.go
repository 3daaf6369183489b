package limiter

import (
	_ "embed"

	"github.com/redis/go-redis/v9"
)

var (
	//go:embed scripts/lib.lua
	luaLib string
	//go:embed scripts/window.lua
	luaWindow string
	//go:embed scripts/append.lua
	luaAppend string
	//go:embed scripts/evaluate.lua
	luaEvaluate string
	//go:embed scripts/ingest.lua
	luaIngest string
	//go:embed scripts/inspect.lua
	luaInspect string
	//go:embed scripts/manual.lua
	luaManual string
)

// scripts holds the loaded Lua scripts. Each is lib.lua and window.lua
// followed by the script's own file, run by SHA (EVALSHA) and loaded again
// on NOSCRIPT.
type scripts struct {
	append   *redis.Script
	evaluate *redis.Script
	ingest   *redis.Script
	inspect  *redis.Script
	manual   *redis.Script
}

func newScripts() *scripts {
	with := func(body string) *redis.Script {
		return redis.NewScript(luaLib + "\n" + luaWindow + "\n" + body)
	}
	return &scripts{
		append:   with(luaAppend),
		evaluate: with(luaEvaluate),
		ingest:   with(luaIngest),
		inspect:  with(luaInspect),
		manual:   with(luaManual),
	}
}

func (s *scripts) all() []*redis.Script {
	return []*redis.Script{s.append, s.evaluate, s.ingest, s.inspect, s.manual}
}
