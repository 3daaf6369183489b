package alerting

import (
	"context"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/ratemon/ratemon/limiter"
)

// handoff is the notifications of one alert to put in the outbox.
type handoff struct {
	id   alertID
	seqs []int64
}

// outboxMaxLen caps the outbox should no replica deliver for a long time;
// the delivering replica trims what it acknowledged.
const outboxMaxLen = 100000

// handOff appends the notifications to the outbox, then records in each
// alert's state that they are there. A replica that dies in between leaves
// the record behind, and the next look at the alert (by any replica, after
// HandoffGrace) hands them off again; the outbox entry that claims a
// notification first delivers it, the others are dropped as duplicates.
// Without sinks there is nothing to deliver: only the record is written.
func (a *Alerting) handOff(ctx context.Context, hs []handoff) error {
	if len(hs) == 0 {
		return nil
	}
	if len(a.sinks) > 0 {
		pipe := a.rdb.Pipeline()
		for _, h := range hs {
			for _, seq := range h.seqs {
				pipe.XAdd(ctx, &redis.XAddArgs{
					Stream: a.keys.AlertOutbox(), MaxLen: outboxMaxLen, Approx: true,
					Values: []any{"r", h.id.rule, "k", string(h.id.key), "n", seq},
				})
			}
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("append to alert outbox: %w", err)
		}
	}
	calls := make([]*scriptCall, len(hs))
	for i, h := range hs {
		calls[i] = &scriptCall{script: a.scripts.handed, keys: []string{a.keys.AlertState(string(h.id.key), h.id.rule)},
			args: []any{max(h.seqs[0], h.seqs[len(h.seqs)-1])}}
	}
	return runScripts(ctx, a.rdb, calls)
}

// outboxEntry is one notification read from the outbox.
type outboxEntry struct {
	id  string // stream entry id
	aid alertID
	seq int64
}

func parseOutbox(m redis.XMessage) (outboxEntry, bool) {
	rule, _ := m.Values["r"].(string)
	key, _ := m.Values["k"].(string)
	n, _ := m.Values["n"].(string)
	seq, err := strconv.ParseInt(n, 10, 64)
	if rule == "" || key == "" || err != nil {
		return outboxEntry{}, false
	}
	return outboxEntry{id: m.ID, aid: alertID{rule, limiter.LimitKey(key)}, seq: seq}, true
}
