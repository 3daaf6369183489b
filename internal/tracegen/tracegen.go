// Package tracegen generates request-event traces for tests and benchmarks:
// many clients, uniform or Zipf, with the disorder real traffic has (events
// out of order, late events, duplicated ids, bursts right at window edges),
// deterministic for a seed.
package tracegen

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/ratemon/ratemon/pipeline/event"
)

// Options shapes a trace. Zero fields take the defaults noted.
type Options struct {
	Seed    uint64
	Now     int64         // Unix ms the trace ends at (required)
	Span    time.Duration // how far back the trace starts (default 2m)
	Events  int           // number of distinct events (default 1000)
	Clients int           // number of clients (default 20)
	Zipf    float64       // Zipf exponent s > 1 for client popularity; 0: uniform
	// Disorder, as fractions of Events.
	OutOfOrder float64 // events moved up to Jitter earlier in the arrival order
	Jitter     time.Duration
	Late       float64 // events that arrive at the very end whatever their ts
	Duplicates float64 // events sent twice with the same id and ts
	Future     float64 // events stamped up to FutureBy after Now
	FutureBy   time.Duration
	// Edges are window lengths; bursts of BurstSize events land within 2 ms
	// of Now-edge for a few clients each, to probe the window boundary.
	Edges     []time.Duration
	BurstSize int
	MaxWeight int64    // weights drawn in 1..MaxWeight (default 1)
	Services  []string // default {"stocks"}
	Routes    []string // default {"GET /stocks/{symbol}/history"}
	IPs       int      // distinct IPs (default Clients)
	Refused   float64  // events marked refused
}

func (o *Options) defaults() {
	if o.Span == 0 {
		o.Span = 2 * time.Minute
	}
	if o.Events == 0 {
		o.Events = 1000
	}
	if o.Clients == 0 {
		o.Clients = 20
	}
	if o.Jitter == 0 {
		o.Jitter = 2 * time.Second
	}
	if o.FutureBy == 0 {
		o.FutureBy = time.Second
	}
	if o.MaxWeight == 0 {
		o.MaxWeight = 1
	}
	if len(o.Services) == 0 {
		o.Services = []string{"stocks"}
	}
	if len(o.Routes) == 0 {
		o.Routes = []string{"GET /stocks/{symbol}/history"}
	}
	if o.IPs == 0 {
		o.IPs = o.Clients
	}
	if o.BurstSize == 0 {
		o.BurstSize = 5
	}
}

// Generate returns the events in arrival order.
func Generate(o Options) []event.Event {
	o.defaults()
	rng := rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))
	pick := clientPicker(rng, o)
	span := o.Span.Milliseconds()
	evs := make([]event.Event, 0, o.Events+o.Events/4)
	mk := func(c int, ts int64) event.Event {
		e := event.Event{
			Client:  fmt.Sprintf("c%04d", c),
			TS:      ts,
			Service: o.Services[rng.IntN(len(o.Services))],
			Route:   o.Routes[rng.IntN(len(o.Routes))],
			Method:  "GET",
			IP:      fmt.Sprintf("10.0.%d.%d", (c%o.IPs)/250, (c%o.IPs)%250+1),
			Status:  200,
			Weight:  1 + rng.Int64N(o.MaxWeight),
			ID:      fmt.Sprintf("e%d", len(evs)),
		}
		if rng.Float64() < o.Refused {
			e.Refused = true
		}
		return e
	}
	for i := 0; i < o.Events; i++ {
		ts := o.Now - span + rng.Int64N(span+1)
		if rng.Float64() < o.Future {
			ts = o.Now + 1 + rng.Int64N(o.FutureBy.Milliseconds())
		}
		evs = append(evs, mk(pick(), ts))
	}
	for _, edge := range o.Edges {
		for b := 0; b < 3; b++ {
			c := pick()
			base := o.Now - edge.Milliseconds()
			for j := 0; j < o.BurstSize; j++ {
				evs = append(evs, mk(c, base-2+rng.Int64N(5)))
			}
		}
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].TS < evs[j].TS })
	// Disorder: local swaps within Jitter, then a tail of late arrivals.
	jit := o.Jitter.Milliseconds()
	for i := range evs {
		if rng.Float64() >= o.OutOfOrder {
			continue
		}
		for j := i + 1; j < len(evs) && evs[j].TS-evs[i].TS <= jit; j++ {
			if rng.IntN(3) == 0 {
				evs[i], evs[j] = evs[j], evs[i]
				break
			}
		}
	}
	var late, out []event.Event
	for _, e := range evs {
		if rng.Float64() < o.Late {
			late = append(late, e)
			continue
		}
		out = append(out, e)
	}
	out = append(out, late...)
	// Duplicates: re-sent copies shortly after the original.
	var final []event.Event
	for _, e := range out {
		final = append(final, e)
		if rng.Float64() < o.Duplicates {
			final = append(final, e)
		}
	}
	return final
}

func clientPicker(rng *rand.Rand, o Options) func() int {
	if o.Zipf > 1 {
		z := rand.NewZipf(rng, o.Zipf, 1, uint64(o.Clients-1))
		return func() int { return int(z.Uint64()) }
	}
	return func() int { return rng.IntN(o.Clients) }
}
