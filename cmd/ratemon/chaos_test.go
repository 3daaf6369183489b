package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestChaos_refusesBadFlags: a wrong mode or scenario is a usage error,
// refused before anything starts. The checker itself is tested in
// internal/chaos.
func TestChaos_refusesBadFlags(t *testing.T) {
	_, _, err := run(t.Context(), "", "chaos", "--mode", "medium")
	require.Equal(t, exitUsage, exitCode(err))
	require.ErrorContains(t, err, "must be short or long")
	_, _, err = run(t.Context(), "", "chaos", "--scenario", "daemon-kill", "--scenario", "meteor")
	require.Equal(t, exitUsage, exitCode(err))
	require.ErrorContains(t, err, `unknown scenario "meteor"`)
}
