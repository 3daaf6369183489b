package bench

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/ratemon/ratemon/internal/config"
	"github.com/ratemon/ratemon/internal/keyspace"
	"github.com/ratemon/ratemon/limiter"
	"github.com/ratemon/ratemon/pipeline"
)

// rssEvery is the interval of the daemons' RSS samples.
const rssEvery = 500 * time.Millisecond

// measured is what the ratemon part of a run observed, before judging it.
type measured struct {
	tr            *trace
	pubStart      time.Time // first message built
	pubEnd        time.Time // every message stored by JetStream
	start, end    time.Time // of the measured interval
	redis0, redis redisSnap
	cpu0, cpu     procStat
	rss           rssFigures
	memAt         int64    // Unix ms Redis memory was read
	keyBytes      int64    // MEMORY USAGE summed over the run's keys then
	flags         flagSnap // deny flags right after the drain
	first         map[limiter.LimitKey]float64
	decisions     int
}

// runOnce is one run: fresh names, the ratemon measurement, the judgement
// against the model, cleanup, then the references.
func (b *Bench) runOnce(ctx context.Context, ep endpoints) (RunResult, error) {
	o := &b.opts
	n := newNames()
	rr := RunResult{RedisPrefix: n.prefix, Stream: n.stream}
	cfg, err := b.daemonConfig(n, ep)
	if err != nil {
		return rr, err
	}
	rs, err := limiter.NewRuleset(cfg.Rules)
	if err != nil {
		return rr, fmt.Errorf("bench rule: %w", err)
	}
	keys, err := keyspace.NewRedis(n.prefix)
	if err != nil {
		return rr, fmt.Errorf("redis prefix: %w", err)
	}
	dir, err := os.MkdirTemp("", "ratemon-bench-")
	if err != nil {
		return rr, fmt.Errorf("temporary directory: %w", err)
	}
	defer os.RemoveAll(dir)
	cleaned := false
	defer func() {
		if !cleaned {
			if err := b.cleanup(ctx, n); err != nil {
				b.log.Warn("cleanup failed", "err", err)
			}
		}
	}()

	lks, masks, err := limitKeys(rs, o.Keys)
	if err != nil {
		return rr, err
	}
	m, err := b.measure(ctx, cfg, dir, lks)
	if err != nil {
		return rr, err
	}
	b.log.Info("drained; checking against the model", "events", len(m.tr.keys), "seconds", m.end.Sub(m.start).Seconds())
	res := &rr.Result
	b.figures(m, res)
	perKey := m.tr.byKey(o.Keys)
	windowMS := o.Window.Milliseconds()
	res.WindowEvents = float64(windowEvents(perKey, m.memAt, windowMS))
	res.RedisKeyBytes = float64(m.keyBytes)
	res.RedisBytesPerEvent = ratio(res.RedisKeyBytes, res.WindowEvents)

	model := buildModel(rs, perKey, lks, masks)
	fc := judgeFlags(m.flags, model, lks, perKey)
	res.Flags, res.ModelDenies = float64(fc.flags), float64(fc.modelDenies)
	res.FalseDenies, res.MissedDenies = float64(fc.falseDenies), float64(fc.missed)
	res.BorderlineFlags, res.UntilMismatches = float64(fc.borderline), float64(fc.untilDiff)
	res.LateExpiries, res.FlagOverstayMS = float64(fc.late), float64(fc.overstayMS)
	rr.Samples = fc.samples

	lag := detectionLag(perKey, lks, m.first, o.Limit, windowMS)
	res.LagP50MS, res.LagP99MS, res.LagMaxMS = lag.p50, lag.p99, lag.max
	res.LagKeys, res.LagMissing, res.ExtraDenyKeys = float64(lag.keys), float64(lag.missing), float64(lag.extra)
	if o.LagsFile != "" {
		if err := appendLags(o.LagsFile, n.prefix, lag.perKey); err != nil {
			return rr, err
		}
	}
	res.Decisions = float64(m.decisions)

	mc, err := compareModel(ctx, b.rdb, keys, rs, model)
	if err != nil {
		return rr, err
	}
	res.ModelMismatches = float64(len(mc.Mismatches))
	rr.Samples = append(rr.Samples, mc.Mismatches[:min(len(mc.Mismatches), 5)]...)

	cleaned = true
	if err := b.cleanup(ctx, n); err != nil {
		return rr, err
	}
	if !o.SkipReferences {
		if err := b.references(ctx, n.prefix, res); err != nil {
			return rr, err
		}
	}
	return rr, nil
}

// measure runs the daemons and the load and returns what it observed; the
// daemons have stopped when it returns.
func (b *Bench) measure(ctx context.Context, cfg *config.Config, dir string, lks []limiter.LimitKey) (*measured, error) {
	o := &b.opts
	spec := pipeline.StreamSpec{
		Stream: cfg.NATS.Stream, Subject: subjectsOf(cfg).EventsAll(), Retention: cfg.NATS.Retention,
		Replicas: cfg.NATS.Replicas, Consumer: cfg.NATS.Consumer, AckWait: cfg.NATS.AckWait,
		MaxAckPending: cfg.NATS.MaxAckPending, StartBack: time.Minute,
	}
	// The bench creates the stream and the consumer, so that a backlog is
	// delivered from its first message; the daemons find them.
	stream, err := pipeline.EnsureStream(ctx, b.js, spec)
	if err != nil {
		return nil, err
	}
	cons, err := pipeline.EnsureConsumer(ctx, stream, spec)
	if err != nil {
		return nil, err
	}
	dlog, err := subscribeDecisions(b.nc, subjectsOf(cfg).Decisions())
	if err != nil {
		return nil, err
	}
	m := &measured{}
	defer func() {
		if m.first == nil {
			dlog.close()
		}
	}()
	pub := &publisher{
		subject: subjectsOf(cfg).Events(Service), perMsg: o.PerMsg, rate: o.Rate, events: o.Events,
		duration: o.Duration, pick: newPicker(o), prefixes: prefixes(o.Keys),
	}
	if pub.js, err = newJetStream(b.nc, pub); err != nil {
		return nil, err
	}
	var replicas []*replica
	defer func() { logReplicaExit(b.log, replicas) }()
	var rss *rssSampler
	var pids []int
	defer func() {
		if rss != nil {
			rss.stop()
		}
	}()
	publish := func() error {
		b.log.Info("publishing", "rate", o.Rate, "duration", o.Duration, "events", o.Events)
		var err error
		m.tr, m.pubStart, err = pub.run(ctx)
		m.pubEnd = time.Now()
		return err
	}
	launch := func() error {
		b.log.Info("starting daemons", "replicas", o.Replicas, "inprocess", o.InProcess)
		var err error
		if replicas, err = b.startReplicas(ctx, cfg, dir); err != nil {
			return err
		}
		pids = pidsOf(replicas)
		rss = startRSS(pids, rssEvery)
		return nil
	}
	if o.Backlog {
		// The backlog builds up while ratemon is stopped but Redis keeps
		// its state: the marker says so. Without it the daemon would find
		// Redis empty and rebuild the windows from the stream (see
		// docs/RELIABILITY.md) instead of draining its consumer.
		if err := b.rdb.Set(ctx, mustKeys(cfg).Marker(), `{"by":"ratemon bench"}`, 0).Err(); err != nil {
			return nil, fmt.Errorf("write the state marker: %w", err)
		}
		if err := publish(); err != nil {
			return nil, err
		}
		if m.redis0, err = snapRedis(ctx, b.rdb); err != nil {
			return nil, err
		}
		m.start = time.Now()
		if err := launch(); err != nil {
			return nil, err
		}
	} else {
		if err := launch(); err != nil {
			return nil, err
		}
		if m.redis0, err = snapRedis(ctx, b.rdb); err != nil {
			return nil, err
		}
		m.cpu0 = procSum(pids)
		if o.Rate == 0 {
			w := watchAcks(ctx, cons, 20*time.Millisecond)
			pub.backlog = func() int64 { return pub.sent.Load() - w.floor.Load() }
			pub.maxBacklog = int64(cfg.Ingest.LoadBacklog() * o.Replicas)
			defer w.close()
		}
		if err := publish(); err != nil {
			return nil, err
		}
		m.start = m.pubStart
	}
	d := &Drainer{Consumer: cons, Redis: b.rdb, Keys: mustKeys(cfg), Shards: cfg.Workers.Shards}
	if m.end, err = d.Wait(ctx, uint64(len(m.tr.msgTS))); err != nil {
		return nil, err
	}
	if m.redis, err = snapRedis(ctx, b.rdb); err != nil {
		return nil, err
	}
	m.memAt = time.Now().UnixMilli()
	if m.keyBytes, err = keysMemory(ctx, b.rdb, cfg.Redis.Prefix); err != nil {
		return nil, err
	}
	m.cpu = procSum(pids)
	if m.flags, err = snapshotFlags(ctx, b.rdb, mustKeys(cfg), lks); err != nil {
		return nil, err
	}
	m.rss = rss.stop()
	err = stopAll(replicas)
	replicas = nil
	if err != nil {
		return nil, err
	}
	m.first, m.decisions = dlog.close()
	return m, nil
}

// figures fills the throughput and resource figures.
func (b *Bench) figures(m *measured, res *Result) {
	events := float64(len(m.tr.keys))
	res.Events, res.Messages = events, float64(len(m.tr.msgTS))
	res.ElapsedS = m.end.Sub(m.start).Seconds()
	res.EventsPerS = ratio(events, res.ElapsedS)
	res.PublishPerS = ratio(events, m.pubEnd.Sub(m.pubStart).Seconds())
	res.RedisCPUS = m.redis.cpu - m.redis0.cpu
	res.RedisCPUUSPerEvent = ratio(res.RedisCPUS*1e6, events)
	res.RedisMemoryDelta = float64(m.redis.mem - m.redis0.mem)
	if !b.opts.InProcess {
		res.DaemonCPUS = m.cpu.cpu - m.cpu0.cpu
		res.DaemonCPUUSPerEvent = ratio(res.DaemonCPUS*1e6, events)
		res.DaemonRSSStartBytes = float64(m.rss.first)
		res.DaemonRSSEndBytes = float64(m.rss.last)
		res.DaemonRSSBytes = float64(m.rss.peak)
		res.DaemonRSSHalf1Bytes = float64(m.rss.half1)
		res.DaemonRSSHalf2Bytes = float64(m.rss.half2)
		res.DaemonRSSGrowth = ratio(float64(m.rss.half2), float64(m.rss.half1)) - 1
	}
}

func pidsOf(rs []*replica) []int {
	var out []int
	for _, r := range rs {
		if p := r.pid(); p != 0 {
			out = append(out, p)
		}
	}
	return out
}

// subjectsOf and mustKeys name what cfg names; daemonConfig validated both
// prefixes already.
func subjectsOf(cfg *config.Config) keyspace.Subjects {
	s, _ := keyspace.NewSubjects(cfg.NATS.SubjectPrefix)
	return s
}

func mustKeys(cfg *config.Config) keyspace.Redis {
	k, _ := keyspace.NewRedis(cfg.Redis.Prefix)
	return k
}

// appendLags adds a run's per-key lags to the file of Options.LagsFile.
func appendLags(path, run string, lags []keyLag) (err error) {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("lags file: %w", err)
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("lags file: %w", cerr)
		}
	}()
	return writeLags(f, run, lags)
}
