package limiter

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/redis/go-redis/v9"

	"github.com/ratemon/ratemon/internal/keyspace"
)

// Store keeps the window logs, running counts and flags of every limit key in
// Redis. All keys of one limit key share its hash tag, so each script call
// touches one cluster slot. A Store is safe for concurrent use.
type Store struct {
	rdb     redis.UniversalClient
	keys    keyspace.Redis
	clock   Clock
	scripts *scripts
	chunk   int
	// fcall is set while the scripts' Functions library is loaded on every
	// master (Load): the ingestion scripts are then called with FCALL.
	// noFunctions is set for good once an FCALL was refused (an ACL that
	// allows FUNCTION LOAD but not FCALL): EVALSHA from then on.
	fcall       atomic.Bool
	noFunctions atomic.Bool
}

// StoreOptions configures a Store.
type StoreOptions struct {
	Client redis.UniversalClient // required
	Keys   keyspace.Redis        // required
	Clock  Clock                 // default: the wall clock
	// PipelineChunk bounds the work sent in one pipeline, in script calls
	// of one event; eight more events count as one more call (default 512).
	PipelineChunk int
}

// NewStore returns a Store; it starts nothing and sends nothing to Redis.
func NewStore(opts StoreOptions) (*Store, error) {
	if opts.Client == nil {
		return nil, errors.New("limiter store: redis client is required")
	}
	if opts.Keys.Prefix() == "" {
		return nil, errors.New("limiter store: key namer is required")
	}
	if opts.Clock == nil {
		opts.Clock = WallClock{}
	}
	if opts.PipelineChunk <= 0 {
		opts.PipelineChunk = 512
	}
	return &Store{rdb: opts.Client, keys: opts.Keys, clock: opts.Clock, scripts: newScripts(), chunk: opts.PipelineChunk}, nil
}

// Keys returns the key namer of the store.
func (s *Store) Keys() keyspace.Redis { return s.keys }

// Client returns the Redis client of the store.
func (s *Store) Client() redis.UniversalClient { return s.rdb }

// Load loads every script into Redis (on every master of a cluster).
func (s *Store) Load(ctx context.Context) error {
	for _, sc := range s.scripts.all() {
		if err := sc.Load(ctx, s.rdb).Err(); err != nil {
			return fmt.Errorf("load redis script: %w", err)
		}
	}
	s.fcall.Store(s.loadLibrary(ctx) == nil)
	return nil
}

// loadLibrary loads the Functions library of the ingestion scripts on
// every master (a library of the same name has the same code: it is
// named after it). An error leaves the scripts to EVALSHA: Redis before
// 7.0, the in-process stand-in of `serve --dev`, or a user whose ACL
// lacks FUNCTION. Load tries again each time it runs.
func (s *Store) loadLibrary(ctx context.Context) error {
	if s.noFunctions.Load() {
		return errors.New("fcall refused before")
	}
	one := func(ctx context.Context, c redis.Cmdable) error {
		err := c.FunctionLoad(ctx, s.scripts.library).Err()
		if err != nil && strings.Contains(err.Error(), "already exists") {
			return nil
		}
		return err
	}
	if cc, ok := s.rdb.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return one(ctx, c) })
	}
	return one(ctx, s.rdb)
}

// Functions reports whether the ingestion scripts are called as Redis
// Functions (FCALL) rather than by SHA (EVALSHA); see Load.
func (s *Store) Functions() bool { return s.fcall.Load() }

// call is one script invocation inside a pipeline.
type call struct {
	script *script
	keys   []string
	args   []any
	// build, when set, makes keys and args just before the call's pipeline
	// is sent, and they are dropped once it has answered: a batch's calls
	// then hold their arguments one pipeline at a time, not all at once.
	build func() ([]string, []any)
	// fallback, when set, makes the keys and args of the same call in the
	// form with each message's events, for a call in the ranges form that
	// the script refuses (RESEND: one of its messages was applied before).
	fallback func() ([]string, []any)
	events   int // events it appends: its share of a pipeline (see units)
	cmd      *redis.Cmd
	val      any // the reply, once the pipeline has answered
}

// units is the call's weight in a pipeline: one, plus one per eight events
// it appends (in Redis CPU a call costs about as much as eight more events:
// docs/BENCHMARKS.md, "Where the time goes").
func (c *call) units() int { return 1 + c.events/8 }

// splitUnits cuts calls, in order, into parts of at most limit units each
// (a single call heavier than limit makes a part of its own).
func splitUnits(calls []*call, limit int) [][]*call {
	var parts [][]*call
	start, units := 0, 0
	for i, c := range calls {
		u := c.units()
		if i > start && units+u > limit {
			parts = append(parts, calls[start:i])
			start, units = i, 0
		}
		units += u
	}
	if start < len(calls) {
		parts = append(parts, calls[start:])
	}
	return parts
}

// isNoScript reports a script or function Redis does not have (a restart,
// SCRIPT FLUSH, FUNCTION FLUSH, a new master): Load, then call again.
func isNoScript(err error) bool {
	return err != nil && (strings.HasPrefix(err.Error(), "NOSCRIPT") || strings.HasPrefix(err.Error(), "ERR Function not found"))
}

// isRefused reports an FCALL that the server or the user's ACL does not
// allow.
func isRefused(err error) bool {
	return err != nil && (strings.HasPrefix(err.Error(), "NOPERM") || strings.HasPrefix(err.Error(), "ERR unknown command"))
}

// isResend reports window.lua's refusal of a call in the ranges form.
func isResend(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "RESEND")
}

// exec runs calls in pipelines of at most s.chunk units (a call of one
// event is one unit, see call.units), by SHA, loading the scripts and
// retrying the calls that failed with NOSCRIPT (every script is idempotent
// for a retry), and sending again, in the form with each message's events,
// the calls refused with RESEND (which wrote nothing). Counting events, not calls, bounds the time Redis takes to
// answer a pipeline: the replies must all arrive within redis.read_timeout,
// or the whole ingest batch goes back to NATS and is done again, and a
// backlog gives each key hundreds of events per call.
func (s *Store) exec(ctx context.Context, calls []*call) error {
	for _, part := range splitUnits(calls, s.chunk) {
		if err := s.execChunk(ctx, part); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) execChunk(ctx context.Context, calls []*call) error {
	todo := calls
	loaded := false
	for {
		fcall := s.fcall.Load()
		pipe := s.rdb.Pipeline()
		for _, c := range todo {
			if c.build != nil && c.args == nil {
				c.keys, c.args = c.build()
			}
			if fcall && c.script.fn != "" {
				c.cmd = pipe.FCall(ctx, c.script.fn, c.keys, c.args...)
			} else {
				c.cmd = c.script.EvalSha(ctx, pipe, c.keys, c.args...)
			}
		}
		_, err := pipe.Exec(ctx)
		if err == nil {
			for _, c := range calls {
				c.val = c.cmd.Val()
				if c.build != nil {
					c.keys, c.args, c.cmd = nil, nil, nil
				}
			}
			return nil
		}
		var retry []*call
		missing := false
		for _, c := range todo {
			e := c.cmd.Err()
			switch {
			case e == nil:
			case isNoScript(e):
				missing = true
				retry = append(retry, c)
			case fcall && c.script.fn != "" && isRefused(e):
				s.noFunctions.Store(true)
				s.fcall.Store(false)
				retry = append(retry, c)
			case isResend(e) && c.fallback != nil:
				c.keys, c.args = c.fallback()
				c.fallback = nil
				retry = append(retry, c)
			default:
				return fmt.Errorf("redis script on %s: %w", c.keys[0], e)
			}
		}
		if len(retry) == 0 {
			return fmt.Errorf("redis pipeline: %w", err)
		}
		if missing {
			if loaded {
				return fmt.Errorf("redis script still missing after load: %w", err)
			}
			if err := s.Load(ctx); err != nil {
				return err
			}
			loaded = true
		}
		todo = retry
	}
}

// Event is one counted event as the store sees it.
type Event struct {
	TS     int64  // Unix ms, event time
	Weight int64  // >= 1
	Mask   uint64 // bit i: rule i of the key's group counts the event
	ID     string // optional event id; the same id counts once per limit key
}

// Message is the events of one NATS message for one limit key. Seq is the
// JetStream stream sequence, which makes a redelivered message count once;
// 0 means no de-duplication by message.
type Message struct {
	Seq    uint64
	Events []Event
}

// KeyAppend is everything one batch adds to one limit key.
type KeyAppend struct {
	Key      LimitKey
	Group    *Group
	Messages []Message
}

// AppendResult sums what Append did.
type AppendResult struct {
	Accepted    int64 // weight appended
	DupMessages int64 // messages already applied (redeliveries)
	DupIDs      int64 // events whose id was already counted
	Dropped     int64 // weight older than every window that could use it
}

// Append adds a batch to the window logs, one script call per limit key,
// pipelined. floor is the NATS consumer's ack floor: sequences at or below it
// can never be redelivered, so their de-duplication records are dropped.
func (s *Store) Append(ctx context.Context, floor uint64, batch []KeyAppend) (AppendResult, error) {
	now := NowMS(s.clock)
	calls := make([]*call, 0, len(batch))
	for i := range batch {
		calls = append(calls, s.windowCall(s.scripts.append, now, floor, batch[i].Key, batch[i].Group, batch[i].Messages))
	}
	var res AppendResult
	if err := s.exec(ctx, calls); err != nil {
		return res, fmt.Errorf("append window logs: %w", err)
	}
	for _, c := range calls {
		if err := res.add(c.val); err != nil {
			return res, fmt.Errorf("append window logs: %w", err)
		}
	}
	return res, nil
}

// AppendEvaluate adds a batch to the window logs and evaluates every key it
// touched, in one script call per key: the fast path of ingestion, which
// then needs no work notice.
func (s *Store) AppendEvaluate(ctx context.Context, floor uint64, batch []KeyAppend) (AppendResult, []Evaluation, error) {
	now := NowMS(s.clock)
	calls := make([]*call, 0, len(batch))
	for i := range batch {
		calls = append(calls, s.windowCall(s.scripts.ingest, now, floor, batch[i].Key, batch[i].Group, batch[i].Messages))
	}
	var res AppendResult
	if err := s.exec(ctx, calls); err != nil {
		return res, nil, fmt.Errorf("append and evaluate: %w", err)
	}
	evals := make([]Evaluation, len(calls))
	for i, c := range calls {
		v, ok := c.val.([]any)
		if !ok || len(v) != 3 {
			return res, nil, fmt.Errorf("append and evaluate %s: unexpected reply %v", batch[i].Key, c.val)
		}
		if err := res.add(v[0]); err != nil {
			return res, nil, err
		}
		evals[i].Key = batch[i].Key
		if err := parseEvaluation([]any{v[1], v[2]}, &evals[i]); err != nil {
			return res, nil, fmt.Errorf("append and evaluate %s: %w", batch[i].Key, err)
		}
	}
	return res, evals, nil
}

// add sums one append reply {accepted, dup messages, dup ids, dropped}.
func (r *AppendResult) add(reply any) error {
	v, ok := reply.([]any)
	if !ok || len(v) != 4 {
		return fmt.Errorf("unexpected append reply %v", reply)
	}
	r.Accepted += asInt(v[0])
	r.DupMessages += asInt(v[1])
	r.DupIDs += asInt(v[2])
	r.Dropped += asInt(v[3])
	return nil
}

// windowKeys are the KEYS every window script takes (see window.lua), in
// one allocation (keyspace.Redis.WindowKeys).
func (s *Store) windowKeys(lk string, g *Group) []string {
	var buf [8]string
	names := buf[:0]
	if g != nil {
		for _, r := range g.Rules {
			names = append(names, r.Name)
		}
	}
	return s.keys.WindowKeys(lk, names)
}

// windowArgs is the head of ARGV every window script takes: now, floor,
// limit key, then the rules.
func windowArgs(args []any, now int64, floor uint64, lk string, g *Group) []any {
	n := 0
	if g != nil {
		n = len(g.Rules)
	}
	args = append(args, now, strconv.FormatUint(floor, 10), lk, n)
	if g != nil {
		for _, r := range g.Rules {
			args = append(args, r.Name, r.Limit, r.WindowMS(), r.DenyForMS(), string(r.Action), r.RetentionMS())
		}
	}
	return args
}

// windowCall builds a call of script for one key, with the messages (if
// any) after the rules.
func (s *Store) windowCall(script *script, now int64, floor uint64, k LimitKey, g *Group, msgs []Message) *call {
	nev := 0
	for _, m := range msgs {
		nev += len(m.Events)
	}
	return &call{script: script, events: nev,
		build: func() ([]string, []any) {
			return s.windowCallArgs(now, floor, k, g, msgs, false)
		},
		fallback: func() ([]string, []any) {
			return s.windowCallArgs(now, floor, k, g, msgs, true)
		},
	}
}

// windowCallArgs makes the KEYS and ARGV of a windowCall: in the ranges
// form when it can, unless perMessage asks for the events of each message.
func (s *Store) windowCallArgs(now int64, floor uint64, k LimitKey, g *Group, msgs []Message, perMessage bool) ([]string, []any) {
	lk := string(k)
	all := uint64(1)<<uint(len(g.Rules)) - 1
	long := 0 // events of the messages that are not compact
	for _, m := range msgs {
		if !compact(m.Events, all) {
			long += len(m.Events)
		}
	}
	if len(msgs) > 0 && long == 0 && packable(msgs) && !perMessage {
		// Every message compact and every sequence once, the common
		// case: the ranges form, no event but in the log entries
		// (packRuns), which the script stores as they are.
		if member, ok := seenRanges(msgs); ok {
			if runs := packRuns(msgs); runs != nil {
				args := make([]any, 0, 8+6*len(g.Rules))
				args = windowArgs(args, now, floor, lk, g)
				args = append(args, "r", member, runs)
				return s.windowKeys(lk, g), args
			}
		}
	}
	if len(msgs) > 0 && long == 0 && packable(msgs) {
		// Every message compact: all of them in one
		// argument, the seen-set member they make (see packMessages), and
		// their log entries, ready to store (packRuns).
		args := make([]any, 0, 8+6*len(g.Rules))
		args = windowArgs(args, now, floor, lk, g)
		args = append(args, -len(msgs), packMessages(msgs), seenMember(msgs), packRuns(msgs))
		return s.windowKeys(lk, g), args
	}
	args := make([]any, 0, 5+6*len(g.Rules)+3*len(msgs)+4*long)
	args = windowArgs(args, now, floor, lk, g)
	if msgs != nil {
		args = append(args, len(msgs))
		mask := make([]byte, len(g.Rules))
		for _, m := range msgs {
			if compact(m.Events, all) {
				// The short form: a negative count, then the events
				// packed in one argument; every rule counts each, none
				// has an id.
				args = append(args, strconv.FormatUint(m.Seq, 10), -len(m.Events), packEvents(m.Events))
				continue
			}
			args = append(args, strconv.FormatUint(m.Seq, 10), len(m.Events))
			for _, e := range m.Events {
				for i := range mask {
					mask[i] = '0'
					if e.Mask&(1<<uint(i)) != 0 {
						mask[i] = '1'
					}
				}
				args = append(args, e.TS, e.Weight, string(mask), e.ID)
			}
		}
	}
	return s.windowKeys(lk, g), args
}

// RuleState is a rule's view of one limit key after an evaluation.
type RuleState struct {
	Rule   string
	Count  int64
	Limit  int64
	Over   bool  // the quota is used up (or a deny_for block runs)
	Until  int64 // Unix ms the flag of this rule would end; 0 when not over
	Newest int64 // Unix ms of the newest event counted by the rule
}

// Evaluation is the result of evaluating one limit key.
type Evaluation struct {
	Key     LimitKey
	Changes []Decision
	Rules   []RuleState
}

// Evaluate brings the given limit keys up to date, one script call per key,
// pipelined, writing and clearing their flags. Keys whose shape no rule has
// are skipped.
func (s *Store) Evaluate(ctx context.Context, rs *Ruleset, keys []LimitKey) ([]Evaluation, error) {
	now := NowMS(s.clock)
	calls := make([]*call, 0, len(keys))
	evals := make([]Evaluation, 0, len(keys))
	for _, k := range keys {
		g, ok := rs.GroupFor(k)
		if !ok {
			continue
		}
		calls = append(calls, s.evaluateCall(now, k, g))
		evals = append(evals, Evaluation{Key: k})
	}
	if err := s.exec(ctx, calls); err != nil {
		return nil, fmt.Errorf("evaluate limit keys: %w", err)
	}
	for i, c := range calls {
		v, _ := c.val.([]any)
		if err := parseEvaluation(v, &evals[i]); err != nil {
			return nil, fmt.Errorf("evaluate %s: %w", evals[i].Key, err)
		}
	}
	return evals, nil
}

func (s *Store) evaluateCall(now int64, k LimitKey, g *Group) *call {
	return s.windowCall(s.scripts.evaluate, now, 0, k, g, nil)
}

func parseEvaluation(top []any, ev *Evaluation) error {
	if len(top) != 2 {
		return fmt.Errorf("unexpected reply %v", top)
	}
	changes, _ := top[0].([]any)
	for _, c := range changes {
		d, err := parseChange(ev.Key, c)
		if err != nil {
			return err
		}
		ev.Changes = append(ev.Changes, d)
	}
	results, _ := top[1].([]any)
	for _, r := range results {
		f, ok := r.([]any)
		if !ok || len(f) != 6 {
			return fmt.Errorf("unexpected rule result %v", r)
		}
		ev.Rules = append(ev.Rules, RuleState{
			Rule:   asString(f[0]),
			Count:  asInt(f[1]),
			Limit:  asInt(f[2]),
			Over:   asInt(f[3]) == 1,
			Until:  asInt(f[4]),
			Newest: asInt(f[5]),
		})
	}
	return nil
}

// parseChange reads a flag change {kind, allowed, until, rule, source} of a script.
func parseChange(k LimitKey, c any) (Decision, error) {
	f, ok := c.([]any)
	if !ok || len(f) != 5 {
		return Decision{}, fmt.Errorf("unexpected change %v", c)
	}
	return Decision{
		Key:     k,
		Kind:    FlagKind(asString(f[0])),
		Allowed: asInt(f[1]) == 1,
		Until:   asInt(f[2]),
		Rule:    asString(f[3]),
		Source:  asString(f[4]),
	}, nil
}

func asString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []byte:
		return string(x)
	}
	return ""
}

func asInt(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case string:
		n, _ := strconv.ParseInt(x, 10, 64)
		return n
	}
	return 0
}
