package main

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/internal/config"
)

// TestREADME_listsEverySetting keeps the configuration reference of the
// README true: every setting appears with its flag, variable and default.
func TestREADME_listsEverySetting(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	readme := string(b)
	for _, s := range config.Settings() {
		row := "| `" + s.Path + "` | `" + s.Default + "` | `--" + s.Flag + "` | `" + s.Env + "` |"
		require.Contains(t, readme, row, "README.md lacks the row %s", row)
	}
}
