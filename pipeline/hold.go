package pipeline

import (
	"cmp"
	"container/heap"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ratemon/ratemon/limiter"
)

// The holder saves Redis the calls of limit keys that cannot change state.
// A key's last evaluation says how much weight it can still take before it
// reaches the nearest threshold of a rule it is under (the rule's limit,
// or its warn_at share when it has one), and, for the rules it is over,
// until when their flags stand whatever comes: its room. While the weight
// held for a key plus the new weight stays below half that room (below the
// room would do for the counts; half makes a key coming near a threshold
// go in steps, so that the call that crosses it carries a batch's events,
// not the whole room's), and the held
// events are sent holdMargin before the earliest of those flags ends, no
// flag, alert or shadow flag can change when those events are counted: a
// sliding window only loses events as time passes, and events only extend
// a flag in force. So the events wait, and go to Redis with the key's next
// events that could reach a threshold, or when they are due: once the
// first of them has waited Hold, or holdMargin before the key's earliest
// flag ends, whichever comes first; or when more than HoldMessages
// messages wait. A key far from its limits then costs one script call per
// Hold, however many batches touch it, a key over its limit one per Hold
// or per flag end, and a key near a threshold is evaluated in every batch,
// as without holding. Counts stay exact: held events are counted when
// sent, with their own times.
//
// A message is acknowledged once every key's share of it is stored. A
// message whose share failed to be stored is negatively acknowledged and
// never acknowledged after that, even when its other shares are stored
// later: JetStream delivers it again and the stored shares are recognised
// by their sequence, so each share counts once.
type holder struct {
	maxHold time.Duration // Hold
	maxMsgs int
	spread  bool // first holds are drawn per key (dueMS)

	mu       sync.Mutex
	hold     time.Duration    // maxHold, shortened to the rules' shortest window (holdFor)
	rules    *limiter.Ruleset // the ruleset of the rooms and held groups
	keys     map[limiter.LimitKey]*heldKey
	queue    refHeap   // keys holding events, soonest due first
	last     time.Time // the latest time plan was given
	heldMsgs int       // records with a share held
	heldEvs  int
}

// msgRec follows one delivered message until it can be acknowledged.
type msgRec struct {
	seq uint64
	// replies are the ack subjects of the deliveries of one stream
	// sequence in a batch. A record keeps them, not the messages: a
	// nats.Msg links to the one received after it, so a held message
	// would keep every later message alive until it is acknowledged.
	replies []string
	msgs    []jetstream.Msg // the messages themselves, only for IngestOptions.AfterStore
	pending int             // shares not yet stored, plus one while its batch is in hand
	held    int             // shares waiting in the holder
	failed  bool            // negatively acknowledged; never acknowledged after that
}

// heldKey is what the holder knows and holds of one limit key.
type heldKey struct {
	known     bool // room is from an evaluation
	room      room
	inflight  int    // sends not yet answered
	inflightW int64  // their weight
	sent      uint64 // sends started
	accepted  uint64 // the latest-started send whose room was taken
	touched   time.Time

	group   *limiter.Group
	msgs    []limiter.Message // in sequence order (mergeMessages)
	lastSeq uint64            // the sequence of msgs' last message (0: none held)
	recs    []*msgRec
	weight  int64
	events  int
	since   time.Time // when the first held event came; zero: nothing held
	sinceMS int64     // the same on the rules' clock (Unix ms)
	due     time.Time // when the held events must go
	// firstHold is how long (ms) the key holds before its first send
	// (dueMS); 0: not drawn yet.
	firstHold int64
	gen       uint64 // counts the times the held events were taken
	// lastHeld is how many messages the key's last hold took: its next
	// hold starts with room for a quarter more (holdCap), rather than
	// growing msgs and recs from nothing through a dozen copies, every
	// hold of every key (a sixth of what ingestion allocated at a paced
	// load: docs/BENCHMARKS.md, "2026-12-08 02:50").
	lastHeld int
}

// heldRef queues a key's held events (gen: those taken since are not
// these) until due. A key whose due time comes closer is queued again;
// the later ref then finds the events gone.
type heldRef struct {
	key limiter.LimitKey
	gen uint64
	due time.Time
}

// refHeap is a min-heap of refs by due time (container/heap).
type refHeap []heldRef

func (q refHeap) Len() int           { return len(q) }
func (q refHeap) Less(i, j int) bool { return q[i].due.Before(q[j].due) }
func (q refHeap) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *refHeap) Push(x any)        { *q = append(*q, x.(heldRef)) }
func (q *refHeap) Pop() any {
	old := *q
	n := len(old) - 1
	x := old[n]
	*q = old[:n]
	return x
}

// send is one key's events on their way to Redis, with the records of the
// messages they came from.
type send struct {
	ka     limiter.KeyAppend
	recs   []*msgRec
	hk     *heldKey
	id     uint64 // the key's count of sends when it started
	weight int64
	prior  int64 // weight of the key's sends in flight when it started
}

// Reasons a key's events are sent, for ratemon_ingest_hold_sends_total.
const (
	sendNear  = "near"  // they could reach a threshold, or the key's room is unknown
	sendAge   = "age"   // due: the first held event waited Hold, or a flag of the key ends soon
	sendFull  = "full"  // more than HoldMessages messages waited
	sendDrain = "drain" // shutdown or new rules
)

func newHolder(hold time.Duration, maxMsgs int) *holder {
	return &holder{maxHold: hold, hold: hold, maxMsgs: maxMsgs, keys: map[limiter.LimitKey]*heldKey{}, spread: true}
}

// records makes the records of a batch's messages, keyed by stream
// sequence; each starts with the batch's own hold on it. keep keeps the
// messages too (for the AfterStore hook of tests).
func records(msgs []jetstream.Msg, seqs []uint64, keep bool) map[uint64]*msgRec {
	recs := make(map[uint64]*msgRec, len(msgs))
	for i, m := range msgs {
		r := recs[seqs[i]]
		if r == nil {
			r = &msgRec{seq: seqs[i], pending: 1}
			recs[seqs[i]] = r
		}
		// A sequence delivered twice in one batch: acknowledged together.
		r.replies = append(r.replies, m.Reply())
		if keep {
			r.msgs = append(r.msgs, m)
		}
	}
	return recs
}

// plan decides, for each key of a batch, whether its events are held or
// sent; it adds what is held, soonest due first, only while more than
// maxMsgs messages wait (due keys are the flusher's). It returns the sends
// and, per reason, how many keys each reason sent.
func (h *holder) plan(rs *limiter.Ruleset, appends []limiter.KeyAppend, recs map[uint64]*msgRec, now time.Time, nowMS int64) ([]send, map[string]int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	// Batches read the time before they take the lock: the holder's time
	// never goes back.
	if now.Before(h.last) {
		now = h.last
	}
	h.last = now
	why := map[string]int{}
	var sends []send
	if rs != h.rules {
		sends = h.setRulesLocked(rs, why)
	}
	for i := range appends {
		ka := &appends[i]
		hk := h.keys[ka.Key]
		if hk == nil {
			hk = &heldKey{}
			h.keys[ka.Key] = hk
		}
		hk.touched = now
		var w int64
		n := 0
		holdable := true
		mine := make([]*msgRec, 0, len(ka.Messages))
		for _, m := range ka.Messages {
			r := recs[m.Seq]
			if r != nil {
				r.pending++
				mine = append(mine, r)
			}
			if r == nil || m.Seq == 0 {
				holdable = false // no record to acknowledge it by
			}
			for _, e := range m.Events {
				w += e.Weight
			}
			n += len(m.Events)
		}
		start := nowMS
		if !hk.since.IsZero() {
			start = hk.sinceMS
		}
		if holdable && h.hold >= time.Millisecond && hk.known && (hk.group == nil || hk.group == ka.Group) &&
			hk.weight+hk.inflightW+w < hk.room.weight/2 {
			if wait := h.dueMS(start, hk) - nowMS; wait > 0 {
				h.addLocked(ka.Key, hk, ka, mine, w, n, now, nowMS, now.Add(time.Duration(wait)*time.Millisecond))
				continue
			}
		}
		why[sendNear]++
		sends = append(sends, h.takeLocked(ka.Key, hk, ka.Group, ka.Messages, mine, w))
	}
	// Due keys go with the flusher, not with a batch: a batch loop busy
	// with thousands of routine calls would leave the next batch's keys
	// near a threshold waiting. Only more than HoldMessages messages
	// waiting makes a batch send what is held, at once.
	if h.heldMsgs > h.maxMsgs {
		sends = append(sends, h.dueLocked(now, why)...)
	}
	return sends, why
}

// dueMS is when (Unix ms, on the rules' clock) events held since start
// must go, under a key's room: after Hold, and holdMargin before the
// earliest flag of the key ends. A key never sent yet holds its first
// events for a part of Hold drawn once, from 1 ms to all of it: the keys a
// start (or new rules) makes the holder learn at once would otherwise all
// fall due at once, again and again, every Hold, and each time the deny
// decisions of the keys crossing a limit would wait behind thousands of
// calls.
func (h *holder) dueMS(start int64, hk *heldKey) int64 {
	hold := h.hold.Milliseconds()
	if hk.sent == 0 && h.spread {
		if hk.firstHold == 0 {
			hk.firstHold = 1 + rand.Int64N(hold)
		}
		hold = hk.firstHold
	}
	return min(start+hold, hk.room.until-holdMargin.Milliseconds())
}

// setRulesLocked makes rs the holder's rules: what is held under the old
// ones goes (reason drain, counted in why), and the rooms learnt under them
// are forgotten, as they mean nothing under rs.
func (h *holder) setRulesLocked(rs *limiter.Ruleset, why map[string]int) []send {
	sends := h.takeAllLocked(sendDrain, why)
	h.rules, h.hold = rs, holdFor(h.maxHold, rs)
	h.keys = map[limiter.LimitKey]*heldKey{}
	return sends
}

// unknown lists the keys of a batch that this daemon has never sent (nor
// learnt a room for) under the holder's rules, for Store.Peek.
func (h *holder) unknown(rs *limiter.Ruleset, appends []limiter.KeyAppend) []limiter.KeyAppend {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.rules == nil {
		h.setRulesLocked(rs, nil) // the first batch: nothing is held yet
	}
	if rs != h.rules || h.hold < time.Millisecond {
		return nil // new rules: plan starts over first
	}
	var out []limiter.KeyAppend
	for _, ka := range appends {
		if ka.Group == nil {
			continue
		}
		if hk := h.keys[ka.Key]; hk == nil || (!hk.known && hk.sent == 0) {
			out = append(out, limiter.KeyAppend{Key: ka.Key, Group: ka.Group})
		}
	}
	return out
}

// learn takes the rooms that Store.Peek read for keys still never sent,
// returning how many it could learn and how many it could not. A key that
// was sent meanwhile learns its room from its own evaluation instead.
func (h *holder) learn(rs *limiter.Ruleset, kas []limiter.KeyAppend, evals []limiter.Evaluation, ok []bool) (learnt, unknown int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if rs != h.rules {
		return 0, 0
	}
	for i, ka := range kas {
		if !ok[i] {
			unknown++
			continue
		}
		hk := h.keys[ka.Key]
		if hk == nil {
			hk = &heldKey{touched: h.last}
			h.keys[ka.Key] = hk
		}
		if hk.known || hk.sent > 0 {
			continue
		}
		hk.room, hk.known = roomOf(ka.Group, &evals[i]), true
		learnt++
	}
	return learnt, unknown
}

// addLocked holds ka's events for its key until due (or sooner, when it
// already holds events due sooner).
func (h *holder) addLocked(k limiter.LimitKey, hk *heldKey, ka *limiter.KeyAppend, mine []*msgRec, w int64, n int, now time.Time, nowMS int64, due time.Time) {
	if hk.since.IsZero() {
		hk.since, hk.sinceMS = now, nowMS
	}
	if hk.due.IsZero() || due.Before(hk.due) {
		hk.due = due
		heap.Push(&h.queue, heldRef{key: k, gen: hk.gen, due: due})
	}
	hk.group = ka.Group
	if hk.msgs == nil {
		n := holdCap(hk.lastHeld, len(ka.Messages))
		hk.msgs, hk.recs = make([]limiter.Message, 0, n), make([]*msgRec, 0, n)
	}
	hk.msgs, hk.lastSeq = mergeMessages(hk.msgs, hk.lastSeq, ka.Messages)
	hk.weight += w
	hk.events += n
	h.heldEvs += n
	for _, r := range mine {
		if r.held == 0 {
			h.heldMsgs++
		}
		r.held++
		hk.recs = append(hk.recs, r)
	}
}

// mergeMessages adds more to msgs, which it keeps in sequence order
// (JetStream's stream sequences, never 0), leaving out a message whose
// sequence msgs already has (a redelivered copy of one held): its events
// are the same, and the script would count them once anyway. A key's
// messages mostly come in order and are appended; one that comes after a
// later one (the batch loops take turns) finds its place by a binary
// search, not a scan of all that is held. last is the sequence of msgs'
// last message (0 when msgs is empty), which the caller keeps beside msgs
// and gets back updated: reading it from msgs, memory the key last touched
// a batch or more ago, stalled on a cache miss for every key of every
// batch (docs/BENCHMARKS.md, "2026-12-07 22:03-23:50 UTC").
func mergeMessages(msgs []limiter.Message, last uint64, more []limiter.Message) ([]limiter.Message, uint64) {
	for _, m := range more {
		if len(msgs) == 0 || last < m.Seq {
			msgs = append(msgs, m)
			last = m.Seq
			continue
		}
		i, found := slices.BinarySearchFunc(msgs, m.Seq, func(h limiter.Message, seq uint64) int { return cmp.Compare(h.Seq, seq) })
		if !found {
			msgs = slices.Insert(msgs, i, m)
		}
	}
	return msgs, last
}

// holdCap is the capacity a key's new hold starts with: a quarter more
// than its last hold took (at least what the first batch brings), at most
// maxHoldCap messages.
func holdCap(lastHeld, first int) int {
	return max(min(lastHeld+lastHeld/4, maxHoldCap), first, 1)
}

// maxHoldCap bounds the messages a hold makes room for in advance: a key
// that held many once and few since does not keep a large array per hold.
const maxHoldCap = 256

// takeLocked takes what is held for a key, with more events (of weight
// moreW) and records, as one send; its weight counts against the key's
// room until it is answered (a redelivered copy left out by the merge
// still counts: the bound stays on the safe side).
func (h *holder) takeLocked(k limiter.LimitKey, hk *heldKey, g *limiter.Group, more []limiter.Message, mine []*msgRec, moreW int64) send {
	if len(hk.msgs) > 0 {
		hk.lastHeld = len(hk.msgs)
	}
	msgs, _ := mergeMessages(hk.msgs, hk.lastSeq, more)
	recs := append(hk.recs, mine...)
	for _, r := range hk.recs {
		r.held--
		if r.held == 0 {
			h.heldMsgs--
		}
	}
	if g == nil {
		g = hk.group
	}
	h.heldEvs -= hk.events
	w := hk.weight + moreW
	hk.msgs, hk.lastSeq, hk.recs, hk.weight, hk.events, hk.since, hk.sinceMS, hk.due, hk.group = nil, 0, nil, 0, 0, time.Time{}, 0, time.Time{}, nil
	hk.gen++
	hk.sent++
	sd := send{ka: limiter.KeyAppend{Key: k, Group: g, Messages: msgs}, recs: recs, hk: hk, id: hk.sent, weight: w, prior: hk.inflightW}
	hk.inflight++
	hk.inflightW += w
	return sd
}

// dueLocked takes the keys whose held events are due, then, while more
// than maxMsgs messages wait, the keys due soonest.
func (h *holder) dueLocked(now time.Time, why map[string]int) []send {
	var sends []send
	for len(h.queue) > 0 {
		ref := h.queue[0]
		reason := sendAge
		if ref.due.After(now) {
			if h.heldMsgs <= h.maxMsgs {
				break
			}
			reason = sendFull
		}
		heap.Pop(&h.queue)
		hk := h.keys[ref.key]
		if hk == nil || hk.gen != ref.gen || len(hk.msgs) == 0 {
			continue // sent since
		}
		why[reason]++
		sends = append(sends, h.takeLocked(ref.key, hk, nil, nil, nil, 0))
	}
	if len(h.queue) == 0 || cap(h.queue) > 4*len(h.queue)+64 {
		h.queue = append(refHeap(nil), h.queue...)
	}
	return sends
}

// due returns the sends that are due without a batch: the flusher's work.
func (h *holder) due(now time.Time) ([]send, map[string]int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	why := map[string]int{}
	return h.dueLocked(now, why), why
}

// takeAll returns every held key's events as sends (shutdown).
func (h *holder) takeAll() ([]send, map[string]int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	why := map[string]int{}
	return h.takeAllLocked(sendDrain, why), why
}

func (h *holder) takeAllLocked(reason string, why map[string]int) []send {
	var sends []send
	for _, ref := range h.queue {
		hk := h.keys[ref.key]
		if hk == nil || hk.gen != ref.gen || len(hk.msgs) == 0 {
			continue
		}
		why[reason]++
		sends = append(sends, h.takeLocked(ref.key, hk, nil, nil, nil, 0))
	}
	h.queue = nil
	return sends
}

// done records how sends ended: on success each key's room from its
// evaluation (evals[i] answers sends[i]); on failure the key's room is
// unknown and every message of the sends is failed. It returns the records
// now complete (to acknowledge) and those newly failed (to negatively
// acknowledge).
func (h *holder) done(sends []send, evals []limiter.Evaluation, failed bool) (ack, nak []*msgRec) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := range sends {
		s := &sends[i]
		hk := s.hk
		hk.inflight--
		hk.inflightW -= s.weight
		switch {
		case failed:
			// Its events may or may not be stored: no room from a send
			// started before now is taken.
			hk.known, hk.accepted = false, hk.sent
		case s.id > hk.accepted:
			// Sends in flight when it started may have run after it in
			// Redis, so their weight may be missing from its count.
			r := roomOf(s.ka.Group, &evals[i])
			r.weight -= s.prior
			hk.room, hk.known, hk.accepted = r, true, s.id
		default:
			// An older send answered after a newer one: the newer one's
			// count may lack its weight.
			hk.room.weight -= s.weight
		}
		for _, r := range s.recs {
			if failed && !r.failed {
				r.failed = true
				nak = append(nak, r)
			}
			r.pending--
			if r.pending == 0 && !r.failed {
				ack = append(ack, r)
			}
		}
	}
	return ack, nak
}

// release drops a batch's own hold on its records; failed fails them all
// (the batch's caller negatively acknowledges them).
func (h *holder) release(recs map[uint64]*msgRec, failed bool) (ack []*msgRec) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range recs {
		if failed {
			r.failed = true
		}
		r.pending--
		if r.pending == 0 && !r.failed {
			ack = append(ack, r)
		}
	}
	return ack
}

// fail marks records, and those of a batch, failed, returning those not
// failed before that are not the batch's.
func (h *holder) fail(recs []*msgRec, batch map[uint64]*msgRec) (nak []*msgRec) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range batch {
		r.failed = true
	}
	for _, r := range recs {
		if !r.failed {
			r.failed = true
			nak = append(nak, r)
		}
	}
	return nak
}

// notIn leaves out the records of a batch.
func notIn(recs []*msgRec, batch map[uint64]*msgRec) []*msgRec {
	out := recs[:0:0]
	for _, r := range recs {
		if batch[r.seq] != r {
			out = append(out, r)
		}
	}
	return out
}

// sweep forgets the rooms of keys untouched since before cutoff that hold
// nothing: the map stays the size of the keys in use.
func (h *holder) sweep(cutoff time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for k, hk := range h.keys {
		if hk.inflight == 0 && len(hk.msgs) == 0 && hk.touched.Before(cutoff) {
			delete(h.keys, k)
		}
	}
}

// stats returns the events and messages held now.
func (h *holder) stats() (events, msgs int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.heldEvs, h.heldMsgs
}

// holdMargin is how long before the earliest flag of a key ends its held
// events must have been sent (see holder): time for the send itself.
const holdMargin = time.Second

// room is what a key can take without a state change: weight below the
// nearest threshold of the rules it is under, until a time (Unix ms, on
// the rules' clock) when the first flag of the rules it is over ends.
type room struct {
	weight int64
	until  int64
}

// roomOf reads a key's room off its evaluation. A rule it is under gives
// the weight up to its limit, or up to the count of its warn_at share;
// one it is over gives the end of its flag. The room is zero when the key
// is at or above a warn_at count (near-limit alerts follow every event), a
// flag has no end, or the evaluation does not cover every rule.
func roomOf(g *limiter.Group, ev *limiter.Evaluation) room {
	if g == nil || len(ev.Rules) != len(g.Rules) {
		return room{}
	}
	rm := room{weight: math.MaxInt64, until: math.MaxInt64}
	for i, st := range ev.Rules {
		r := g.Rules[i]
		if r.Name != st.Rule {
			return room{}
		}
		if st.Over {
			if st.Until <= 0 {
				return room{}
			}
			rm.until = min(rm.until, st.Until)
			continue
		}
		threshold := st.Limit
		if r.WarnAt > 0 {
			threshold = int64(math.Ceil(r.WarnAt * float64(st.Limit)))
		}
		if st.Count >= threshold {
			return room{}
		}
		rm.weight = min(rm.weight, threshold-st.Count)
	}
	return rm
}

// heldMessages lists the messages of records (kept only for AfterStore).
func heldMessages(recs []*msgRec) []jetstream.Msg {
	var msgs []jetstream.Msg
	for _, r := range recs {
		msgs = append(msgs, r.msgs...)
	}
	return msgs
}

// holdFor is how long events may wait under a ruleset: hold, but at most a
// quarter of the shortest window, so that a held event is still in every
// window that counts it when it is sent.
func holdFor(hold time.Duration, rs *limiter.Ruleset) time.Duration {
	if rs == nil {
		return hold
	}
	for _, r := range rs.Rules() {
		hold = min(hold, r.Window/4)
	}
	return hold
}
