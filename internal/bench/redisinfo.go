package bench

import (
	"bufio"
	"context"
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

// deletePrefix deletes every key named prefix + ":" + anything, with DEL so
// that the memory is freed before the next measurement.
func deletePrefix(ctx context.Context, rdb redis.UniversalClient, prefix string) (int, error) {
	iter := rdb.Scan(ctx, 0, prefix+":*", 1000).Iterator()
	var batch []string
	n := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		pipe := rdb.Pipeline()
		for _, k := range batch {
			pipe.Del(ctx, k) // one key per command: a cluster needs no common slot
		}
		_, err := pipe.Exec(ctx)
		n += len(batch)
		batch = batch[:0]
		return err
	}
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 1000 {
			if err := flush(); err != nil {
				return n, fmt.Errorf("delete keys under %s: %w", prefix, err)
			}
		}
	}
	if err := iter.Err(); err != nil {
		return n, fmt.Errorf("scan keys under %s: %w", prefix, err)
	}
	if err := flush(); err != nil {
		return n, fmt.Errorf("delete keys under %s: %w", prefix, err)
	}
	return n, nil
}
