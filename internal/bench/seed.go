package bench

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// seedRequest is what one request of the per-request approach saw: the id
// XADD gave its entry and the XLEN after the trim.
type seedRequest struct {
	ms, seq int64
	xlen    int64
	done    bool
}

// seedResult is the outcome of one per-request reference.
type seedResult struct {
	decisions    int
	perS         float64
	falseDenies  int // denied (XLEN > limit) where the exact count allows
	missedDenies int // allowed where the exact count denies
}

// runSeed replays the key sequence as the Origin's per-request check:
// XADD key * r 1; XTRIM key MINID [~|=] t-window+1; XLEN key (three round
// trips), with conns requests at a time. t is the time of the id XADD
// returned, so that the trim keeps exactly the window (t - window, t]; with
// `~` Redis may keep more (whole stream nodes only are dropped). A request
// is denied when XLEN exceeds the limit.
func runSeed(ctx context.Context, rdb redis.UniversalClient, names []string, seq []uint32, approx bool, limit, window int64, conns int, budget time.Duration) (seedResult, error) {
	reqs := make([]seedRequest, len(seq))
	var next atomic.Int64
	deadline := time.Now().Add(budget)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	mode := "="
	if approx {
		mode = "~"
	}
	for range conns {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(deadline) {
				i := int(next.Add(1) - 1)
				if i >= len(seq) {
					return
				}
				if err := seedOne(ctx, rdb, names[seq[i]], mode, window, &reqs[i]); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return seedResult{}, err
	}
	if err := ctx.Err(); err != nil {
		return seedResult{}, err
	}
	res := judgeSeed(reqs, seq, len(names), limit, window)
	res.perS = float64(res.decisions) / elapsed.Seconds()
	return res, nil
}

func seedOne(ctx context.Context, rdb redis.UniversalClient, key, mode string, window int64, r *seedRequest) error {
	id, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: []any{"r", "1"}}).Result()
	if err != nil {
		return fmt.Errorf("xadd %s: %w", key, err)
	}
	if r.ms, r.seq, err = parseID(id); err != nil {
		return err
	}
	if err := rdb.Do(ctx, "XTRIM", key, "MINID", mode, r.ms-window+1).Err(); err != nil {
		return fmt.Errorf("xtrim %s: %w", key, err)
	}
	if r.xlen, err = rdb.XLen(ctx, key).Result(); err != nil {
		return fmt.Errorf("xlen %s: %w", key, err)
	}
	r.done = true
	return nil
}

func parseID(id string) (ms, seq int64, err error) {
	a, b, ok := strings.Cut(id, "-")
	ms, err1 := strconv.ParseInt(a, 10, 64)
	seq, err2 := strconv.ParseInt(b, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("stream id %q: want <ms>-<seq>", id)
	}
	return ms, seq, nil
}

// judgeSeed compares every decision with the exact per-request answer: the
// key's requests with an id at or before this one's and a time in
// (t - window, t], this one included, exceed the limit. Entries that
// concurrent requests added after this one's are not counted, so with exact
// trimming a false deny can only come from such a race.
func judgeSeed(reqs []seedRequest, seq []uint32, nkeys int, limit, window int64) seedResult {
	var res seedResult
	perKey := make([][]int, nkeys)
	for i := range reqs {
		if reqs[i].done {
			perKey[seq[i]] = append(perKey[seq[i]], i)
			res.decisions++
		}
	}
	for _, idx := range perKey {
		slices.SortFunc(idx, func(a, b int) int {
			if c := cmp.Compare(reqs[a].ms, reqs[b].ms); c != 0 {
				return c
			}
			return cmp.Compare(reqs[a].seq, reqs[b].seq)
		})
		lo := 0
		for n, i := range idx {
			for reqs[idx[lo]].ms <= reqs[i].ms-window {
				lo++
			}
			exact := int64(n-lo+1) > limit
			denied := reqs[i].xlen > limit
			switch {
			case denied && !exact:
				res.falseDenies++
			case !denied && exact:
				res.missedDenies++
			}
		}
	}
	return res
}
