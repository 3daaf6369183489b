package inline_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/internal/daemontest"
	"github.com/ratemon/ratemon/limiter"
	"github.com/ratemon/ratemon/limiter/inline"
)

// startDaemon runs a real daemon until the test ends.
func startDaemon(t testing.TB, natsURL string, rules []limiter.Rule) *daemontest.Daemon {
	t.Helper()
	return daemontest.Start(t, natsURL, rules)
}

// runChecker runs c until the test ends.
func runChecker(t testing.TB, c *inline.Checker) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
}

// quietLogger logs through t.Log at warn and above.
func quietLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
