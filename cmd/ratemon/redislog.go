package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"
)

// redisLogger routes go-redis's own log lines (connection pool retries)
// into slog at debug level: the daemon reports Redis trouble itself, once,
// through /readyz, its metrics and its warnings.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, fmt.Sprintf(format, v...), "component", "redis")
}

// quietRedis installs redisLogger. go-redis keeps its logger in a package
// variable, so only the binary sets it, once, before any client exists.
func quietRedis(log *slog.Logger) { redis.SetLogger(redisLogger{log: log}) }
