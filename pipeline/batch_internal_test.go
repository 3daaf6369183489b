package pipeline

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/limiter"
	"github.com/ratemon/ratemon/pipeline/event"
)

// The batch against a model: random NDJSON messages over a few clients
// (one with a key longer than the batch's key buffer), some delivered
// twice in the same batch, grouped per limit key and, in a
// key, per message, every event once in decode order: a second delivery
// of a message adds none of its events again. Appending to one
// key's events afterwards (as the holder's merges may) must not change
// another's: they share one array per message. One batch is reset and
// reused from trial to trial, as a batch loop does: what the holder may
// keep of a batch (each key's messages and their events) must not change
// when the next batch is decoded.
func TestBatch_groupsEventsPerKeyAndMessage(t *testing.T) {
	rs := rulesetOf(t, limiter.Rule{Name: "per-client", Limit: 1000, Window: 10 * time.Second})
	rng := rand.New(rand.NewPCG(3, 4))
	client := func(c int64) string {
		if c == 4 {
			return "c4" + strings.Repeat("x", 300)
		}
		return fmt.Sprintf("c%d", c)
	}
	type msgEvents struct {
		seq uint64
		ts  []int64
	}
	b := newBatch(nil)
	var kept, keptCopy []limiter.KeyAppend
	for trial := range 50 {
		b.reset(rs)
		model := map[string][]msgEvents{} // client -> its messages, in order
		again := 0                        // second copies added
		for seq := uint64(1); seq <= uint64(1+rng.IntN(20)); seq++ {
			var data []byte
			var evs [][2]int64 // client, ts
			for range rng.IntN(12) {
				c, ts := rng.Int64N(5), 1000+rng.Int64N(5000)
				data = fmt.Appendf(data, `{"client":%q,"ts":%d}`+"\n", client(c), ts)
				evs = append(evs, [2]int64{c, ts})
			}
			times := 1 + rng.IntN(2) // the same message twice, now and then
			for copyNo := range times {
				b.addMessage(data, seq, 9000, "svc", event.Limits{}, 60_000, nil, nil)
				if copyNo > 0 {
					again++
					continue // a second delivery adds nothing
				}
				for _, ev := range evs {
					c := client(ev[0])
					ms := model[c]
					if len(ms) == 0 || ms[len(ms)-1].seq != seq {
						ms = append(ms, msgEvents{seq: seq})
					}
					ms[len(ms)-1].ts = append(ms[len(ms)-1].ts, ev[1])
					model[c] = ms
				}
			}
		}
		got := map[string][]msgEvents{}
		for _, ka := range b.appends {
			c := string(ka.Key)
			for _, m := range ka.Messages {
				me := msgEvents{seq: m.Seq}
				for _, e := range m.Events {
					require.Equal(t, uint64(1), e.Mask)
					me.ts = append(me.ts, e.TS)
				}
				got[c] = append(got[c], me)
			}
		}
		want := map[string][]msgEvents{}
		for c, ms := range model {
			want["client="+c] = ms
		}
		require.Equal(t, want, got, "trial %d", trial)
		require.Equal(t, again, b.again, "trial %d: second copies counted", trial)
		require.Equal(t, keptCopy, copyAppends(kept), "trial %d: the last batch's messages changed", trial)

		// Grow every key's first message by one event: the others keep theirs.
		for i := range b.appends {
			m := &b.appends[i].Messages[0]
			m.Events = append(m.Events, limiter.Event{TS: -1, Weight: 1, Mask: 1})
		}
		for _, ka := range b.appends {
			for j, m := range ka.Messages {
				for k, e := range m.Events {
					if e.TS == -1 {
						require.True(t, j == 0 && k == len(m.Events)-1, "trial %d: %s message %d event %d overwritten", trial, ka.Key, j, k)
					}
				}
			}
		}
		// Add a message to every key's list: the others keep theirs (the
		// lists of keys new to a batch come from one array).
		for i := range b.appends {
			ka := &b.appends[i]
			ka.Messages = append(ka.Messages, limiter.Message{Seq: 1 << 40})
		}
		for _, ka := range b.appends {
			for j, m := range ka.Messages {
				require.Equal(t, j == len(ka.Messages)-1, m.Seq == 1<<40, "trial %d: %s message %d overwritten", trial, ka.Key, j)
			}
		}
		for i := range b.appends {
			b.appends[i].Messages = b.appends[i].Messages[:len(b.appends[i].Messages)-1]
		}
		kept = append([]limiter.KeyAppend(nil), b.appends...)
		keptCopy = copyAppends(kept)
	}
}

// copyAppends copies kas down to their events.
func copyAppends(kas []limiter.KeyAppend) []limiter.KeyAppend {
	var out []limiter.KeyAppend
	for _, ka := range kas {
		c := limiter.KeyAppend{Key: ka.Key, Group: ka.Group}
		for _, m := range ka.Messages {
			c.Messages = append(c.Messages, limiter.Message{Seq: m.Seq, Events: append([]limiter.Event(nil), m.Events...)})
		}
		out = append(out, c)
	}
	return out
}
