package bench

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Route is the route of every generated event: the Origin's endpoint.
const Route = "GET /stocks/{symbol}/history"

// Service is the service of every generated event (its subject token).
const Service = "bench"

// clientID names key k: clients are k000000, k000001...
func clientID(k int) string { return fmt.Sprintf("k%06d", k) }

// picker draws the key of each event: with probability pAbuse one of the
// abusive keys (uniformly) once it has started, else a key of the
// distribution over all keys. It is deterministic for a seed, so every run
// and every reference sees the same key sequence.
type picker struct {
	rng     *rand.Rand
	n       int
	zipf    *rand.Zipf
	abusive []uint32
	starts  []int // per abusive key, the draw from which it abuses (Options.AbuseRamp)
	drawn   int
	pAbuse  float64
}

func newPicker(o *Options) *picker {
	rng := rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))
	p := &picker{rng: rng, n: o.Keys}
	if o.Dist == Zipf && o.Keys > 1 {
		p.zipf = rand.NewZipf(rng, o.ZipfS, 1, uint64(o.Keys-1))
	}
	nAbuse := int(math.Round(o.Abusive * float64(o.Keys)))
	if nAbuse > 0 {
		for _, k := range rng.Perm(o.Keys)[:nAbuse] {
			p.abusive = append(p.abusive, uint32(k))
		}
		p.pAbuse = float64(AbuseFactor*nAbuse) / float64(AbuseFactor*nAbuse+o.Keys)
		p.starts = make([]int, nAbuse)
		for j := range p.starts {
			p.starts[j] = int(float64(j) / float64(nAbuse) * o.AbuseRamp.Seconds() * o.Rate)
		}
	}
	return p
}

func (p *picker) next() uint32 {
	p.drawn++
	if len(p.abusive) > 0 && p.rng.Float64() < p.pAbuse {
		if j := p.rng.IntN(len(p.abusive)); p.drawn > p.starts[j] {
			return p.abusive[j]
		}
	}
	if p.zipf != nil {
		return uint32(p.zipf.Uint64())
	}
	return uint32(p.rng.IntN(p.n))
}

// sequence returns the first n keys the picker draws.
func (p *picker) sequence(n int) []uint32 {
	out := make([]uint32, n)
	for i := range out {
		out[i] = p.next()
	}
	return out
}

// trace is what a run published: the key of every event in publish order,
// and the time stamped on the events of every message (Unix ms; the events
// of one message share it).
type trace struct {
	perMsg int
	keys   []uint32
	msgTS  []int64
}

func (t *trace) ts(i int) int64 { return t.msgTS[i/t.perMsg] }

// byKey returns, for every key, the times of its events in publish order
// (which is time order: messages are stamped when they are built).
func (t *trace) byKey(nkeys int) [][]int64 {
	counts := make([]int, nkeys)
	for _, k := range t.keys {
		counts[k]++
	}
	all := make([]int64, len(t.keys))
	out := make([][]int64, nkeys)
	off := 0
	for k, c := range counts {
		out[k] = all[off : off : off+c]
		off += c
	}
	for i, k := range t.keys {
		out[k] = append(out[k], t.ts(i))
	}
	return out
}

// prefixes are the JSON of each key's event up to the value of ts.
func prefixes(nkeys int) [][]byte {
	out := make([][]byte, nkeys)
	for k := range out {
		out[k] = fmt.Appendf(nil, `{"client":%q,"route":%q,"ts":`, clientID(k), Route)
	}
	return out
}
