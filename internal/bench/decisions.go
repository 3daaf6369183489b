package bench

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ratemon/ratemon/limiter"
)

// decisionLog records, per limit key, when this process received the first
// deny decision (limiter.Decision with kind deny, allowed false).
type decisionLog struct {
	sub *nats.Subscription

	mu    sync.Mutex // guards first and total
	first map[limiter.LimitKey]float64
	total int
}

func subscribeDecisions(nc *nats.Conn, subject string) (*decisionLog, error) {
	l := &decisionLog{first: map[limiter.LimitKey]float64{}}
	sub, err := nc.Subscribe(subject, l.handle)
	if err != nil {
		return nil, fmt.Errorf("subscribe to %s: %w", subject, err)
	}
	// A slow handler must never make the server drop decisions.
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("subscribe to %s: %w", subject, err)
	}
	l.sub = sub
	return l, nil
}

func (l *decisionLog) handle(m *nats.Msg) {
	at := float64(time.Now().UnixMicro()) / 1000
	var d limiter.Decision
	if err := json.Unmarshal(m.Data, &d); err != nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total++
	if d.Kind != limiter.FlagDeny || d.Allowed {
		return
	}
	if _, ok := l.first[d.Key]; !ok {
		l.first[d.Key] = at
	}
}

// close stops the subscription after the decisions already received have
// been handled, and returns the first deny times and the number of
// decisions.
func (l *decisionLog) close() (map[limiter.LimitKey]float64, int) {
	closed := l.sub.StatusChanged(nats.SubscriptionClosed)
	if l.sub.Drain() == nil {
		select {
		case <-closed:
		case <-time.After(5 * time.Second):
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.first, l.total
}

// tripTS returns the first event time x (of the sorted times ts) at which
// the window (x - window, x] holds at least limit events: the instant the
// reference model starts to deny the key.
func tripTS(ts []int64, limit int64, window int64) (int64, bool) {
	j := 0
	for i := 0; i < len(ts); {
		x := ts[i]
		end := i
		for end < len(ts) && ts[end] == x {
			end++
		}
		for ts[j] <= x-window {
			j++
		}
		if int64(end-j) >= limit {
			return x, true
		}
		i = end
	}
	return 0, false
}

// lagStats summarizes detection lags in ms.
type lagStats struct {
	p50, p99, max float64
	keys          int // keys the model trips that got a deny decision
	missing       int // keys the model trips that got none
	extra         int // keys that got a deny decision the model never trips
	perKey        []keyLag
}

// keyLag is one key's detection lag: its trip instant (Unix ms, event
// time) and the time from it to its first deny decision (ms).
type keyLag struct {
	key  limiter.LimitKey
	trip int64
	lag  float64
}

// writeLags writes one line per key, "<run> <key> <trip ms> <lag ms>",
// in the order of the trips (Options.LagsFile).
func writeLags(w io.Writer, run string, lags []keyLag) error {
	sorted := slices.Clone(lags)
	slices.SortFunc(sorted, func(a, b keyLag) int { return cmp.Compare(a.trip, b.trip) })
	for _, l := range sorted {
		if _, err := fmt.Fprintf(w, "%s %s %d %.1f\n", run, l.key, l.trip, l.lag); err != nil {
			return fmt.Errorf("write lags: %w", err)
		}
	}
	return nil
}

// detectionLag compares the trip instant of every key (from its event
// times) with the first deny decision received for it.
func detectionLag(perKey [][]int64, lks []limiter.LimitKey, first map[limiter.LimitKey]float64, limit, window int64) lagStats {
	var st lagStats
	var lags []float64
	tripped := map[limiter.LimitKey]bool{}
	for k, ts := range perKey {
		trip, ok := tripTS(ts, limit, window)
		if !ok {
			continue
		}
		tripped[lks[k]] = true
		at, got := first[lks[k]]
		if !got {
			st.missing++
			continue
		}
		lags = append(lags, at-float64(trip))
		st.perKey = append(st.perKey, keyLag{key: lks[k], trip: trip, lag: at - float64(trip)})
	}
	for k := range first {
		if !tripped[k] {
			st.extra++
		}
	}
	st.keys = len(lags)
	st.p50, st.p99, st.max = percentile(lags, 0.50), percentile(lags, 0.99), percentile(lags, 1)
	return st
}

// percentile returns the nearest-rank q-quantile of xs (0 when empty); it
// sorts xs.
func percentile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	i := int(math.Ceil(q*float64(len(xs)))) - 1
	return xs[min(max(i, 0), len(xs)-1)]
}
