package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// redisSnap is what INFO says about Redis's CPU and memory.
type redisSnap struct {
	cpu float64 // used_cpu_user + used_cpu_sys, seconds since start
	mem int64   // used_memory, bytes
}

func snapRedis(ctx context.Context, rdb redis.UniversalClient) (redisSnap, error) {
	info, err := rdb.Info(ctx, "cpu", "memory").Result()
	if err != nil {
		return redisSnap{}, fmt.Errorf("redis info: %w", err)
	}
	f := infoFields(info)
	user, err1 := strconv.ParseFloat(f["used_cpu_user"], 64)
	sys, err2 := strconv.ParseFloat(f["used_cpu_sys"], 64)
	mem, err3 := strconv.ParseInt(f["used_memory"], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return redisSnap{}, fmt.Errorf("redis info: used_cpu_user %q, used_cpu_sys %q, used_memory %q", f["used_cpu_user"], f["used_cpu_sys"], f["used_memory"])
	}
	return redisSnap{cpu: user + sys, mem: mem}, nil
}

// UsedMemory is used_memory of INFO memory, in bytes.
func UsedMemory(ctx context.Context, rdb redis.UniversalClient) (int64, error) {
	s, err := snapRedis(ctx, rdb)
	return s.mem, err
}

// RedisCPU is used_cpu_user + used_cpu_sys of INFO cpu, in seconds.
func RedisCPU(ctx context.Context, rdb redis.UniversalClient) (float64, error) {
	s, err := snapRedis(ctx, rdb)
	return s.cpu, err
}

// infoFields parses the `name:value` lines of an INFO reply.
func infoFields(info string) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, "#") {
			out[k] = v
		}
	}
	return out
}

func redisVersion(ctx context.Context, rdb redis.UniversalClient) string {
	info, err := rdb.Info(ctx, "server").Result()
	if err != nil {
		return "unknown"
	}
	return infoFields(info)["redis_version"]
}

// scanPrefix calls fn with the keys under prefix, a thousand at a time, and
// returns how many there were.
func scanPrefix(ctx context.Context, rdb redis.UniversalClient, prefix string, fn func(keys []string) error) (int, error) {
	iter := rdb.Scan(ctx, 0, prefix+":*", 1000).Iterator()
	var batch []string
	n := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := fn(batch)
		n += len(batch)
		batch = batch[:0]
		return err
	}
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 1000 {
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
	if err := iter.Err(); err != nil {
		return n, fmt.Errorf("scan keys under %s: %w", prefix, err)
	}
	return n, flush()
}

// deletePrefix deletes every key under prefix and returns how many there
// were.
func deletePrefix(ctx context.Context, rdb redis.UniversalClient, prefix string) (int, error) {
	return scanPrefix(ctx, rdb, prefix, func(keys []string) error {
		pipe := rdb.Pipeline()
		for _, k := range keys {
			pipe.Del(ctx, k) // one key per command: a cluster needs no common slot
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("delete keys under %s: %w", prefix, err)
		}
		return nil
	})
}

// keysMemory sums MEMORY USAGE (every element counted: SAMPLES 0) over the
// keys under prefix: the memory of the run's own data, which used_memory
// blurs with client buffers, scripts and other tenants of the server.
func keysMemory(ctx context.Context, rdb redis.UniversalClient, prefix string) (int64, error) {
	var total int64
	_, err := scanPrefix(ctx, rdb, prefix, func(keys []string) error {
		pipe := rdb.Pipeline()
		cmds := make([]*redis.IntCmd, len(keys))
		for i, k := range keys {
			cmds[i] = pipe.MemoryUsage(ctx, k, 0)
		}
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return fmt.Errorf("memory usage of keys under %s: %w", prefix, err)
		}
		for _, c := range cmds {
			total += c.Val() // 0 for a key that expired meanwhile
		}
		return nil
	})
	return total, err
}
