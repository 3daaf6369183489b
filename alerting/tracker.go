package alerting

import (
	"context"
	"math"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ratemon/ratemon/internal/backoff"
	"github.com/ratemon/ratemon/internal/keyspace"
	"github.com/ratemon/ratemon/limiter"
)

// Levels of one rule result.
const (
	levelNone     = 0
	levelNear     = 1
	levelExceeded = 2
)

// observation is one rule result for one limit key that matters to alerts.
type observation struct {
	rule   *limiter.Rule
	key    limiter.LimitKey
	level  int8
	count  int64
	limit  int64
	until  int64
	newest int64
	at     int64 // Unix ms it was observed
}

// maxTrackBatch bounds the alerts applied in one round of scripts.
const maxTrackBatch = 1024

// Observe hands the rule results that matter to alerts to the tracker: those
// at or over warn_at or the limit, and those of alerts already active. It
// never blocks: when the queue is full the results are dropped and counted
// in ratemon_alerting_observations_total{result="dropped"}.
func (a *Alerting) Observe(_ context.Context, evals []limiter.Evaluation) {
	rs := a.opts.Rules()
	if rs == nil {
		return
	}
	now := a.now()
	active := *a.active.Load()
	for i := range evals {
		ev := &evals[i]
		for _, st := range ev.Rules {
			r, ok := rs.Rule(st.Rule)
			if !ok {
				continue
			}
			lvl := levelOf(r, st)
			if lvl == levelNone {
				if _, ok := active[alertID{st.Rule, ev.Key}]; !ok {
					continue
				}
			}
			o := observation{rule: r, key: ev.Key, level: lvl, count: st.Count, limit: st.Limit, until: st.Until, newest: st.Newest, at: now}
			select {
			case a.obs <- o:
				a.tracked.Inc()
			default:
				a.dropped.Inc()
			}
		}
	}
}

// levelOf says whether a rule result is over the limit, near it, or neither.
func levelOf(r *limiter.Rule, st limiter.RuleState) int8 {
	switch {
	case st.Over:
		return levelExceeded
	case r.WarnAt > 0 && st.Count > 0 && float64(st.Count) >= math.Ceil(r.WarnAt*float64(st.Limit)):
		return levelNear
	}
	return levelNone
}

// merged is what a batch of observations says about one alert, in the
// terms of observe.lua.
type merged struct {
	id                           alertID
	last                         observation // the latest observation; its count, limit and newest are sent
	exT, exU, nrT, nrC, ulT, uwT int64
	observed                     int64 // the time of last
}

func (m *merged) add(o observation) {
	switch o.level {
	case levelExceeded:
		m.exT, m.exU, m.ulT, m.uwT = o.at, max(m.exU, o.until), 0, 0
		m.nrT, m.nrC = o.at, max(m.nrC, o.newest+o.rule.WindowMS())
	case levelNear:
		m.nrT, m.nrC, m.uwT = o.at, max(m.nrC, o.newest+o.rule.WindowMS()), 0
		if m.ulT == 0 {
			m.ulT = o.at
		}
	default:
		if m.ulT == 0 {
			m.ulT = o.at
		}
		if m.uwT == 0 {
			m.uwT = o.at
		}
	}
	if o.at >= m.observed {
		m.last, m.observed = o, o.at
	}
}

// trackEvery is how long observations are merged before they are applied:
// a key evaluated in every worker batch costs one script call per
// trackEvery, not one per evaluation.
const trackEvery = 100 * time.Millisecond

// pending is observations merged per alert, waiting to be applied.
type pending struct {
	byID  map[alertID]*merged
	order []*merged
}

func newPending() *pending { return &pending{byID: map[alertID]*merged{}} }

func (p *pending) add(o observation) {
	id := alertID{o.rule.Name, o.key}
	m := p.byID[id]
	if m == nil {
		m = &merged{id: id}
		p.byID[id] = m
		p.order = append(p.order, m)
	}
	m.add(o)
}

// track applies observations every trackEvery (or sooner when
// maxTrackBatch alerts are waiting) until ctx is cancelled, then applies
// what is still queued.
func (a *Alerting) track(ctx context.Context) {
	back := backoff.New(100*time.Millisecond, 5*time.Second)
	tick := time.NewTicker(trackEvery)
	defer tick.Stop()
	p := newPending()
	for {
		select {
		case o := <-a.obs:
			p.add(o)
			if len(p.order) < maxTrackBatch {
				continue
			}
		case <-tick.C:
			if len(p.order) == 0 {
				continue
			}
		case <-ctx.Done():
			a.drain(p)
			return
		}
		err := a.apply(ctx, p.order)
		p = newPending()
		if err != nil {
			a.m.Errors.WithLabelValues("observe").Inc()
			a.log.Warn("apply evaluations to alerts; they are lost, later ones catch up", "err", err)
			_ = backoff.Sleep(ctx, back.Next())
			continue
		}
		back.Reset()
	}
}

// drain applies what is pending and queued at shutdown, within FlushTimeout.
func (a *Alerting) drain(p *pending) {
	fctx, cancel := context.WithTimeout(context.Background(), a.opts.FlushTimeout)
	defer cancel()
	for {
	fill:
		for len(p.order) < maxTrackBatch {
			select {
			case o := <-a.obs:
				p.add(o)
			default:
				break fill
			}
		}
		if len(p.order) == 0 || a.apply(fctx, p.order) != nil {
			return
		}
		p = newPending()
	}
}

// apply runs observe.lua once per alert, after marking each alert for a
// check in the index, then hands the notifications off.
func (a *Alerting) apply(ctx context.Context, order []*merged) error {
	now := a.now()
	grace := a.opts.HandoffGrace.Milliseconds()
	// The index entry comes first: an alert opened by the script below is
	// always in the index, even if this replica dies right after.
	zs := make([]redis.Z, len(order))
	for i, m := range order {
		zs[i] = redis.Z{Score: float64(now + grace), Member: keyspace.AlertMember(m.id.rule, string(m.id.key))}
	}
	if err := a.rdb.ZAdd(ctx, a.keys.AlertIndex(), zs...).Err(); err != nil {
		return err
	}
	calls := make([]*scriptCall, len(order))
	for i, m := range order {
		r := m.last.rule
		args := append(a.lifecycleArgs(now),
			m.exT, m.exU, m.nrT, m.nrC, m.ulT, m.uwT, m.observed, m.last.count, m.last.limit, m.last.newest,
			string(r.Action), string(ruleSeverity(r)), r.WindowMS(), strconv.FormatFloat(r.WarnAt, 'g', -1, 64),
			serviceOf(r, m.id.key))
		calls[i] = &scriptCall{script: a.scripts.observe, keys: []string{a.keys.AlertState(string(m.id.key), m.id.rule)}, args: args}
	}
	if err := runScripts(ctx, a.rdb, calls); err != nil {
		return err
	}
	ids := make([]alertID, len(order))
	for i, m := range order {
		ids[i] = m.id
	}
	return a.settle(ctx, ids, calls)
}

// lifecycleArgs are the ARGV shared by observe.lua and check.lua.
func (a *Alerting) lifecycleArgs(now int64) []any {
	return []any{now, a.cfg.ResolveAfter.Milliseconds(), a.cfg.RepeatInterval.Milliseconds(),
		a.opts.HandoffGrace.Milliseconds(), historyTTL.Milliseconds(), keepNotifications}
}

// historyTTL is how long the state of a resolved alert, with its last
// notifications, stays in Redis; keepNotifications is how many
// notifications of one alert are kept.
const (
	historyTTL        = 24 * time.Hour
	keepNotifications = 64
)

// settle reads the replies of observe.lua or check.lua calls: it counts
// the transitions, hands the notifications to the outbox and makes sure
// each alert is in the index no later than its next check.
func (a *Alerting) settle(ctx context.Context, ids []alertID, calls []*scriptCall) error {
	var hs []handoff
	var zs []redis.Z
	for i, c := range calls {
		due, seqs, states := parseLifecycle(c.cmd)
		for j, s := range states {
			if s != "" {
				a.m.Transitions.WithLabelValues(ids[i].rule, s).Inc()
				a.log.Debug("alert", "rule", ids[i].rule, "limit_key", string(ids[i].key), "state", s, "seq", seqs[j])
			}
		}
		if len(seqs) > 0 {
			hs = append(hs, handoff{id: ids[i], seqs: seqs})
		}
		if due > 0 {
			zs = append(zs, redis.Z{Score: float64(due), Member: keyspace.AlertMember(ids[i].rule, string(ids[i].key))})
		}
	}
	if err := a.handOff(ctx, hs); err != nil {
		a.m.Errors.WithLabelValues("handoff").Inc()
		a.log.Warn("hand notifications to the outbox; they are handed off again later", "err", err)
	}
	if len(zs) > 0 {
		if err := a.rdb.ZAddLT(ctx, a.keys.AlertIndex(), zs...).Err(); err != nil {
			return err
		}
	}
	return nil
}

// parseLifecycle reads {due, seq, state, ...}.
func parseLifecycle(cmd *redis.Cmd) (due int64, seqs []int64, states []string) {
	v, _ := cmd.Val().([]any)
	if len(v) == 0 {
		return 0, nil, nil
	}
	due, _ = v[0].(int64)
	for i := 1; i+1 < len(v); i += 2 {
		seq, _ := v[i].(int64)
		st, _ := v[i+1].(string)
		seqs = append(seqs, seq)
		states = append(states, st)
	}
	return due, seqs, states
}
