package bench

import (
	"reflect"
	"slices"
)

// Result holds the figures of one run, or their aggregate over the runs:
// the median of each, except the fields tagged agg:"max" (correctness
// counts), which are the worst run's. docs/BENCHMARKS.md defines each one.
// Counts are float64 too, so that one median serves every field.
type Result struct {
	Events      float64 `json:"events"`        // events published
	Messages    float64 `json:"messages"`      // NATS messages published
	ElapsedS    float64 `json:"elapsed_s"`     // first publish (or daemon start with --backlog) to drained
	EventsPerS  float64 `json:"events_per_s"`  // events / elapsed_s
	PublishPerS float64 `json:"publish_per_s"` // events / time to publish them (stored by JetStream)

	LagP50MS      float64 `json:"lag_p50_ms"`
	LagP99MS      float64 `json:"lag_p99_ms"`
	LagMaxMS      float64 `json:"lag_max_ms"`
	LagKeys       float64 `json:"lag_keys"`                  // keys the model trips that got a deny decision
	LagMissing    float64 `json:"lag_missing" agg:"max"`     // keys the model trips that got none
	ExtraDenyKeys float64 `json:"extra_deny_keys" agg:"max"` // keys denied on NATS that the model never trips
	Decisions     float64 `json:"decisions"`                 // decisions received on NATS

	Flags           float64 `json:"flags"`                      // deny flags read after the run
	ModelDenies     float64 `json:"model_denies"`               // keys the model denies at that time
	FalseDenies     float64 `json:"false_denies" agg:"max"`     // flags the model does not have
	MissedDenies    float64 `json:"missed_denies" agg:"max"`    // model flags Redis lacks
	BorderlineFlags float64 `json:"borderline_flags" agg:"max"` // disagreements within 100 ms of a flag's end
	UntilMismatches float64 `json:"until_mismatches" agg:"max"` // flags both have with different ends
	LateExpiries    float64 `json:"late_expiries" agg:"max"`    // flags Redis still held after their own until
	FlagOverstayMS  float64 `json:"flag_overstay_max_ms" agg:"max"`
	ModelMismatches float64 `json:"model_mismatches" agg:"max"` // internal/modelcheck differences (counts, ends, flags)

	RedisCPUS           float64 `json:"redis_cpu_s"`
	RedisCPUUSPerEvent  float64 `json:"redis_cpu_us_per_event"`
	RedisMemoryDelta    float64 `json:"redis_memory_delta_bytes"` // used_memory after the run minus before
	RedisKeyBytes       float64 `json:"redis_key_bytes"`          // MEMORY USAGE of the run's keys, drained
	WindowEvents        float64 `json:"window_events"`            // events in the window when memory was read
	RedisBytesPerEvent  float64 `json:"redis_bytes_per_event"`
	DaemonCPUS          float64 `json:"daemon_cpu_s"`
	DaemonCPUUSPerEvent float64 `json:"daemon_cpu_us_per_event"`
	DaemonRSSBytes      float64 `json:"daemon_rss_bytes"` // largest sample
	DaemonRSSStartBytes float64 `json:"daemon_rss_start_bytes"`
	DaemonRSSEndBytes   float64 `json:"daemon_rss_end_bytes"`
	DaemonRSSHalf1Bytes float64 `json:"daemon_rss_half1_max_bytes"`  // largest sample of the first half of the interval
	DaemonRSSHalf2Bytes float64 `json:"daemon_rss_half2_max_bytes"`  // largest sample of the second half
	DaemonRSSGrowth     float64 `json:"daemon_rss_growth" agg:"max"` // half2 / half1 - 1

	SeedApproxPerS          float64 `json:"seed_approx_per_s"`
	SeedApproxDecisions     float64 `json:"seed_approx_decisions"`
	SeedApproxFalseDenies   float64 `json:"seed_approx_false_denies"`
	SeedApproxFalseDenyRate float64 `json:"seed_approx_false_deny_rate"`
	SeedApproxMissedDenies  float64 `json:"seed_approx_missed_denies"`
	SeedExactPerS           float64 `json:"seed_exact_per_s"`
	SeedExactDecisions      float64 `json:"seed_exact_decisions"`
	SeedExactFalseDenies    float64 `json:"seed_exact_false_denies"`
	SeedExactMissedDenies   float64 `json:"seed_exact_missed_denies"`
	XAddCeilingPerS         float64 `json:"xadd_ceiling_per_s"`
	RatioSeedExact          float64 `json:"ratio_seed_exact"`  // events_per_s / seed_exact_per_s
	RatioSeedApprox         float64 `json:"ratio_seed_approx"` // events_per_s / seed_approx_per_s
	RatioXAdd               float64 `json:"ratio_xadd"`        // events_per_s / xadd_ceiling_per_s
}

// RunResult is one run's figures with the names it used.
type RunResult struct {
	Result
	RedisPrefix string   `json:"redis_prefix"`
	Stream      string   `json:"stream"`
	Samples     []string `json:"mismatch_samples,omitempty"` // the first differences found, if any
}

// Setup describes what was measured and where.
type Setup struct {
	Date         string  `json:"date"`
	NProc        int     `json:"nproc"`
	GoVersion    string  `json:"go_version"`
	RedisVersion string  `json:"redis_version"`
	Servers      string  `json:"servers"` // "private (--start)" or "configured"
	Keys         int     `json:"keys"`
	Dist         string  `json:"dist"`
	ZipfS        float64 `json:"zipf_s,omitempty"`
	Rate         float64 `json:"rate"`
	Duration     string  `json:"duration,omitempty"`
	EventsPerRun int     `json:"events_per_run,omitempty"`
	Abusive      float64 `json:"abusive"`
	AbuseRamp    string  `json:"abuse_ramp,omitempty"`
	PerMsg       int     `json:"per_msg"`
	Replicas     int     `json:"replicas"`
	InProcess    bool    `json:"inprocess"`
	Backlog      bool    `json:"backlog"`
	Limit        int64   `json:"limit"`
	WindowMS     int64   `json:"window_ms"`
	Runs         int     `json:"runs"`
	References   bool    `json:"references"`
	RefEvents    int     `json:"ref_events,omitempty"`
	Seed         uint64  `json:"seed"`
}

// Report is the outcome of a benchmark: the aggregate figures at the top
// level (in JSON too), the setup, and every run.
type Report struct {
	Result
	Setup Setup       `json:"setup"`
	Runs  []RunResult `json:"runs"`
}

// aggregate returns the median of every field over the runs (the maximum
// for fields tagged agg:"max"), with the ratios recomputed from the medians.
func aggregate(runs []RunResult) Result {
	var out Result
	ov := reflect.ValueOf(&out).Elem()
	t := ov.Type()
	for i := range t.NumField() {
		xs := make([]float64, len(runs))
		for j := range runs {
			xs[j] = reflect.ValueOf(runs[j].Result).Field(i).Float()
		}
		if t.Field(i).Tag.Get("agg") == "max" {
			ov.Field(i).SetFloat(slices.Max(xs))
		} else {
			ov.Field(i).SetFloat(median(xs))
		}
	}
	out.RatioSeedExact = ratio(out.EventsPerS, out.SeedExactPerS)
	out.RatioSeedApprox = ratio(out.EventsPerS, out.SeedApproxPerS)
	out.RatioXAdd = ratio(out.EventsPerS, out.XAddCeilingPerS)
	return out
}

// median of xs (the mean of the middle two for an even count); it sorts xs.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}
