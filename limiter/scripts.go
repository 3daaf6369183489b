package limiter

import (
	"crypto/sha1"
	_ "embed"
	"encoding/hex"
	"strings"

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

// script is one Lua script: lib.lua and window.lua followed by the script's
// own file, run by SHA (EVALSHA) and loaded again on NOSCRIPT. A script of
// the ingestion path also has fn, its name in the scripts' Redis Functions
// library, which it is called by (FCALL) where that library could be
// loaded.
type script struct {
	*redis.Script
	fn string
}

// scripts holds the Lua scripts, and the Redis Functions library of those
// that ingestion calls for every key of every batch (append, evaluate,
// ingest). An EVALSHA runs its whole script again on every call, defining
// every function of lib.lua and window.lua before the few lines that use
// them: about 57,000 of the 425,000 instructions a call of a key far from
// its limits costs Redis (docs/BENCHMARKS.md). A library defines them once,
// when it is loaded, and each FCALL runs only the script's own lines.
type scripts struct {
	append   *script
	evaluate *script
	ingest   *script
	inspect  *script
	manual   *script
	// library is the FUNCTION LOAD source of append, evaluate and ingest,
	// named ratemon_ and a hash of its code, so that daemons of two
	// versions (a rolling upgrade) each call their own functions.
	library string
}

func newScripts() *scripts {
	with := func(body string) *script {
		return &script{Script: redis.NewScript(luaLib + "\n" + luaWindow + "\n" + body)}
	}
	s := &scripts{
		append:   with(luaAppend),
		evaluate: with(luaEvaluate),
		ingest:   with(luaIngest),
		inspect:  with(luaInspect),
		manual:   with(luaManual),
	}
	hot := []struct {
		name string
		body string
		s    *script
	}{{"append", luaAppend, s.append}, {"evaluate", luaEvaluate, s.evaluate}, {"ingest", luaIngest, s.ingest}}
	// The scripts read their keys and arguments from the globals KEYS and
	// ARGV; a library has no such globals, so it declares them as locals
	// of the library, which each function sets from its own arguments.
	// Nor may a library's own code use Lua's libraries (string, struct)
	// while it loads, as lib.lua's definitions do: they run in make, on the
	// first call after the library is loaded, and the functions they
	// define are kept for every later call. (They keep no state from call
	// to call: their only upvalues are constants and one another.)
	var code strings.Builder
	code.WriteString("local KEYS, ARGV\nlocal fns\nlocal function make()\n")
	code.WriteString(luaLib + "\n" + luaWindow + "\nreturn {\n")
	for _, h := range hot {
		code.WriteString(h.name + " = function()\n" + h.body + "\nend,\n")
	}
	code.WriteString("}\nend\n")
	sum := sha1.Sum([]byte(code.String()))
	hash := hex.EncodeToString(sum[:8])
	for _, h := range hot {
		h.s.fn = "ratemon_" + h.name + "_" + hash
		code.WriteString("redis.register_function('" + h.s.fn + "', function(keys, args)\n" +
			"  KEYS, ARGV = keys, args\n  if fns == nil then fns = make() end\n  return fns." + h.name + "()\nend)\n")
	}
	s.library = "#!lua name=ratemon_" + hash + "\n" + code.String()
	return s
}

func (s *scripts) all() []*script {
	return []*script{s.append, s.evaluate, s.ingest, s.inspect, s.manual}
}
