package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// xaddPipeline is the number of XADDs sent in one pipeline by the ceiling.
const xaddPipeline = 1000

// runXAdd replays the key sequence as raw pipelined `XADD key * n 1`, one
// entry per event, in pipelines of xaddPipeline, from workers connections
// at once: the most a Redis can take when every event is one log entry. It
// returns entries per second.
func runXAdd(ctx context.Context, rdb redis.UniversalClient, names []string, seq []uint32, workers int, budget time.Duration) (float64, error) {
	var next, added atomic.Int64
	deadline := time.Now().Add(budget)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	values := []any{"n", "1"}
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(deadline) {
				lo := int(next.Add(xaddPipeline) - xaddPipeline)
				if lo >= len(seq) {
					return
				}
				hi := min(lo+xaddPipeline, len(seq))
				pipe := rdb.Pipeline()
				for _, k := range seq[lo:hi] {
					pipe.XAdd(ctx, &redis.XAddArgs{Stream: names[k], Values: values})
				}
				if _, err := pipe.Exec(ctx); err != nil {
					errs <- fmt.Errorf("pipelined xadd: %w", err)
					return
				}
				added.Add(int64(hi - lo))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return float64(added.Load()) / elapsed.Seconds(), nil
}
