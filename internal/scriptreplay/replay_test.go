package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/internal/testenv"
)

// MONITOR escapes what is not printable; the words come back byte for
// byte, and a line the capture cut short is not a command.
func TestMonitorWords(t *testing.T) {
	words, ok := monitorWords(`1796601463.364939 [0 127.0.0.1:58872] "evalsha" "ab" "1" "k:{a\"b}" "\x00\xbe\n" "x\\y"`)
	require.True(t, ok)
	require.Equal(t, []string{"evalsha", "ab", "1", `k:{a"b}`, "\x00\xbe\n", `x\y`}, words)
	_, ok = monitorWords(`1796601463.364939 [0 127.0.0.1:58872] "evalsha" "ab" "1" "cut`)
	require.False(t, ok)
	_, ok = monitorWords(`OK`)
	require.False(t, ok)
}

// A replay runs every captured EVALSHA and FCALL once, in order, with the given
// script, and measures the second half (or the share --measure gives).
func TestRunMain_replaysEveryCall(t *testing.T) {
	srv := testenv.StartPrivateRedis(t)
	rdb := srv.Client(t)
	dir := t.TempDir()
	capture := strings.Join([]string{
		`1.0 [0 127.0.0.1:1] "evalsha" "x" "1" "{k}" "1"`,
		`1.1 [0 lua] "INCRBY" "{k}" "1"`,
		`1.2 [0 127.0.0.1:1] "fcall" "ratemon_ingest_x" "1" "{k}" "10"`,
		`1.3 [0 127.0.0.1:1] "EVALSHA" "x" "1" "{k}" "100"`,
		`1.4 [0 127.0.0.1:1] "evalsha" "x" "1" "{k}" "1000"`,
		`1.5 [0 127.0.0.1:1] "evalsha" "x" "1" "{k}" "100`,
	}, "\n")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "m"), []byte(capture), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "s.lua"), []byte(`return redis.call('INCRBY', KEYS[1], ARGV[1])`), 0o600))
	require.NoError(t, rdb.Set(t.Context(), "stale", "1", 0).Err())
	var out strings.Builder
	err := runMain(t.Context(), []string{"--monitor", filepath.Join(dir, "m"), "--redis", srv.Addr(),
		"--script", filepath.Join(dir, "s.lua"), "--flush", "--batch", "1", "--after", "echo done"}, &out)
	require.NoError(t, err)
	require.Equal(t, "1111", rdb.Get(t.Context(), "{k}").Val(), "the four whole calls, each once")
	require.Zero(t, rdb.Exists(t.Context(), "stale").Val(), "the keyspace was emptied first")
	require.Contains(t, out.String(), "calls measured: 2 (of 4 captured), failed: 0 of 4")
	require.Contains(t, out.String(), "after: done")

	out.Reset()
	err = runMain(t.Context(), []string{"--monitor", filepath.Join(dir, "m"), "--redis", srv.Addr(),
		"--script", filepath.Join(dir, "s.lua"), "--flush", "--measure", "0.25"}, &out)
	require.NoError(t, err)
	require.Equal(t, "1111", rdb.Get(t.Context(), "{k}").Val(), "the keyspace emptied, the four calls again")
	require.Contains(t, out.String(), "calls measured: 1 (of 4 captured)", "--measure: the last quarter")

	err = runMain(t.Context(), []string{"--monitor", filepath.Join(dir, "m"), "--redis", srv.Addr(),
		"--script", filepath.Join(dir, "s.lua")}, &out)
	require.ErrorContains(t, err, "--flush")
	err = runMain(t.Context(), []string{"--monitor", filepath.Join(dir, "m"), "--redis", srv.Addr(),
		"--script", filepath.Join(dir, "s.lua"), "--flush", "--measure", "0"}, &out)
	require.ErrorContains(t, err, "--measure")
}
