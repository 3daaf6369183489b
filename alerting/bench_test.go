package alerting_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/alerting"
	"github.com/ratemon/ratemon/internal/keyspace"
	"github.com/ratemon/ratemon/internal/testenv"
	"github.com/ratemon/ratemon/limiter"
)

// BenchmarkWorkerAlerting measures what a worker does per batch: evaluate
// benchKeys limit keys in Redis (pipelined) and hand the results to Observe,
// with the alerting component running behind it. Every key is over its
// limit, so every result is tracked, and benchChurn keys per batch are
// renamed to fresh ones, so alerts open (and notifications flow) all the
// time: a heavy attack. A sink that hangs must not slow the worker down
// (compare sink=none and sink=hanging; see docs/BENCHMARKS.md).
//
//	go test -run '^$' -bench BenchmarkWorkerAlerting -benchtime 3s -count 3 ./alerting/
func BenchmarkWorkerAlerting(b *testing.B) {
	stop := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	defer hang.Close()
	defer close(stop)
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	defer ok.Close()
	for _, bc := range []struct {
		name     string
		alerting bool
		sinks    []alerting.SinkConfig
	}{
		{"alerting=off", false, nil},
		{"sink=none", true, nil},
		{"sink=webhook", true, []alerting.SinkConfig{webhook("ok", ok.URL)}},
		{"sink=hanging", true, []alerting.SinkConfig{{Name: "hang", Type: alerting.SinkWebhook, URL: hang.URL, QueueSize: 100}}},
	} {
		b.Run(bc.name, func(b *testing.B) { benchWorker(b, bc.alerting, bc.sinks) })
	}
}

// Keys evaluated per batch, and how many of them are new limit keys.
const (
	benchKeys  = 64
	benchChurn = 2
)

func benchWorker(b *testing.B, on bool, sinks []alerting.SinkConfig) {
	rdb := testenv.Redis(b)
	prefix := testenv.Prefix(b, rdb)
	keys, err := keyspace.NewRedis(prefix)
	require.NoError(b, err)
	rules := testRules(b, limiter.Rule{Name: "per-client", Key: []limiter.Field{limiter.FieldClient}, Limit: 10,
		Window: time.Hour, Action: limiter.ActionDeny, WarnAt: 0.8})
	rs := rules()
	store, err := limiter.NewStore(limiter.StoreOptions{Client: rdb, Keys: keys})
	require.NoError(b, err)
	ctx := context.Background()
	require.NoError(b, store.Load(ctx))

	// benchKeys limit keys, each over its limit for the next hour.
	var batch []limiter.KeyAppend
	var lks []limiter.LimitKey
	now := time.Now().UnixMilli()
	for i := range benchKeys {
		k := limiter.LimitKey(fmt.Sprintf("client=c%d", i))
		g, ok := rs.GroupFor(k)
		require.True(b, ok)
		var evs []limiter.Event
		for j := range 20 {
			evs = append(evs, limiter.Event{TS: now - int64(j), Weight: 1, Mask: 1})
		}
		batch = append(batch, limiter.KeyAppend{Key: k, Group: g, Messages: []limiter.Message{{Seq: uint64(i + 1), Events: evs}}})
		lks = append(lks, k)
	}
	_, err = store.Append(ctx, 0, batch)
	require.NoError(b, err)

	var obs interface {
		Observe(context.Context, []limiter.Evaluation)
	}
	if on {
		cfg := fastConfig(sinks...)
		cfg.GroupWait, cfg.GroupInterval = 10*time.Millisecond, 10*time.Millisecond
		a, err := alerting.New(alerting.Options{Config: cfg, Redis: rdb, Keys: keys, Rules: rules, Replica: "bench",
			Logger: slog.New(slog.DiscardHandler), FlushTimeout: 500 * time.Millisecond})
		require.NoError(b, err)
		actx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- a.Run(actx) }()
		defer func() { cancel(); require.NoError(b, <-done) }()
		obs = a
	}

	b.ReportAllocs()
	n := 0
	for b.Loop() {
		evals, err := store.Evaluate(ctx, rs, lks)
		if err != nil {
			b.Fatal(err)
		}
		for i := range benchChurn {
			evals[i].Key = limiter.LimitKey(fmt.Sprintf("client=new%d", n+i))
		}
		n += len(evals)
		if obs != nil {
			obs.Observe(ctx, evals)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "evals/s")
}
