package chaos

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/ratemon/ratemon/internal/backoff"
	"github.com/ratemon/ratemon/internal/bench"
	"github.com/ratemon/ratemon/internal/config"
	"github.com/ratemon/ratemon/internal/modelcheck"
	"github.com/ratemon/ratemon/limiter"
)

// Soak settings.
const (
	sampleEvery = 5 * time.Second
	flatSpan    = 2 * time.Minute // the spans whose means are compared
	flatWithin  = 0.10            // largest growth of a resource after warm-up
)

// SoakSample is one sample of the soak's resources.
type SoakSample struct {
	AtS        float64 `json:"at_s"`        // seconds since the load started
	RedisBytes int64   `json:"redis_bytes"` // used_memory
	RSSBytes   int64   `json:"rss_bytes"`   // the daemon's VmRSS
	Backlog    uint64  `json:"backlog"`     // messages stored and not yet acknowledged by ratemon
}

// Spread sums up one resource over the samples after warm-up.
type Spread struct {
	Min   int64         `json:"min"`
	Max   int64         `json:"max"`
	Span  time.Duration `json:"span_ns"`    // of the two means compared
	First float64       `json:"first_mean"` // mean over the first Span after warm-up
	Last  float64       `json:"last_mean"`  // mean over the last Span
	Drift float64       `json:"drift"`      // Last/First - 1
}

// LoadResult is the judgement of a run under the soak's load: the soak
// itself, or the backlog scenario.
type LoadResult struct {
	Name       string        `json:"name"`
	Load       string        `json:"load"`     // what ran, for the report
	MaxRate    float64       `json:"max_rate"` // events/s ratemon sustained with an unpaced load (soak only)
	Rate       float64       `json:"rate"`     // target events/s; 0: as fast as ratemon takes them
	Achieved   float64       `json:"achieved"` // events/s actually published
	Duration   time.Duration `json:"duration_ns"`
	WarmUp     time.Duration `json:"warm_up_ns"` // 0: resources not judged
	Events     int64         `json:"events"`
	Segments   int           `json:"segments"`
	Checked    int           `json:"segment_counts_checked"` // (segment, client) counts compared
	Redis      Spread        `json:"redis"`
	RSS        Spread        `json:"rss"`
	MaxBacklog uint64        `json:"max_backlog"`
	// Redelivered counts the messages the daemon found already applied
	// when they came again (ratemon_ingest_duplicates_total{kind="message"}).
	Redelivered int64        `json:"redelivered_applied"`
	Flags       int          `json:"flags"` // burst flags in force at the end, equal to the model's
	Samples     []SoakSample `json:"samples"`
	Pass        bool         `json:"pass"`
	Problems    []string     `json:"problems,omitempty"`
}

func (s *LoadResult) fail(format string, args ...any) {
	s.Pass = false
	s.Problems = append(s.Problems, fmt.Sprintf(format, args...))
}

// runSoak measures the maximum rate, then runs the soak at SoakRatio of it
// for SoakDuration, with production settings, judging the resources too.
func runSoak(ctx context.Context, o *Options) (*LoadResult, error) {
	res := &LoadResult{Name: SoakName, Pass: true, Duration: o.SoakDuration, WarmUp: min(4*time.Minute, o.SoakDuration*2/5)}
	var err error
	if res.MaxRate, err = measureMax(ctx, o); err != nil {
		return nil, fmt.Errorf("maximum rate: %w", err)
	}
	res.Rate = o.SoakRatio * res.MaxRate
	res.Load = fmt.Sprintf("%.0f%% of the maximum rate for %v, production settings (nats.ack_wait 30s, batches of 1000)",
		100*o.SoakRatio, o.SoakDuration)
	o.Logger.Info("soak", "max_rate", int(res.MaxRate), "rate", int(res.Rate), "duration", o.SoakDuration.String())
	return res, runLoad(ctx, o, res, soakTune)
}

// runBacklog runs the soak's load as fast as ratemon takes it, with the
// fault scenarios' nats.ack_wait of 5 s: the messages a daemon holds (its
// pull buffer and the batches in hand, about 5,000 messages) take longer
// than that to process, so JetStream redelivers copies of messages that
// are being processed and then acknowledged; each copy must count once.
func runBacklog(ctx context.Context, o *Options) (*LoadResult, error) {
	d := planFor(o.Mode).backlogTime
	res := &LoadResult{Name: BacklogName, Pass: true, Duration: d,
		Load: fmt.Sprintf("unpaced for %v with nats.ack_wait %v: JetStream redelivers what waits in the daemon", d, ackWait)}
	return res, runLoad(ctx, o, res, func(c *config.Config) { c.Ingest.BatchSize = 1000 })
}

// runLoad runs one daemon under the soak's load at res.Rate for
// res.Duration, checks every segment's counts, the resources when
// res.WarmUp is set, and the burst rule's counts and flags at the end.
func runLoad(ctx context.Context, o *Options, res *LoadResult, tune func(*config.Config)) error {
	rate := res.Rate
	if rate == 0 {
		rate = nominalRate
	}
	rules := soakRules(rate)
	e, err := newEnv(ctx, envOptions{
		exe: o.Exe, redisServer: o.RedisServer, dir: filepath.Join(o.Dir, res.Name), name: res.Name,
		rules: rules, replicas: 1, log: o.Logger.With("scenario", res.Name), tune: tune,
	})
	if err != nil {
		return err
	}
	defer e.close()
	if err := e.startDaemons(ctx); err != nil {
		return err
	}
	rs, err := limiter.NewRuleset(rules)
	if err != nil {
		return fmt.Errorf("soak rules: %w", err)
	}
	load := newSoakLoad(e, res.Rate, o.Seed, time.Now())
	loadDone := make(chan error, 1)
	go func() { loadDone <- load.run(ctx, res.Duration) }()
	checker, err := newSegmentChecker(e, rs, load, o.Logger)
	if err != nil {
		return err
	}
	checkDone := make(chan struct{})
	go func() { defer close(checkDone); checker.run(ctx) }()

	if err := sampleUntil(ctx, e, loadDone, res); err != nil {
		return err
	}
	res.Events = load.events.Load()
	res.Achieved = float64(res.Events) / time.Since(load.start).Seconds()
	d := &bench.Drainer{Consumer: e.cons, Redis: e.rdb, Keys: e.keys, Shards: e.cfg.Workers.Shards}
	dctx, cancel := context.WithTimeout(ctx, time.Minute)
	_, err = d.Wait(dctx, load.lastSeq.Load())
	cancel()
	if err != nil {
		res.fail("drain: not done a minute after the load stopped: %v", err)
	}
	<-checkDone
	res.Segments, res.Checked = load.segmentCount(), checker.checked
	for _, p := range checker.problems {
		res.fail("%s", p)
	}
	if res.WarmUp > 0 {
		judgeResources(res)
	}
	finalLoadCheck(ctx, e, load, rate, res)
	return nil
}

// soakTune is the daemon configuration of the soak: the defaults of a
// production daemon (batches of 1000 messages, inline evaluation,
// nats.ack_wait 30 s), not the fault scenarios' short waits.
func soakTune(c *config.Config) {
	c.Ingest.BatchSize = 1000
	c.NATS.AckWait = config.DefaultNATSAckWait
	c.Ingest.Hold = config.DefaultHold(c.NATS.AckWait)
	c.Workers.ClaimIdle = 0 // its default
}

// sampleUntil samples the resources every sampleEvery until the load ends.
func sampleUntil(ctx context.Context, e *env, loadDone <-chan error, res *LoadResult) error {
	t := time.NewTicker(sampleEvery)
	defer t.Stop()
	started := time.Now()
	for {
		select {
		case err := <-loadDone:
			if err != nil {
				return fmt.Errorf("soak load: %w", err)
			}
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		s := SoakSample{AtS: time.Since(started).Seconds()}
		var err error
		if s.RedisBytes, err = bench.UsedMemory(ctx, e.rdb); err != nil {
			return err
		}
		if pid := e.daemons[0].proc.pid(); pid != 0 {
			if s.RSSBytes, err = bench.ProcRSS(pid); err != nil {
				return err
			}
		}
		info, err := e.cons.Info(ctx)
		if err != nil {
			return fmt.Errorf("consumer info: %w", err)
		}
		s.Backlog = info.NumPending + uint64(info.NumAckPending)
		res.MaxBacklog = max(res.MaxBacklog, s.Backlog)
		res.Samples = append(res.Samples, s)
	}
}

// judgeResources checks that Redis memory and the daemon's RSS did not
// grow after warm-up: the mean of the last flatSpan of samples is at most
// flatWithin above the mean of the first flatSpan (a third each of a
// shorter soak); a fall, memory given back, is no failure. A Go daemon's RSS swings
// with every garbage collection (batches of 100,000 events), so single
// samples are not compared; their range is reported.
func judgeResources(res *LoadResult) {
	var after []SoakSample
	for _, s := range res.Samples {
		if s.AtS >= res.WarmUp.Seconds() {
			after = append(after, s)
		}
	}
	// Two minutes at each end, or a third of a shorter soak's samples.
	n := min(int(flatSpan/sampleEvery), len(after)/3)
	if n < 3 {
		res.fail("resources: %d samples after the %v warm-up, too few to judge", len(after), res.WarmUp)
		return
	}
	span := time.Duration(n) * sampleEvery
	for _, r := range []struct {
		name string
		s    *Spread
		of   func(SoakSample) int64
	}{
		{"redis used_memory", &res.Redis, func(s SoakSample) int64 { return s.RedisBytes }},
		{"daemon rss", &res.RSS, func(s SoakSample) int64 { return s.RSSBytes }},
	} {
		r.s.Min, r.s.Max = r.of(after[0]), r.of(after[0])
		for _, s := range after {
			r.s.Min, r.s.Max = min(r.s.Min, r.of(s)), max(r.s.Max, r.of(s))
		}
		r.s.Span, r.s.First, r.s.Last = span, meanOf(after[:n], r.of), meanOf(after[len(after)-n:], r.of)
		if r.s.First > 0 {
			r.s.Drift = r.s.Last/r.s.First - 1
		}
		if r.s.First <= 0 || r.s.Drift > flatWithin {
			res.fail("%s: mean %.1f MiB over the first %v after warm-up, %.1f MiB over the last %v: %+.1f%% (at most +%.0f%%)",
				r.name, r.s.First/(1<<20), span, r.s.Last/(1<<20), span, 100*r.s.Drift, 100*flatWithin)
		}
	}
}

func meanOf(ss []SoakSample, of func(SoakSample) int64) float64 {
	var sum float64
	for _, s := range ss {
		sum += float64(of(s))
	}
	return sum / float64(len(ss))
}

// finalLoadCheck compares the burst flags with a model of the last events,
// then, the daemon stopped, the burst counts.
func finalLoadCheck(ctx context.Context, e *env, load *soakLoad, rate float64, res *LoadResult) {
	burst, err := limiter.NewRuleset(soakRules(rate)[:1])
	if err != nil {
		res.fail("burst rule: %v", err)
		return
	}
	tr := &trace{now: time.Now().UnixMilli(), model: load.recentModel(burst)}
	var last flagState
	err = poll(ctx, 10*time.Second, 50*time.Millisecond, "the burst flags to equal the model's", func() (bool, error) {
		st, err := compareFlags(ctx, e.rdb, e, tr)
		last = st
		return err == nil && len(st.diffs) == 0, err
	})
	if err != nil {
		res.fail("flags at the end: %v %v", err, last.diffs[:min(len(last.diffs), maxProblems)])
	}
	res.Flags = last.inForce
	if ex := e.unexpectedExits(); len(ex) > 0 {
		res.fail("daemon exited by itself: %v", ex)
	}
	if n, err := e.daemons[0].counter(ctx, `ratemon_ingest_duplicates_total{kind="message"}`); err == nil {
		res.Redelivered = int64(n)
	}
	if err := e.stopDaemons(); err != nil {
		res.fail("clean shutdown: %v", err)
	}
	rep, err := modelcheck.CompareNow(ctx, modelcheck.Options{Rules: burst, Redis: e.rdb, Keys: e.keys, Model: tr.model})
	if err != nil {
		res.fail("burst counts: %v", err)
		return
	}
	if len(rep.Mismatches) > 0 {
		res.fail("burst counts different from the model's (%d): %v", len(rep.Mismatches), rep.Mismatches[:min(len(rep.Mismatches), maxProblems)])
	}
}

// measureMax runs the soak's daemon, load and segment checks, the load
// unpaced, on fresh servers, and returns the events per second ratemon
// acknowledged over the last two thirds of the time (the first third warms
// up: the segment keys all exist after 90 s).
func measureMax(ctx context.Context, o *Options) (float64, error) {
	p := planFor(o.Mode)
	e, err := newEnv(ctx, envOptions{
		exe: o.Exe, redisServer: o.RedisServer, dir: filepath.Join(o.Dir, "soak-max"), name: "soak-max",
		rules: soakRules(nominalRate), replicas: 1, log: o.Logger.With("scenario", "soak-max"), tune: soakTune,
	})
	if err != nil {
		return 0, err
	}
	defer e.close()
	if err := e.startDaemons(ctx); err != nil {
		return 0, err
	}
	rs, err := limiter.NewRuleset(soakRules(nominalRate))
	if err != nil {
		return 0, fmt.Errorf("soak rules: %w", err)
	}
	load := newSoakLoad(e, 0, o.Seed, time.Now())
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- load.run(lctx, p.maxRateTime) }()
	// The segment checks load Redis as in the soak; their verdict does not
	// matter here.
	checker, err := newSegmentChecker(e, rs, load, o.Logger)
	if err != nil {
		return 0, err
	}
	checkDone := make(chan struct{})
	go func() { defer close(checkDone); checker.run(lctx) }()
	defer func() { cancel(); <-checkDone }()
	floor := func() (uint64, time.Time, error) {
		info, err := e.cons.Info(ctx)
		if err != nil {
			return 0, time.Time{}, fmt.Errorf("consumer info: %w", err)
		}
		return info.AckFloor.Stream, time.Now(), nil
	}
	if err := backoff.Sleep(ctx, p.maxRateTime/3); err != nil { // measure after a warm-up
		return 0, err
	}
	f0, t0, err := floor()
	if err != nil {
		return 0, err
	}
	if err := <-done; err != nil {
		return 0, err
	}
	f1, t1, err := floor()
	if err != nil {
		return 0, err
	}
	rate := float64((f1-f0)*soakPerMsg) / t1.Sub(t0).Seconds()
	if rate <= 0 {
		return 0, fmt.Errorf("ratemon acknowledged nothing in %v", t1.Sub(t0))
	}
	o.Logger.Info("maximum rate measured", "events_per_s", int(rate))
	return rate, nil
}
