package chaos

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/ratemon/ratemon/internal/bench"
	"github.com/ratemon/ratemon/internal/config"
	"github.com/ratemon/ratemon/internal/modelcheck"
	"github.com/ratemon/ratemon/limiter"
)

// Result is the judgement of one fault scenario.
type Result struct {
	Name     string `json:"name"`
	Fault    string `json:"fault"`
	Events   int    `json:"events"`   // events published
	Messages int    `json:"messages"` // NATS messages published
	Keys     int    `json:"keys"`     // limit keys compared
	Flags    int    `json:"flags"`    // flags the model had in force when Redis agreed
	Over     int    `json:"over"`     // (rule, key) pairs over their limit at the count check
	Retries  int64  `json:"publish_retries"`
	// Redelivered counts the messages ratemon found already applied when
	// they came again (ratemon_ingest_duplicates_total{kind="message"},
	// summed over every daemon process): the faults' work for "counted once".
	Redelivered int64 `json:"redelivered_applied"`
	Decided     int   `json:"decisions"` // decisions received
	// CatchUp is how long after the fault cleared ratemon had acknowledged
	// every message published until then (the backlog the fault built).
	CatchUp time.Duration `json:"catch_up_ns"`
	// Recovery is how long after the later of the fault clearing and the
	// last message being stored every flag equalled the model's.
	Recovery time.Duration `json:"recovery_ns"`
	Took     time.Duration `json:"took_ns"`
	Pass     bool          `json:"pass"`
	Problems []string      `json:"problems,omitempty"` // why it failed; at most a few lines per check
	Notes    []string      `json:"notes,omitempty"`    // what was done, when
}

// run is one scenario in progress.
type run struct {
	e     *env
	p     plan
	tr    *trace
	pub   *publisher
	log   *slog.Logger
	start time.Time

	mu          sync.Mutex // guards notes, clearedAt, caughtUp and redelivered
	notes       []string
	clearedAt   time.Time
	caughtUp    chan time.Duration // receives the catch-up time once (-1: never)
	redelivered int64
}

// tally adds what a daemon process counted as redelivered and already
// applied, before it is killed or stopped (its counters die with it).
func (r *run) tally(ctx context.Context, d *daemon) {
	n, err := d.counter(ctx, `ratemon_ingest_duplicates_total{kind="message"}`)
	if err != nil {
		r.log.Warn("read duplicates", "err", err)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.redelivered += int64(n)
}

// note logs what the checker did, with the messages published by then.
func (r *run) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if r.pub != nil {
		msg += fmt.Sprintf(" (%d messages published)", r.pub.acked.Load())
	}
	r.log.Info(msg)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notes = append(r.notes, fmt.Sprintf("%+.1fs %s", time.Since(r.start).Seconds(), msg))
}

// cleared records that the fault is over, and starts timing how long
// ratemon takes to acknowledge every message published by then.
func (r *run) cleared(ctx context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.clearedAt = time.Now()
	at, target := r.clearedAt, r.pub.lastSeq.Load()
	r.caughtUp = make(chan time.Duration, 1)
	go func() {
		err := poll(ctx, RecoveryLag+time.Minute, 20*time.Millisecond, "ratemon to catch up", func() (bool, error) {
			info, err := r.e.cons.Info(ctx)
			return err == nil && info.AckFloor.Stream >= target, nil
		})
		if err != nil {
			r.caughtUp <- -1
			return
		}
		r.caughtUp <- time.Since(at)
	}()
}

// maxProblems bounds the lines one check adds to a result.
const maxProblems = 8

func (res *Result) fail(what string, lines ...string) {
	res.Pass = false
	if len(lines) == 0 {
		res.Problems = append(res.Problems, what)
		return
	}
	res.Problems = append(res.Problems, fmt.Sprintf("%s (%d):", what, len(lines)))
	for _, l := range lines[:min(len(lines), maxProblems)] {
		res.Problems = append(res.Problems, "  "+l)
	}
}

// runScenario runs one fault scenario in its own servers and judges it.
// An error means the checker itself could not do its work; a failed check
// is a Result with Pass false.
func runScenario(ctx context.Context, o *Options, sc scenario) (res Result, err error) {
	p := planFor(o.Mode)
	log := o.Logger.With("scenario", sc.name)
	rules := faultRules(int64(p.perMsg / 10))
	if sc.small {
		p.messages, p.perMsg, p.pace = 10*p.messages, max(p.perMsg/10, 1), p.pace/10
	}
	rs, err := limiter.NewRuleset(rules)
	if err != nil {
		return res, fmt.Errorf("rules: %w", err)
	}
	e, err := newEnv(ctx, envOptions{
		exe: o.Exe, redisServer: o.RedisServer, dir: filepath.Join(o.Dir, sc.name), name: sc.name,
		rules: rules, replicas: sc.replicas, proxy: sc.proxy || sc.link > 0, log: log,
		tune: func(c *config.Config) { c.Ingest.Evaluation = sc.evaluation },
	})
	if err != nil {
		return res, err
	}
	defer e.close()
	if sc.link > 0 {
		e.proxy.setDelay(sc.link)
	}
	ctx, cancel := context.WithCancel(ctx) // ends the catch-up timer on an early return
	defer cancel()
	r := &run{e: e, p: p, log: log, start: time.Now()}
	r.tr = newTrace(rs, p, o.Seed, sc.name, time.Now())
	res = Result{Name: sc.name, Fault: sc.fault, Events: r.tr.events, Messages: len(r.tr.msgs), Keys: len(r.tr.model.Keys()), Pass: true}
	defer func() { res.Notes, res.Took = r.notes, time.Since(r.start) }()

	dl, err := subscribeDecisions(e.nc, e.subjects.Decisions())
	if err != nil {
		return res, err
	}
	defer dl.close()
	if err := e.startDaemons(ctx); err != nil {
		return res, err
	}
	r.note("%d daemon(s) ready; publishing %d events in %d messages", len(e.daemons), r.tr.events, len(r.tr.msgs))
	r.pub = newPublisher(e.js, subject(e), r.tr.msgs, p.pace)
	r.pub.start(ctx)
	if err := sc.inject(ctx, r); err != nil {
		return res, fmt.Errorf("inject the fault: %w", err)
	}
	if err := r.pub.wait(ctx); err != nil {
		return res, fmt.Errorf("publish: %w", err)
	}
	res.Retries = r.pub.retries.Load()
	from := r.clearedAt
	if r.pub.endedAt.After(from) {
		from = r.pub.endedAt
	}
	r.note("fault cleared and every message stored (%d publish retries)", res.Retries)
	r.recover(ctx, from, &res)
	if r.caughtUp == nil {
		return res, errors.New("the injection never said the fault cleared")
	}
	if res.CatchUp = <-r.caughtUp; res.CatchUp < 0 {
		res.fail("catch-up: ratemon never acknowledged what was published before the fault cleared")
	}

	ds, err := dl.decisions()
	if err != nil {
		return res, err
	}
	res.Decided = len(ds)
	if bad := falseDecisions(r.tr, ds); len(bad) > 0 {
		res.fail("decisions that set a flag the model would not set", bad...)
	}
	if ex := e.unexpectedExits(); len(ex) > 0 {
		res.fail("daemons that exited by themselves", ex...)
	}
	for _, d := range e.daemons {
		if d.proc.running() {
			r.tally(ctx, d)
		}
	}
	res.Redelivered = r.redelivered
	if err := e.stopDaemons(); err != nil {
		res.fail("clean shutdown: " + err.Error())
	}
	r.note("daemons stopped")
	r.checkCounts(ctx, rs, &res)
	r.note("counts compared: %d (rule, key) pairs over their limit", res.Over)
	return res, nil
}

// recover waits until ratemon has drained and every flag equals the
// model's, at most RecoveryLag after from, and records how long it took.
func (r *run) recover(ctx context.Context, from time.Time, res *Result) {
	deadline := from.Add(RecoveryLag)
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	d := &bench.Drainer{Consumer: r.e.cons, Redis: r.e.rdb, Keys: r.e.keys, Shards: r.e.cfg.Workers.Shards}
	if _, err := d.Wait(dctx, r.pub.lastSeq.Load()); err != nil {
		res.fail(fmt.Sprintf("drain: not done %v after the fault cleared: %v", RecoveryLag, err))
		// Give it another minute, so that the counts below tell what is
		// missing rather than what is late.
		lctx, lcancel := context.WithTimeout(ctx, time.Minute)
		defer lcancel()
		if _, err := d.Wait(lctx, r.pub.lastSeq.Load()); err != nil {
			res.fail("drain: still not done a minute later: " + err.Error())
		}
		return
	}
	r.note("drained")
	var last flagState
	err := poll(ctx, time.Until(deadline), 50*time.Millisecond, "the flags to equal the model's", func() (bool, error) {
		st, err := compareFlags(ctx, r.e.rdb, r.e, r.tr)
		if err != nil {
			return false, err
		}
		last = st
		return len(st.diffs) == 0, nil
	})
	if err != nil {
		res.fail(fmt.Sprintf("flags: not equal to the model's within %v of the fault clearing: %v", RecoveryLag, err), last.diffs...)
		return
	}
	res.Recovery = time.Since(from)
	res.Flags = last.inForce
	r.note("every flag equals the model's (%d in force), %.1fs after the fault cleared", last.inForce, res.Recovery.Seconds())
}

// checkCounts compares every key's counts and flags with the model, on a
// store whose clock is frozen now (the daemons have stopped), and checks
// that the stream holds every message once.
func (r *run) checkCounts(ctx context.Context, rs *limiter.Ruleset, res *Result) {
	rep, err := modelcheck.CompareNow(ctx, modelcheck.Options{Rules: rs, Redis: r.e.rdb, Keys: r.e.keys, Model: r.tr.model})
	if err != nil {
		res.fail("counts: " + err.Error())
		return
	}
	res.Over = rep.Over
	if len(rep.Mismatches) > 0 {
		res.fail("counts and flags different from the model's (lost or double-counted events)", rep.Mismatches...)
	}
	s, err := r.e.js.Stream(ctx, r.e.cfg.NATS.Stream)
	if err != nil {
		res.fail("stream: " + err.Error())
		return
	}
	info, err := s.Info(ctx)
	if err != nil {
		res.fail("stream: " + err.Error())
		return
	}
	if info.State.Msgs != uint64(len(r.tr.msgs)) {
		res.fail(fmt.Sprintf("stream: holds %d messages, %d were published", info.State.Msgs, len(r.tr.msgs)))
	}
	if res.Recovery > 0 && (res.Flags == 0 || rep.Over == 0) {
		res.fail(fmt.Sprintf("trace: the model has %d flags in force and %d keys over, the check would prove nothing", res.Flags, rep.Over))
	}
}
