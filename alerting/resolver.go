package alerting

import (
	"context"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ratemon/ratemon/internal/keyspace"
	"github.com/ratemon/ratemon/limiter"
)

// Bounds of one look at the index.
const (
	checkPage     = 256    // due alerts checked in one round of scripts
	checkPages    = 16     // rounds per look, so a backlog cannot starve the loop
	maxActiveSeen = 100000 // alerts read into the local active set; past this the set stays empty
)

// resolve is the resolution clock. Evaluations only happen when a key gets
// events, so every replica looks at the index every CheckInterval (with
// jitter) and checks the alerts whose time came: check.lua resolves them,
// repeats them or hands off what a dead replica left. Which replica does it
// does not matter; the script decides atomically.
func (a *Alerting) resolve(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := a.checkDue(ctx); err != nil && ctx.Err() == nil {
			a.m.Errors.WithLabelValues("check").Inc()
			a.log.Warn("check alerts", "err", err)
		}
		a.refreshActive(ctx)
		iv := a.cfg.CheckInterval
		t.Reset(iv - iv/4 + rand.N(iv/2+1))
	}
}

// checkDue checks every alert whose check time has come.
func (a *Alerting) checkDue(ctx context.Context) error {
	for range checkPages {
		now := a.now()
		due, err := a.rdb.ZRangeByScoreWithScores(ctx, a.keys.AlertIndex(), &redis.ZRangeBy{
			Min: "-inf", Max: strconv.FormatInt(now, 10), Count: checkPage,
		}).Result()
		if err != nil || len(due) == 0 {
			return err
		}
		ids := make([]alertID, 0, len(due))
		scores := make([]float64, 0, len(due))
		calls := make([]*scriptCall, 0, len(due))
		var bad []any
		for _, z := range due {
			m, _ := z.Member.(string)
			rule, key, ok := keyspace.ParseAlertMember(m)
			if !ok {
				bad = append(bad, m)
				continue
			}
			ids = append(ids, alertID{rule, limiter.LimitKey(key)})
			scores = append(scores, z.Score)
			calls = append(calls, &scriptCall{script: a.scripts.check, keys: []string{a.keys.AlertState(key, rule)}, args: a.lifecycleArgs(now)})
		}
		if len(bad) > 0 {
			a.rdb.ZRem(ctx, a.keys.AlertIndex(), bad...)
		}
		if err := runScripts(ctx, a.rdb, calls); err != nil {
			return err
		}
		// Reschedule before settle: settle only ever moves a check earlier.
		args := make([]any, 0, 3*len(calls))
		for i, c := range calls {
			next, _, _ := parseLifecycle(c.cmd)
			args = append(args, keyspace.AlertMember(ids[i].rule, string(ids[i].key)), formatScore(scores[i]), next)
		}
		if err := a.scripts.reschedule.Run(ctx, a.rdb, []string{a.keys.AlertIndex()}, args...).Err(); err != nil {
			return err
		}
		if err := a.settle(ctx, ids, calls); err != nil {
			return err
		}
		if len(due) < checkPage {
			return nil
		}
	}
	return nil
}

func formatScore(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// refreshActive reads the alerts of the index into the set Observe uses to
// pass on results under the thresholds of active alerts, which make them
// resolve sooner.
func (a *Alerting) refreshActive(ctx context.Context) {
	idx := a.keys.AlertIndex()
	n, err := a.rdb.ZCard(ctx, idx).Result()
	if err != nil {
		return
	}
	set := map[alertID]struct{}{}
	if n > 0 && n <= maxActiveSeen {
		members, err := a.rdb.ZRange(ctx, idx, 0, maxActiveSeen-1).Result()
		if err != nil {
			return
		}
		for _, m := range members {
			if rule, key, ok := keyspace.ParseAlertMember(m); ok {
				set[alertID{rule, limiter.LimitKey(key)}] = struct{}{}
			}
		}
	}
	a.active.Store(&set)
}
