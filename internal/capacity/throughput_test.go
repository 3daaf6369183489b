package capacity_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/internal/testenv"
	"github.com/ratemon/ratemon/limiter"
	"github.com/ratemon/ratemon/pipeline/event"
)

// redisCPU reads INFO cpu: seconds of CPU the server used so far.
func redisCPU(t testing.TB, rdb *redis.Client) float64 {
	t.Helper()
	info, err := rdb.Info(context.Background(), "cpu").Result()
	require.NoError(t, err)
	total := 0.0
	for line := range strings.SplitSeq(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (k == "used_cpu_user" || k == "used_cpu_sys") {
			f, err := strconv.ParseFloat(v, 64)
			require.NoError(t, err)
			total += f
		}
	}
	return total
}

// BenchmarkRedisShard measures what one Redis shard (one core: Redis runs
// scripts on one thread) spends per event on the inline ingest path
// (append and evaluate in one script call per key per batch), for batches
// of 1000 events that bring 1, 10 or 100 events to each key they touch.
// The redis-cpu figures are the shard's capacity; the wall-clock events/s
// also counts this process, which shares the machine.
func BenchmarkRedisShard(b *testing.B) {
	srv := testenv.StartPrivateRedis(b)
	rdb := srv.Client(b)
	for _, perKey := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("events_per_key=%d", perKey), func(b *testing.B) {
			r := newRig(b, rdb, 1_000_000)
			g := &r.rs.Groups()[0]
			const batchEvents, keySpace = 1000, 10000
			keysPerBatch := batchEvents / perKey
			seq := uint64(0)
			ts := r.clock.ms - 60_000
			next := 0
			cpu0 := redisCPU(b, rdb)
			b.ReportAllocs()
			for b.Loop() {
				seq++
				ts += int64(perKey)
				batch := make([]limiter.KeyAppend, keysPerBatch)
				for i := range batch {
					evs := make([]limiter.Event, perKey)
					for j := range evs {
						evs[j] = limiter.Event{TS: ts + int64(j), Weight: 1, Mask: 1}
					}
					batch[i] = limiter.KeyAppend{Key: limiter.LimitKey(fmt.Sprintf("client=c%07d", next%keySpace)), Group: g,
						Messages: []limiter.Message{{Seq: seq, Events: evs}}}
					next++
				}
				if _, _, err := r.st.AppendEvaluate(b.Context(), seq-1, batch); err != nil {
					b.Fatal(err)
				}
			}
			cpu := redisCPU(b, rdb) - cpu0
			events := float64(b.N * batchEvents)
			b.ReportMetric(events/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(cpu/events*1e6, "redis-cpu-us/event")
			b.ReportMetric(events/cpu, "events/redis-cpu-s")
			b.ReportMetric(float64(b.N*keysPerBatch)/cpu, "calls/redis-cpu-s")
		})
	}
}

// BenchmarkJetStreamPublish measures JetStream publishing of NDJSON
// messages of 1, 20 or 100 events to a file-backed stream on an in-process
// server, with asynchronous publishes (at most 4096 awaiting their ack).
func BenchmarkJetStreamPublish(b *testing.B) {
	srv := testenv.StartNATS(b)
	benchPublish(b, srv.Connect(b), 1)
}

// BenchmarkJetStreamPublishR3 is BenchmarkJetStreamPublish on a
// three-node cluster with a stream of three replicas. All three servers
// and the client share this machine.
func BenchmarkJetStreamPublishR3(b *testing.B) {
	c := testenv.StartNATSCluster(b)
	benchPublish(b, c.Connect(b), 3)
}

func benchPublish(b *testing.B, nc *nats.Conn, replicas int) {
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	require.NoError(b, err)
	e := event.Event{Client: "client-000123", Route: "GET /stocks/{symbol}/history", Method: "GET",
		IP: "10.1.2.3", Status: 200, Weight: 1, TS: time.Now().UnixMilli(), ID: "req-0123456789"}
	one := append(e.AppendJSON(nil), '\n')
	for i, per := range []int{1, 20, 100} {
		b.Run(fmt.Sprintf("events_per_msg=%d", per), func(b *testing.B) {
			name := fmt.Sprintf("BENCH%d", i)
			_, err := js.CreateStream(b.Context(), jetstream.StreamConfig{
				Name: name, Subjects: []string{"bench" + strconv.Itoa(i) + ".>"}, Storage: jetstream.FileStorage,
				Replicas: replicas,
			})
			require.NoError(b, err)
			msg := []byte(strings.Repeat(string(one), per))
			subject := "bench" + strconv.Itoa(i) + ".events.stocks"
			b.SetBytes(int64(len(msg)))
			for b.Loop() {
				if _, err := js.PublishAsync(subject, msg, jetstream.WithStallWait(10*time.Second)); err != nil {
					b.Fatal(err)
				}
			}
			select {
			case <-js.PublishAsyncComplete():
			case <-time.After(30 * time.Second):
				b.Fatal("publishes not acknowledged within 30s")
			}
			msgs := float64(b.N) / b.Elapsed().Seconds()
			b.ReportMetric(msgs, "msgs/s")
			b.ReportMetric(msgs*float64(per), "events/s")
		})
	}
}
