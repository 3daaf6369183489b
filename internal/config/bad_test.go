package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestLoad_badFiles loads every testdata/bad/<case>.yaml and compares the
// error with <case>.want, so that a new case is new data. Rule files the
// cases include live in testdata/bad/include/.
func TestLoad_badFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		t.Run(name, func(t *testing.T) {
			want, err := os.ReadFile(strings.TrimSuffix(f, ".yaml") + ".want")
			require.NoError(t, err, "every bad case needs a .want file")
			_, err = Load(f)
			require.Error(t, err)
			require.Equal(t, string(want), err.Error()+"\n")
		})
	}
	wants, err := filepath.Glob("testdata/bad/*.want")
	require.NoError(t, err)
	require.Len(t, wants, len(files), "every .want file needs a .yaml case")
}
