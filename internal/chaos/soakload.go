package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ratemon/ratemon/internal/backoff"
	"github.com/ratemon/ratemon/limiter"
	"github.com/ratemon/ratemon/pipeline/event"
)

// The soak's load: soakClients clients, of which the first soakAbusive
// send half of all events, in messages of soakPerMsg events stamped with
// the time they are built. Every event also carries the route of its
// segment, "/soak/<n mod segmentRoutes>", where n numbers the segmentLen
// slices of the run: the rule `segment` counts each (client, route) over
// segmentWindow, so right after a segment ends, the count of each of its
// keys is exactly what the checker sent to it in that segment (the route's
// previous segment has left the window). Checking every segment proves
// that no event of the whole soak was lost or counted twice, while the set
// of keys stays fixed and memory can level off.
const (
	soakClients   = 2000
	soakAbusive   = 20
	soakPerMsg    = 100
	soakService   = "soak"
	segmentLen    = 10 * time.Second
	segmentWindow = time.Minute
	segmentRoutes = 9 // a route comes back after 90 s, when its last use has left the 1m window
)

// nominalRate stands for the rate of an unpaced load in soakRules.
const nominalRate = 50000

// soakRules are the soak's rules for a load of rate events/s: `burst` trips
// the abusive clients (about 1.5 × rate events a minute each) and never the
// others (about rate/66), and its flags outlive the end of the load long
// enough to be compared; `segment` counts without ever tripping.
func soakRules(rate float64) []limiter.Rule {
	rules := []limiter.Rule{
		{Name: "burst", Key: []limiter.Field{limiter.FieldClient}, Limit: max(int64(rate/6), 10), Window: time.Minute},
		{Name: "segment", Match: limiter.Match{Route: "/soak/*"}, Key: []limiter.Field{limiter.FieldClient, limiter.FieldRoute},
			Limit: limiter.MaxLimit, Window: segmentWindow, Action: limiter.ActionAlert},
	}
	for i := range rules {
		rules[i].SetDefaults()
	}
	return rules
}

func soakClient(i int) string { return "c" + strconv.Itoa(i) }

func segmentRoute(seg int) string { return "/soak/" + strconv.Itoa(seg%segmentRoutes) }

// segment is what the load sent in one segment.
type segment struct {
	counts  []int64 // events per client
	lastSeq uint64  // stream sequence of its last message
	closed  bool    // no more messages will be added
}

// sentMsg is a message of the last seconds, for the final model.
type sentMsg struct {
	ts      int64
	clients []uint16
}

// soakLoad publishes the soak's messages, one at a time, at a rate or (rate
// 0) as fast as ratemon takes them, keeping at most maxBacklog messages not
// yet acknowledged by ratemon.
type soakLoad struct {
	js         jetstream.JetStream
	cons       jetstream.Consumer
	subject    string
	rate       float64
	maxBacklog uint64
	keepRecent time.Duration
	rng        *rand.Rand

	start   time.Time
	events  atomic.Int64
	lastSeq atomic.Uint64
	ended   atomic.Bool // run has returned; every segment is closed

	mu       sync.Mutex // guards segments and recent
	segments []*segment
	recent   []sentMsg
}

// newSoakLoad returns the load of a run that starts at start (segment 0).
func newSoakLoad(e *env, rate float64, seed uint64, start time.Time) *soakLoad {
	return &soakLoad{start: start,
		js: e.js, cons: e.cons, subject: e.subjects.Events(soakService), rate: rate,
		maxBacklog: uint64(e.cfg.Ingest.LoadBacklog()), keepRecent: 75 * time.Second,
		rng: rand.New(rand.NewPCG(seed, seed^0x5eed)),
	}
}

func (l *soakLoad) pick() uint16 {
	if l.rng.IntN(2) == 0 {
		return uint16(l.rng.IntN(soakAbusive))
	}
	return uint16(soakAbusive + l.rng.IntN(soakClients-soakAbusive))
}

// run publishes until ctx ends or d has passed, then closes every segment.
func (l *soakLoad) run(ctx context.Context, d time.Duration) error {
	end := l.start.Add(d)
	defer func() {
		l.closeSegments(-1)
		l.ended.Store(true)
	}()
	var floor uint64
	for sent := 0; time.Now().Before(end); sent++ {
		if l.rate > 0 {
			due := l.start.Add(time.Duration(float64(sent*soakPerMsg) / l.rate * float64(time.Second)))
			if err := backoff.Sleep(ctx, time.Until(due)); err != nil {
				return err
			}
		} else {
			for l.lastSeq.Load() > floor+l.maxBacklog {
				info, err := l.cons.Info(ctx)
				if err != nil {
					return fmt.Errorf("consumer info: %w", err)
				}
				floor = info.AckFloor.Stream
				if l.lastSeq.Load() > floor+l.maxBacklog {
					if err := backoff.Sleep(ctx, 5*time.Millisecond); err != nil {
						return err
					}
				}
			}
		}
		if err := l.publish(ctx); err != nil {
			return err
		}
	}
	return nil
}

// publish builds and publishes one message, then records it.
func (l *soakLoad) publish(ctx context.Context) error {
	now := time.Now()
	ts := now.UnixMilli()
	seg := int(now.Sub(l.start) / segmentLen)
	route := segmentRoute(seg)
	clients := make([]uint16, soakPerMsg)
	var buf []byte
	for i := range clients {
		clients[i] = l.pick()
		e := event.Event{Client: soakClient(int(clients[i])), TS: ts, Service: soakService, Route: route, Weight: 1}
		buf = append(e.AppendJSON(buf), '\n')
	}
	ack, err := l.js.Publish(ctx, l.subject, buf)
	if err != nil {
		return fmt.Errorf("publish on %s: %w", l.subject, err)
	}
	l.lastSeq.Store(ack.Sequence)
	l.events.Add(soakPerMsg)
	l.mu.Lock()
	defer l.mu.Unlock()
	for len(l.segments) <= seg {
		l.segments = append(l.segments, &segment{counts: make([]int64, soakClients)})
	}
	s := l.segments[seg]
	for _, c := range clients {
		s.counts[c]++
	}
	s.lastSeq = ack.Sequence
	l.recent = append(l.recent, sentMsg{ts: ts, clients: clients})
	cut := 0
	for cut < len(l.recent) && now.Sub(time.UnixMilli(l.recent[cut].ts)) > l.keepRecent {
		cut++
	}
	l.recent = l.recent[cut:]
	l.closeSegmentsLocked(seg - 1)
	return nil
}

// closeSegments marks the segments up to last (-1: all) complete.
func (l *soakLoad) closeSegments(last int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closeSegmentsLocked(last)
}

func (l *soakLoad) closeSegmentsLocked(last int) {
	for i, s := range l.segments {
		if last < 0 || i <= last {
			s.closed = true
		}
	}
}

// closedSegment returns segment i once it is complete (nil before).
func (l *soakLoad) closedSegment(i int) *segment {
	l.mu.Lock()
	defer l.mu.Unlock()
	if i < len(l.segments) && l.segments[i].closed {
		return l.segments[i]
	}
	return nil
}

// segmentCount is the number of segments started so far.
func (l *soakLoad) segmentCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.segments)
}

// recentModel feeds a model of rules (the burst rule) every event of the
// last keepRecent: per message, one event per client weighing what the
// client sent in it, at the time of the message.
func (l *soakLoad) recentModel(rs *limiter.Ruleset) *limiter.Model {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := limiter.NewModel(rs)
	var hits []limiter.Hit
	weights := map[uint16]int64{}
	for _, msg := range l.recent {
		clear(weights)
		for _, c := range msg.clients {
			weights[c]++
		}
		for c, w := range weights {
			e := event.Event{Client: soakClient(int(c)), TS: msg.ts, Service: soakService, Route: segmentRoute(0), Weight: w}
			hits = rs.Match(hits[:0], &e)
			for _, h := range hits {
				m.Add(msg.ts, h.Key, []limiter.Message{{Events: []limiter.Event{{TS: e.TS, Weight: w, Mask: h.Mask}}}})
			}
		}
	}
	return m
}
