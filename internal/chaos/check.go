package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"

	"github.com/ratemon/ratemon/limiter"
)

// flagTolerance is how close to the read time a flag may end and still
// count as ending, not as wrong, when Redis and the model disagree about
// whether it is in force: Redis expires a flag when its TTL, counted from
// the instant its script ran, runs out.
const flagTolerance = 250 // ms

// decisionLog keeps every flag decision published on the decisions subject
// until they are read: a synchronous subscription queues them (up to half a
// million), and decisions reads what has arrived.
type decisionLog struct {
	sub *nats.Subscription
}

func subscribeDecisions(nc *nats.Conn, subject string) (*decisionLog, error) {
	sub, err := nc.SubscribeSync(subject)
	if err != nil {
		return nil, fmt.Errorf("subscribe to %s: %w", subject, err)
	}
	return &decisionLog{sub: sub}, nil
}

// decisions returns the decisions received so far.
func (l *decisionLog) decisions() ([]limiter.Decision, error) {
	var out []limiter.Decision
	for {
		m, err := l.sub.NextMsg(10 * time.Millisecond)
		if errors.Is(err, nats.ErrTimeout) {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("read decisions: %w", err)
		}
		var d limiter.Decision
		if err := json.Unmarshal(m.Data, &d); err != nil {
			return out, fmt.Errorf("decode decision %q: %w", m.Data, err)
		}
		out = append(out, d)
	}
}

func (l *decisionLog) close() { _ = l.sub.Unsubscribe() }

// falseDecisions lists the decisions that set a flag the model would not
// set. Every event of the trace is at or before tr.now and every
// evaluation happens after it, so a key evaluated on any subset of its
// events (some not yet ingested) can only be less busy than the model,
// which holds them all: a flag may end earlier than the model's, never
// later, and never exist where the model has none.
func falseDecisions(tr *trace, ds []limiter.Decision) []string {
	var out []string
	for _, d := range ds {
		if d.Allowed || d.Source != "rule" {
			continue
		}
		deny, shadow := tr.flagsAt(tr.now, d.Key)
		want := deny
		if d.Kind == limiter.FlagShadow {
			want = shadow
		}
		if d.Until > want {
			out = append(out, fmt.Sprintf("%s %s flag until %d (rule %s) decided; the model's flag ends at %d (0: none)",
				d.Key, d.Kind, d.Until, d.Rule, want))
		}
	}
	return out
}

// flagState is one comparison of every flag in Redis with the model.
type flagState struct {
	at      int64    // Unix ms, just before the flags were read
	inForce int      // flags the model has in force at at
	diffs   []string // disagreements; empty when Redis agrees
}

// compareFlags reads the deny and shadow flag of every key of the model and
// compares their ends with the model's at the read time; it also reports
// flags on keys the trace never touched.
func compareFlags(ctx context.Context, rdb redis.UniversalClient, e *env, tr *trace) (flagState, error) {
	keys := tr.model.Keys()
	st := flagState{at: time.Now().UnixMilli()}
	pipe := rdb.Pipeline()
	type pair struct{ deny, shadow *redis.StringCmd }
	cmds := make([]pair, len(keys))
	known := map[string]bool{}
	for i, k := range keys {
		dk, sk := e.keys.Deny(string(k)), e.keys.Shadow(string(k))
		known[dk], known[sk] = true, true
		cmds[i] = pair{pipe.Get(ctx, dk), pipe.Get(ctx, sk)}
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return st, fmt.Errorf("read flags: %w", err)
	}
	for i, k := range keys {
		wantD, wantS := tr.flagsAt(st.at, k)
		for _, c := range []struct {
			kind limiter.FlagKind
			cmd  *redis.StringCmd
			want int64
		}{{limiter.FlagDeny, cmds[i].deny, wantD}, {limiter.FlagShadow, cmds[i].shadow, wantS}} {
			if c.want > 0 {
				st.inForce++
			}
			got, err := flagUntil(c.cmd)
			if err != nil {
				return st, err
			}
			if d := judgeFlag(st.at, got, c.want); d != "" {
				st.diffs = append(st.diffs, fmt.Sprintf("%s %s flag: %s", k, c.kind, d))
			}
		}
	}
	for _, pattern := range []string{e.keys.DenyPattern(), e.keys.ShadowPattern()} {
		iter := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
		for iter.Next(ctx) {
			if !known[iter.Val()] {
				st.diffs = append(st.diffs, fmt.Sprintf("%s: a flag on a key the trace never touched", iter.Val()))
			}
		}
		if err := iter.Err(); err != nil {
			return st, fmt.Errorf("scan flags: %w", err)
		}
	}
	return st, nil
}

// flagUntil is the until of the flag a GET returned, 0 when there is none.
func flagUntil(c *redis.StringCmd) (int64, error) {
	v, err := c.Bytes()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read flag %v: %w", c.Args()[1], err)
	}
	f, err := limiter.ParseFlag(v)
	if err != nil {
		return 0, err
	}
	return f.Until, nil
}

// judgeFlag compares a flag's end in Redis (got) with the model's (want),
// both 0 for no flag, at read time at; "" means they agree.
func judgeFlag(at, got, want int64) string {
	switch {
	case got == want:
		return ""
	case got == 0 && want <= at+flagTolerance:
		return "" // the model's flag ends right now
	case want == 0 && got <= at+flagTolerance:
		return "" // Redis's flag ends right now, or has just ended
	case got == 0:
		return fmt.Sprintf("missing, the model's ends at %d (read at %d)", want, at)
	case want == 0:
		return fmt.Sprintf("ends at %d, the model has none (read at %d)", got, at)
	}
	return fmt.Sprintf("ends at %d, the model's at %d", got, want)
}
