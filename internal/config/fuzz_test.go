package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/limiter"
)

// FuzzLoadConfig checks that Parse never panics, that a config it accepts
// compiles, and that every problem it reports names a file.
func FuzzLoadConfig(f *testing.F) {
	for _, pattern := range []string{
		filepath.Join(configsDir, "*.yaml"),
		filepath.Join(configsDir, "rules", "*.yaml"),
		"testdata/bad/*.yaml",
		"testdata/bad/include/*.yaml",
	} {
		files, err := filepath.Glob(pattern)
		require.NoError(f, err)
		for _, file := range files {
			data, err := os.ReadFile(file)
			require.NoError(f, err)
			f.Add(data)
		}
	}
	f.Add([]byte("a: &a [*a]\nrules: *a\n"))
	f.Add([]byte("rules: [{name: a, limit: 1, window: 1s, <<: {key: [ip]}}]\n"))
	// The name places the input in configs/, so its includes find real files.
	name := filepath.Join(configsDir, "fuzz.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(name, data)
		if err == nil {
			require.NotEmpty(t, cfg.Rules)
			_, err := limiter.NewRuleset(cfg.Rules)
			require.NoError(t, err)
			return
		}
		var le *LoadError
		require.ErrorAs(t, err, &le)
		require.NotEmpty(t, le.Problems)
		for _, p := range le.Problems {
			require.NotEmpty(t, p.File, "problem without a file: %s", p)
			require.NotEmpty(t, p.Msg, "problem without a message: %s", p)
		}
	})
}
