package alerting

import (
	"context"
	"time"
)

// groupKey groups notifications: one rule, one state. The 500 keys that trip
// one rule within group_wait make one message per sink.
type groupKey struct {
	rule  string
	state State
}

// group is the notifications of one groupKey waiting to be sent, as in
// Alertmanager: the first waits group_wait for company; once a group has
// been sent, newcomers wait until group_interval after that send.
type group struct {
	entries []*entry
	flushAt time.Time // when entries go out; meaningful while there are entries
	last    time.Time // when the group was last sent
}

// group adds an entry to its group.
func (n *notifier) group(e *entry, now time.Time) {
	k := groupKey{e.alert.Rule, e.alert.State}
	g := n.groups[k]
	if g == nil {
		g = &group{}
		n.groups[k] = g
	}
	if len(g.entries) == 0 {
		g.flushAt = now.Add(n.a.cfg.GroupWait)
		if !g.last.IsZero() {
			if next := g.last.Add(n.a.cfg.GroupInterval); next.After(g.flushAt) {
				g.flushAt = next
			}
		}
	}
	g.entries = append(g.entries, e)
	if len(g.entries) >= maxGroupSize {
		g.flushAt = now // a full group goes out at once
	}
}

// maxGroupSize bounds the alerts of one message, and the memory of a group.
const maxGroupSize = 500

// flush sends the groups whose time came (all of them when all is set) and
// forgets the groups idle for a group_interval.
func (n *notifier) flush(ctx context.Context, all bool) {
	now := time.Now()
	for k, g := range n.groups {
		switch {
		case len(g.entries) > 0 && (all || !now.Before(g.flushAt)):
			n.sendGroup(ctx, g)
			g.entries, g.last = nil, now
		case len(g.entries) == 0 && now.Sub(g.last) > n.a.cfg.GroupInterval:
			delete(n.groups, k)
		}
	}
}

// sendGroup hands each sink the entries of g it wants, as one message.
func (n *notifier) sendGroup(ctx context.Context, g *group) {
	for _, r := range n.a.sinks {
		msg := &message{}
		for _, e := range g.entries {
			for _, t := range e.targets {
				if t == r {
					msg.alerts = append(msg.alerts, e.alert)
					msg.entries = append(msg.entries, e)
				}
			}
		}
		if len(msg.entries) == 0 {
			continue
		}
		if !r.enqueue(msg) {
			n.complete(ctx, completion{sink: r.name, entries: msg.entries})
		}
	}
}

// nextFlush is how long until the next group is due.
func (n *notifier) nextFlush() time.Duration {
	next := time.Hour
	now := time.Now()
	for _, g := range n.groups {
		d := n.a.cfg.GroupInterval
		if len(g.entries) > 0 {
			d = g.flushAt.Sub(now)
		}
		next = min(next, max(d, 0))
	}
	return max(next, time.Millisecond)
}
