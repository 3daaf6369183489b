package bench

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/internal/testenv"
)

// keysMemory sums MEMORY USAGE over the keys under its prefix only, and
// deletePrefix removes exactly those keys.
func TestKeysMemory_sumsThePrefixOnly(t *testing.T) {
	rdb := testenv.Redis(t)
	ctx := t.Context()
	mine, other := testenv.Prefix(t, rdb), testenv.Prefix(t, rdb)+"x"
	t.Cleanup(func() { testenv.DeletePrefix(rdb, other) })
	var want int64
	for i, k := range []string{mine + ":a", mine + ":{b}:c"} {
		require.NoError(t, rdb.RPush(ctx, k, make([]any, 100*(i+1))...).Err())
		n, err := rdb.MemoryUsage(ctx, k, 0).Result()
		require.NoError(t, err)
		want += n
	}
	require.NoError(t, rdb.Set(ctx, other+":a", "not mine", 0).Err())

	got, err := keysMemory(ctx, rdb, mine)
	require.NoError(t, err)
	require.Equal(t, want, got)

	n, err := deletePrefix(ctx, rdb, mine)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	left, err := keysMemory(ctx, rdb, mine)
	require.NoError(t, err)
	require.Zero(t, left)
	require.EqualValues(t, 1, rdb.Exists(ctx, other+":a").Val())
}
