package alerting

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ratemon/ratemon/internal/backoff"
)

// outboxGroup is the consumer group of the outbox.
const outboxGroup = "alerting"

// entry is a notification being delivered: its outbox entry, the alert, and
// the sinks that still have to take it. The notifier goroutine owns it.
type entry struct {
	outboxEntry
	alert   Alert
	targets []*sinkRunner
	pending int
}

// notifier delivers the outbox while this replica holds the lease, so that
// one replica groups all the alerts of a rule into one message. A reader
// goroutine keeps the lease and reads the outbox; the run goroutine owns the
// entries and groups; each sink has its own goroutine (sinkRunner.run).
type notifier struct {
	a        *Alerting
	leader   atomic.Bool
	in       chan []redis.XMessage // reader → run; closed when the reader stops
	done     chan completion       // sink runners → run
	inflight map[string]*entry     // by outbox entry id
	groups   map[groupKey]*group
	pending  atomic.Int64 // len(inflight), for the reader's back-pressure
}

// maxInflight bounds the notifications held in memory; past it the reader
// leaves the rest in the outbox until sinks catch up or drop.
const maxInflight = 10000

func newNotifier(a *Alerting) *notifier {
	return &notifier{
		a: a, in: make(chan []redis.XMessage, 1), done: make(chan completion, 64),
		inflight: map[string]*entry{}, groups: map[groupKey]*group{},
	}
}

// run delivers until ctx is cancelled, then flushes the groups and lets the
// sinks deliver for at most FlushTimeout.
func (n *notifier) run(ctx context.Context) {
	hard, cancelHard := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHard()
	rctx := context.WithoutCancel(ctx)
	var wg sync.WaitGroup
	for _, r := range n.a.sinks {
		wg.Go(func() { r.run(hard, n.done) })
	}
	go n.read(ctx)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for open := true; open; {
		select {
		case msgs, ok := <-n.in:
			if !ok {
				open = false
				break
			}
			n.accept(rctx, msgs)
		case c := <-n.done:
			n.complete(rctx, c)
		case <-timer.C:
			n.flush(rctx, false)
		}
		timer.Reset(n.nextFlush())
	}
	// Shutdown: send every group now, then wait for the sinks, bounded.
	n.flush(rctx, true)
	for _, r := range n.a.sinks {
		close(r.q)
	}
	stop := time.AfterFunc(n.a.opts.FlushTimeout, cancelHard)
	defer stop.Stop()
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	for waiting := true; waiting; {
		select {
		case c := <-n.done:
			n.complete(rctx, c)
		case <-finished:
			waiting = false
		}
	}
	if len(n.inflight) > 0 {
		n.a.log.Info("undelivered notifications left in the outbox for the next replica", "count", len(n.inflight))
	}
	if n.leader.Load() {
		_ = n.a.scripts.release.Run(rctx, n.a.rdb, []string{n.a.keys.AlertLeader()}, n.a.opts.Replica).Err()
		n.a.m.Leader.Set(0)
	}
}

// read keeps or takes the lease and, while it holds it, reads the outbox and
// takes over notifications left pending longer than the lease (by a dead
// leader, or by this one in an earlier life).
func (n *notifier) read(ctx context.Context) {
	defer close(n.in)
	a := n.a
	lease := a.cfg.LeaderLease
	back := backoff.New(100*time.Millisecond, 5*time.Second)
	var lastLease, lastClaim, lastTrim time.Time
	for ctx.Err() == nil {
		if time.Since(lastLease) >= lease/3 {
			n.keepLease(ctx)
			lastLease = time.Now()
			if !n.leader.Load() {
				lastClaim = time.Time{}
			}
		}
		if !n.leader.Load() {
			_ = backoff.Sleep(ctx, lease/3)
			continue
		}
		if n.pending.Load() >= maxInflight {
			_ = backoff.Sleep(ctx, 100*time.Millisecond)
			continue
		}
		if time.Since(lastClaim) >= lease {
			n.claim(ctx)
			lastClaim = time.Now()
		}
		res, err := a.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group: outboxGroup, Consumer: a.opts.Replica, Streams: []string{a.keys.AlertOutbox(), ">"},
			Count: 256, Block: min(lease/3, time.Second),
		}).Result()
		switch {
		case errors.Is(err, redis.Nil) || ctx.Err() != nil:
		case err != nil:
			a.m.Errors.WithLabelValues("deliver").Inc()
			if strings.HasPrefix(err.Error(), "NOGROUP") {
				n.ensureGroup(ctx)
			} else {
				a.log.Warn("read alert outbox", "err", err)
			}
			_ = backoff.Sleep(ctx, back.Next())
			continue
		default:
			back.Reset()
			for _, st := range res {
				n.send(ctx, st.Messages)
			}
		}
		if time.Since(lastTrim) >= 5*time.Second {
			n.trim(ctx)
			lastTrim = time.Now()
		}
	}
}

func (n *notifier) send(ctx context.Context, msgs []redis.XMessage) {
	if len(msgs) == 0 {
		return
	}
	select {
	case n.in <- msgs:
	case <-ctx.Done():
	}
}

// keepLease takes or renews the lease and records whether this replica holds it.
func (n *notifier) keepLease(ctx context.Context) {
	a := n.a
	got, err := a.scripts.lease.Run(ctx, a.rdb, []string{a.keys.AlertLeader()}, a.opts.Replica, a.cfg.LeaderLease.Milliseconds()).Int()
	if err != nil && ctx.Err() == nil {
		a.m.Errors.WithLabelValues("lease").Inc()
		a.log.Warn("alert delivery lease", "err", err)
	}
	is := err == nil && got == 1
	if was := n.leader.Swap(is); was != is {
		if is {
			n.ensureGroup(ctx)
			a.m.Leader.Set(1)
			a.log.Info("this replica delivers notifications now")
		} else {
			a.m.Leader.Set(0)
			a.log.Info("this replica no longer delivers notifications")
		}
	}
}

func (n *notifier) ensureGroup(ctx context.Context) {
	err := n.a.rdb.XGroupCreateMkStream(ctx, n.a.keys.AlertOutbox(), outboxGroup, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		n.a.log.Warn("create alert outbox group", "err", err)
	}
}

// claim takes over outbox entries pending longer than the lease.
func (n *notifier) claim(ctx context.Context) {
	a := n.a
	start := "0-0"
	for range 64 {
		msgs, next, err := a.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
			Stream: a.keys.AlertOutbox(), Group: outboxGroup, Consumer: a.opts.Replica,
			MinIdle: a.cfg.LeaderLease, Start: start, Count: 256,
		}).Result()
		if err != nil {
			return
		}
		n.send(ctx, msgs)
		if next == "0-0" || next == "" {
			return
		}
		start = next
	}
}

// trim drops acknowledged entries: those before the oldest pending one.
func (n *notifier) trim(ctx context.Context) {
	a := n.a
	p, err := a.rdb.XPending(ctx, a.keys.AlertOutbox(), outboxGroup).Result()
	if err != nil {
		return
	}
	minID := p.Lower
	if p.Count == 0 {
		groups, err := a.rdb.XInfoGroups(ctx, a.keys.AlertOutbox()).Result()
		if err != nil {
			return
		}
		for _, g := range groups {
			if g.Name == outboxGroup {
				minID = g.LastDeliveredID
			}
		}
	}
	if minID != "" && minID != "0-0" {
		a.rdb.XTrimMinIDApprox(ctx, a.keys.AlertOutbox(), minID, 0)
	}
}

// accept claims the notifications of outbox entries and groups them.
// Entries already being delivered (taken over from ourselves) are skipped;
// entries whose notification is gone, owned by another entry (a duplicate
// hand-off) or already with every sink that wants it are acknowledged.
func (n *notifier) accept(ctx context.Context, msgs []redis.XMessage) {
	a := n.a
	var entries []outboxEntry
	var calls []*scriptCall
	var ack []string
	for _, m := range msgs {
		if _, busy := n.inflight[m.ID]; busy {
			continue
		}
		e, ok := parseOutbox(m)
		if !ok {
			ack = append(ack, m.ID)
			continue
		}
		entries = append(entries, e)
		calls = append(calls, &scriptCall{script: a.scripts.claim,
			keys: []string{a.keys.AlertState(string(e.aid.key), e.aid.rule)}, args: []any{e.seq, e.id}})
	}
	if err := runScripts(ctx, a.rdb, calls); err != nil {
		a.m.Errors.WithLabelValues("deliver").Inc()
		a.log.Warn("claim notifications; they are taken over later", "err", err)
		return
	}
	now := time.Now()
	for i, c := range calls {
		v, _ := c.cmd.Val().([]any)
		if code, _ := v[0].(int64); code != 1 || len(v) < 3 {
			ack = append(ack, entries[i].id)
			continue
		}
		snap, _ := v[1].(string)
		doneSinks, _ := v[2].(string)
		alert, err := alertOf(a.keys, entries[i].aid.rule, entries[i].aid.key, snap)
		if err != nil {
			a.log.Warn("drop unreadable notification", "err", err)
			ack = append(ack, entries[i].id)
			continue
		}
		alert.Link = a.view.link(&alert)
		e := &entry{outboxEntry: entries[i], alert: alert}
		for _, r := range a.sinks {
			if !strings.Contains(doneSinks, ","+r.name+",") && r.cfg.wants(&alert) {
				e.targets = append(e.targets, r)
			}
		}
		if len(e.targets) == 0 {
			ack = append(ack, e.id)
			continue
		}
		e.pending = len(e.targets)
		n.inflight[e.id] = e
		n.pending.Store(int64(len(n.inflight)))
		n.group(e, now)
	}
	n.ack(ctx, ack)
}

// complete records what a sink did with a message and acknowledges the
// entries every target sink is done with.
func (n *notifier) complete(ctx context.Context, c completion) {
	a := n.a
	var calls []*scriptCall
	var ack []string
	for _, e := range c.entries {
		if c.delivered {
			calls = append(calls, &scriptCall{script: a.scripts.done,
				keys: []string{a.keys.AlertState(string(e.aid.key), e.aid.rule)}, args: []any{e.seq, c.sink}})
		}
		e.pending--
		if e.pending == 0 {
			ack = append(ack, e.id)
			delete(n.inflight, e.id)
		}
	}
	n.pending.Store(int64(len(n.inflight)))
	if err := runScripts(ctx, a.rdb, calls); err != nil {
		a.m.Errors.WithLabelValues("deliver").Inc()
		a.log.Warn("record delivered notifications", "err", err)
	}
	n.ack(ctx, ack)
}

func (n *notifier) ack(ctx context.Context, ids []string) {
	if len(ids) == 0 {
		return
	}
	if err := n.a.rdb.XAck(ctx, n.a.keys.AlertOutbox(), outboxGroup, ids...).Err(); err != nil {
		n.a.m.Errors.WithLabelValues("deliver").Inc()
		n.a.log.Warn("acknowledge notifications", "err", err)
	}
}
