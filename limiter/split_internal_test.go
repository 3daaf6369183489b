package limiter

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSplitUnits checks that pipelines are cut by work, not by call count:
// in order, every part within the limit unless one call alone exceeds it,
// and nothing lost or repeated.
func TestSplitUnits(t *testing.T) {
	mk := func(events ...int) []*call {
		out := make([]*call, len(events))
		for i, n := range events {
			out[i] = &call{events: n}
		}
		return out
	}
	sizes := func(parts [][]*call) [][]int {
		var out [][]int
		for _, p := range parts {
			var s []int
			for _, c := range p {
				s = append(s, c.events)
			}
			out = append(out, s)
		}
		return out
	}
	require.Empty(t, splitUnits(nil, 4))
	// one-event calls: the limit is a number of calls
	require.Equal(t, [][]int{{1, 1, 1, 1}, {1, 1}}, sizes(splitUnits(mk(1, 1, 1, 1, 1, 1), 4)))
	// 16 events weigh 3 units, 100 events 13
	require.Equal(t, [][]int{{16, 1}, {16}, {100}, {1, 1}}, sizes(splitUnits(mk(16, 1, 16, 100, 1, 1), 4)))

	calls := mk(3, 250, 0, 7, 8, 9, 64, 1, 1, 1000, 2, 15)
	parts := splitUnits(calls, 20)
	var flat []*call
	for _, p := range parts {
		units := 0
		for _, c := range p {
			units += c.units()
		}
		require.True(t, units <= 20 || len(p) == 1, "part of %d units, %d calls", units, len(p))
		flat = append(flat, p...)
	}
	require.Equal(t, calls, flat)
}
