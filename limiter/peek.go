package limiter

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Peek reads, without evaluating or writing anything, an upper bound of
// each limit key's counts: one HMGET of its state hash per key, pipelined,
// at a fraction of a script call's cost. A rule's running count (c in
// window.lua's state) sums the entries after the boundary of the key's
// last evaluation, and every later window starts at or after that
// boundary, so no window of the rule counts more; a rule never written
// counts 0. ok[i] is false when the state cannot say that much: a deny or
// shadow flag of the rules in force (its end is unknown here), a runtime
// override (the limit is unknown here), a deny_for block still running, or
// a state this reader does not know (that of the in-process stand-in of
// `serve --dev`). evals[i] is only meaningful where ok[i]; its rules are
// in the group's order, none over, with the configured limits.
//
// The ingest holder uses it for keys it has never sent: their first events
// can then be held instead of each costing a script call (a daemon that
// starts, or a key that is new).
func (s *Store) Peek(ctx context.Context, kas []KeyAppend) (evals []Evaluation, ok []bool, err error) {
	now := NowMS(s.clock)
	evals = make([]Evaluation, len(kas))
	ok = make([]bool, len(kas))
	for start := 0; start < len(kas); start += s.chunk {
		part := kas[start:min(start+s.chunk, len(kas))]
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.SliceCmd, len(part))
		for i, ka := range part {
			fields := make([]string, 0, len(ka.Group.Rules)+nPeekFlags)
			for _, r := range ka.Group.Rules {
				fields = append(fields, r.Name)
			}
			// The automatic deny, the shadow flag, the deny flag written
			// and the marker of runtime overrides (see window.lua).
			fields = append(fields, "_au", "_su", "_du", "_o")
			cmds[i] = pipe.HMGet(ctx, s.keys.State(string(ka.Key)), fields...)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, nil, fmt.Errorf("peek at %d keys: %w", len(part), err)
		}
		for i, ka := range part {
			evals[start+i], ok[start+i] = peekEval(ka, cmds[i].Val(), now)
		}
	}
	return evals, ok, nil
}

// nPeekFlags is how many state fields after the rules' stop a Peek when
// present.
const nPeekFlags = 4

// peekEval reads one key's HMGET reply: the rules' fields, then the
// nPeekFlags fields.
func peekEval(ka KeyAppend, vals []any, now int64) (Evaluation, bool) {
	g := ka.Group
	if len(vals) != len(g.Rules)+nPeekFlags {
		return Evaluation{}, false
	}
	for _, v := range vals[len(g.Rules):] {
		if v != nil {
			return Evaluation{}, false
		}
	}
	ev := Evaluation{Key: ka.Key, Rules: make([]RuleState, len(g.Rules))}
	for i, r := range g.Rules {
		st := RuleState{Rule: r.Name, Limit: r.Limit}
		if vals[i] != nil {
			v, isStr := vals[i].(string)
			if !isStr {
				return Evaluation{}, false
			}
			rs, good := decodeRuleState(v)
			if !good {
				return Evaluation{}, false
			}
			if r.DenyForMS() > 0 && rs.trip != unsetMS && rs.trip+r.DenyForMS() > now {
				return Evaluation{}, false
			}
			st.Count = rs.count
		}
		ev.Rules[i] = st
	}
	return ev, true
}

// unsetMS stands for a time not set in a packed rule state (UNSET in
// lib.lua).
const unsetMS = -(int64(1) << 46)

// packedRule is what Peek needs of a rule's packed state.
type packedRule struct {
	count int64 // c, the running count
	trip  int64 // f, the latest trip of a deny_for rule
}

// ruleStateLen is the length of a packed rule state: lib.lua's RULE_FMT,
// '<i6i8i6i6i6i8i6i6i6' (t, c, b, m, k, ck, f, p, q).
const ruleStateLen = 58

// decodeRuleState unpacks the fields of a packed rule state that Peek
// needs; false when v is not one.
func decodeRuleState(v string) (packedRule, bool) {
	if len(v) != ruleStateLen {
		return packedRule{}, false
	}
	b := []byte(v)
	return packedRule{count: int64(binary.LittleEndian.Uint64(b[6:14])), trip: int48(b[40:46])}, true
}

// int48 decodes a little-endian signed 6-byte integer.
func int48(b []byte) int64 {
	var x [8]byte
	copy(x[:], b[:6])
	if b[5]&0x80 != 0 {
		x[6], x[7] = 0xff, 0xff
	}
	return int64(binary.LittleEndian.Uint64(x[:]))
}
