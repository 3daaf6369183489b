package bench

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/limiter"
)

func TestTripTS(t *testing.T) {
	for _, c := range []struct {
		name   string
		ts     []int64
		limit  int64
		want   int64
		wantOK bool
	}{
		{"never", []int64{0, 10, 20}, 4, 0, false},
		{"third event", []int64{0, 10, 20, 30}, 3, 20, true},
		{"window drops old events", []int64{0, 100, 150, 160}, 3, 160, true},
		{"events at the window edge are out", []int64{0, 100, 100}, 3, 0, false},
		{"one millisecond counts all its events", []int64{5, 7, 7, 7}, 3, 7, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, ok := tripTS(c.ts, c.limit, 100)
			require.Equal(t, c.wantOK, ok)
			require.Equal(t, c.want, got)
		})
	}
}

func TestJudgeSeed(t *testing.T) {
	// Key 0: requests at 0, 10, 20, 200 ms; limit 2, window 100 ms. The
	// third is over (3 in the window); the fourth is alone again.
	seq := []uint32{0, 0, 0, 0, 1}
	reqs := []seedRequest{
		{ms: 0, xlen: 1, done: true},
		{ms: 10, xlen: 2, done: true},
		{ms: 20, xlen: 3, done: true},  // right: denied
		{ms: 200, xlen: 4, done: true}, // old entries left by an approximate trim: false deny
		{ms: 5, xlen: 1, done: false},  // not run: ignored
	}
	res := judgeSeed(reqs, seq, 2, 2, 100)
	require.Equal(t, 4, res.decisions)
	require.Equal(t, 1, res.falseDenies)
	require.Zero(t, res.missedDenies)

	reqs[2].xlen = 2 // a trim that removed too much
	res = judgeSeed(reqs, seq, 2, 2, 100)
	require.Equal(t, 1, res.missedDenies)
}

func TestAggregate_medianAndWorst(t *testing.T) {
	runs := []RunResult{
		{Result: Result{EventsPerS: 300, SeedExactPerS: 100, FalseDenies: 0}},
		{Result: Result{EventsPerS: 100, SeedExactPerS: 100, FalseDenies: 2}},
		{Result: Result{EventsPerS: 200, SeedExactPerS: 50, FalseDenies: 0}},
	}
	got := aggregate(runs)
	require.InDelta(t, 200, got.EventsPerS, 1e-9)
	require.InDelta(t, 100, got.SeedExactPerS, 1e-9)
	require.InDelta(t, 2, got.FalseDenies, 1e-9, "correctness counts are the worst run")
	require.InDelta(t, 2, got.RatioSeedExact, 1e-9, "ratios come from the medians")
	require.InDelta(t, 150, median([]float64{100, 200}), 1e-9)
}

func TestParseProc(t *testing.T) {
	stat := []byte("4242 (rate mon) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 125 0 0 20 0 12 0 100 1000000 2000\n")
	status := []byte("Name:\tratemon\nVmPeak:\t  9000 kB\nVmRSS:\t   2048 kB\nThreads:\t12\n")
	ps, err := parseProc(stat, status)
	require.NoError(t, err)
	require.InDelta(t, 3.75, ps.cpu, 1e-9)
	require.Equal(t, int64(2048<<10), ps.rss)

	_, err = parseProc([]byte("garbage"), status)
	require.Error(t, err)
}

func TestPicker_deterministicWithAbusiveShare(t *testing.T) {
	o := &Options{Keys: 1000, Dist: Uniform, Abusive: 0.01, Seed: 7}
	a, b := newPicker(o).sequence(200000), newPicker(o).sequence(200000)
	require.Equal(t, a, b)
	abusive := map[uint32]bool{}
	for _, k := range newPicker(o).abusive {
		abusive[k] = true
	}
	require.Len(t, abusive, 10)
	n := 0
	for _, k := range a {
		if abusive[k] {
			n++
		}
	}
	// 10 keys at 100 times the weight of 1000: 1000/2000 of the events.
	require.InDelta(t, 0.5, float64(n)/float64(len(a)), 0.01)

	z := newPicker(&Options{Keys: 1000, Dist: Zipf, ZipfS: 1.1, Seed: 7}).sequence(100000)
	counts := make([]int, 1000)
	for _, k := range z {
		counts[k]++
	}
	require.Greater(t, counts[0], counts[10])
	require.Greater(t, counts[10], counts[500])
}

// With AbuseRamp, abusive key j of n starts at draw j/n × ramp × rate:
// before it, it is drawn only as often as any key; after it, at the
// abusive share.
func TestPicker_abuseRampStartsKeysInTurn(t *testing.T) {
	o := &Options{Keys: 1000, Dist: Uniform, Abusive: 0.01, Seed: 7, Rate: 10000, AbuseRamp: 10 * time.Second}
	p := newPicker(o)
	seq := p.sequence(200000) // 20 s at the rate: the last key starts at 90,000
	for j, k := range p.abusive {
		start := j * 10000
		require.Equal(t, start, p.starts[j])
		before, after := 0, 0
		for i, x := range seq {
			switch {
			case x != k:
			case i < start:
				before++
			case i < start+10000:
				after++
			}
		}
		// Any key: 1/2000 of the draws; an abusive one: 100/2000.
		require.LessOrEqual(t, before, start/2000*3+5, "key %d before its start", j)
		require.Greater(t, after, 10000/2000*100/2, "key %d after its start", j)
	}
	require.Error(t, (&Options{Abusive: 0.01, AbuseRamp: time.Second}).validate(), "a ramp without a rate")
}

// Each tripped key's lag is its first deny decision's time less its trip
// instant; the lags file lists them in trip order.
func TestDetectionLag_perKey(t *testing.T) {
	lks := []limiter.LimitKey{"client=a", "client=b", "client=c"}
	perKey := [][]int64{
		{1000, 1001, 1002},    // trips at 1002 (limit 3)
		{500, 600, 700, 800},  // trips at 700
		{100, 20_000, 40_000}, // never 3 in one window
	}
	first := map[limiter.LimitKey]float64{"client=a": 1012.5, "client=b": 704}
	st := detectionLag(perKey, lks, first, 3, 10_000)
	require.Equal(t, 2, st.keys)
	require.ElementsMatch(t, []keyLag{{"client=a", 1002, 10.5}, {"client=b", 700, 4}}, st.perKey)
	var b strings.Builder
	require.NoError(t, writeLags(&b, "run1", st.perKey))
	require.Equal(t, "run1 client=b 700 4.0\nrun1 client=a 1002 10.5\n", b.String())
}

func TestNum(t *testing.T) {
	require.Equal(t, "1,234,567", num(1234567.4))
	require.Equal(t, "-1,000", num(-1000))
	require.Equal(t, "12", num(12))
}

// The RSS figures: a run whose memory settles has no growth from its
// first half to its second; one that keeps growing shows it.
func TestSummarizeRSS(t *testing.T) {
	flat := summarizeRSS([]int64{10, 300, 290, 310, 305, 300})
	require.Equal(t, rssFigures{first: 10, last: 300, peak: 310, half1: 300, half2: 310}, flat)
	growing := summarizeRSS([]int64{100, 200, 300, 400})
	require.Equal(t, int64(200), growing.half1)
	require.Equal(t, int64(400), growing.half2)
	one := summarizeRSS([]int64{7})
	require.Equal(t, one.half1, one.half2)
	require.Equal(t, rssFigures{}, summarizeRSS(nil))
}

func TestPublisherExpected_sizesTheTraceOfAKnownRun(t *testing.T) {
	for _, c := range []struct {
		name string
		p    *publisher
		want int
	}{
		{"events", &publisher{events: 12345, perMsg: 100}, 12345},
		{"paced: one message more than rate x duration", &publisher{rate: 1000, duration: 2 * time.Second, perMsg: 100}, 2100},
		{"paced, a partial message rounds down before the extra one", &publisher{rate: 150, duration: time.Second, perMsg: 100}, 200},
		{"unpaced duration: unknown", &publisher{duration: time.Minute, perMsg: 100}, 0},
		{"a rate no machine keeps: capped", &publisher{rate: 1e9, duration: time.Hour, perMsg: 100}, (maxPresized/100 + 1) * 100},
	} {
		t.Run(c.name, func(t *testing.T) {
			require.Equal(t, c.want, c.p.expected())
		})
	}
}
