package backoff_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/internal/backoff"
)

func TestBackoff_growsWithinBounds(t *testing.T) {
	b := backoff.New(100*time.Millisecond, time.Second)
	ceilings := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for _, c := range ceilings {
		d := b.Next()
		require.GreaterOrEqual(t, d, c*time.Millisecond/2)
		require.LessOrEqual(t, d, c*time.Millisecond)
	}
	b.Reset()
	require.LessOrEqual(t, b.Next(), 100*time.Millisecond)
}

func TestSleep_stopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	require.ErrorIs(t, backoff.Sleep(ctx, time.Hour), context.Canceled)
	require.NoError(t, backoff.Sleep(t.Context(), time.Millisecond))
}
