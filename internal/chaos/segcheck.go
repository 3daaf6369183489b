package chaos

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/ratemon/ratemon/limiter"
	"github.com/ratemon/ratemon/pipeline/event"
)

// segmentChecker compares, after each segment of the soak, the `segment`
// count of every client with what the load sent it in that segment.
type segmentChecker struct {
	e     *env
	rs    *limiter.Ruleset
	load  *soakLoad
	store *limiter.Store
	log   *slog.Logger

	checked  int      // counts compared
	problems []string // at most maxProblems
	failures int
}

func newSegmentChecker(e *env, rs *limiter.Ruleset, load *soakLoad, log *slog.Logger) (*segmentChecker, error) {
	st, err := limiter.NewStore(limiter.StoreOptions{Client: e.rdb, Keys: e.keys})
	if err != nil {
		return nil, err
	}
	return &segmentChecker{e: e, rs: rs, load: load, store: st, log: log}, nil
}

// problem records a failed check; the report keeps the first few, the log
// every one.
func (c *segmentChecker) problem(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	c.log.Warn("segment check failed", "problem", msg)
	c.failures++
	if len(c.problems) < maxProblems {
		c.problems = append(c.problems, msg)
	}
}

// run checks the segments in order, each once it is complete and ratemon
// has acknowledged its last message, until the load has ended and every
// segment is checked.
func (c *segmentChecker) run(ctx context.Context) {
	defer func() {
		if c.failures > len(c.problems) {
			c.problems = append(c.problems, fmt.Sprintf("... %d segment problems in all", c.failures))
		}
	}()
	for i := 0; ; i++ {
		var seg *segment
		err := poll(ctx, 2*segmentLen+time.Minute, 50*time.Millisecond, fmt.Sprintf("segment %d to end", i), func() (bool, error) {
			seg = c.load.closedSegment(i)
			return seg != nil || (c.load.ended.Load() && i >= c.load.segmentCount()), nil
		})
		if ctx.Err() != nil {
			return // the run was stopped
		}
		if err != nil {
			c.problem("segment %d: %v", i, err)
			return
		}
		if seg == nil {
			return // the load has ended
		}
		if err := c.check(ctx, i, seg); err != nil && ctx.Err() == nil {
			c.problem("segment %d: %v", i, err)
		}
	}
}

// check waits until ratemon has acknowledged the segment's last message,
// then compares every client's count.
func (c *segmentChecker) check(ctx context.Context, i int, seg *segment) error {
	segStart := c.load.start.Add(time.Duration(i) * segmentLen)
	// The segment's first events leave the window at segStart + window;
	// leave the comparison 10 s.
	latest := segStart.Add(segmentWindow - 10*time.Second)
	err := poll(ctx, time.Until(latest), 20*time.Millisecond, "ratemon to acknowledge the segment", func() (bool, error) {
		info, err := c.e.cons.Info(ctx)
		if err != nil {
			return false, fmt.Errorf("consumer info: %w", err)
		}
		return info.AckFloor.Stream >= seg.lastSeq, nil
	})
	if err != nil {
		return err
	}
	route := segmentRoute(i)
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for client, want := range seg.counts {
		g.Go(func() error {
			res, err := c.store.Check(gctx, c.rs, event.Event{Client: soakClient(client), Service: soakService, Route: route})
			if err != nil {
				return err
			}
			late := time.Now().After(segStart.Add(segmentWindow))
			mu.Lock()
			defer mu.Unlock()
			for _, r := range res.Rules {
				if r.Rule != "segment" {
					continue
				}
				c.checked++
				switch {
				case r.Count == want:
				case late:
					c.problem("segment %d, %s: compared too late, after the window", i, r.Key)
				default:
					c.problem("segment %d, %s: ratemon counts %d, %d were sent (%+d)", i, r.Key, r.Count, want, r.Count-want)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("check counts: %w", err)
	}
	c.log.Debug("segment checked", "segment", i)
	return nil
}
