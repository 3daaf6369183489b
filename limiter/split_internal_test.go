package limiter

import (
	"fmt"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/internal/testenv"
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

// TestExec_argumentsLiveOnePipelineAtATime checks that calls with a build
// function get their arguments only when their pipeline is sent and drop
// them once it has answered, so that a large batch never holds the
// arguments of all its calls at once; every reply is still kept.
func TestExec_argumentsLiveOnePipelineAtATime(t *testing.T) {
	rdb := testenv.Redis(t)
	s := &Store{rdb: rdb, chunk: 4}
	echo := &script{Script: redis.NewScript(`return ARGV[1]`)}
	require.NoError(t, echo.Load(t.Context(), rdb).Err())
	calls := make([]*call, 10)
	most := 0
	for i := range calls {
		calls[i] = &call{script: echo, events: 0, build: func() ([]string, []any) {
			live := 0
			for _, c := range calls {
				if c.args != nil {
					live++
				}
			}
			most = max(most, live)
			return []string{fmt.Sprintf("{t}%d", i)}, []any{i}
		}}
	}
	require.NoError(t, s.exec(t.Context(), calls))
	require.Equal(t, 3, most, "at most the other calls of one pipeline of 4 hold arguments")
	for i, c := range calls {
		require.Nil(t, c.args)
		require.Nil(t, c.cmd)
		require.Equal(t, fmt.Sprint(i), c.val)
	}
}
