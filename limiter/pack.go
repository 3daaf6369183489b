package limiter

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// The packed forms of window.lua's arguments. A message whose events all
// count for every rule of the key's group and carry no id (compact) sends
// its events as one string; a call whose messages are all compact sends
// all of them, sequences included, as one string (packMessages). Redis
// then makes one Lua string where it would make three per message and two
// per event, and the script reads them with string.byte instead of
// tonumber.

// Bounds of the packed forms: a time in 6 bytes, a weight and an event
// count in 3, a sequence in 6.
const (
	packedEventBytes = 9
	packedHeadBytes  = 9 // a message's sequence and event count
	maxPackedTS      = 1<<48 - 1
	maxPackedWeight  = 1<<24 - 1
	maxPackedSeq     = 1<<48 - 1
	maxPackedEvents  = 1<<24 - 1
)

// compact reports whether every event counts for every rule of its group
// (mask all), carries no id, and fits the packed form: window.lua then
// takes them as ts and weight only, from one argument (packEvents).
func compact(evs []Event, all uint64) bool {
	for _, e := range evs {
		if e.Mask&all != all || e.ID != "" || e.TS < 0 || e.TS > maxPackedTS || e.Weight < 0 || e.Weight > maxPackedWeight {
			return false
		}
	}
	return true
}

// packable reports whether the sequences and event counts of compact
// messages fit packMessages.
func packable(msgs []Message) bool {
	for _, m := range msgs {
		if m.Seq > maxPackedSeq || len(m.Events) > maxPackedEvents {
			return false
		}
	}
	return true
}

// packEvents encodes events of the short form as one string, 9 bytes per
// event: the time in 6 bytes and the weight in 3, little-endian.
func packEvents(evs []Event) string {
	return string(appendEvents(make([]byte, 0, packedEventBytes*len(evs)), evs))
}

func appendEvents(b []byte, evs []Event) []byte {
	for _, e := range evs {
		ts, w := uint64(e.TS), uint64(e.Weight)
		b = append(b, byte(ts), byte(ts>>8), byte(ts>>16), byte(ts>>24), byte(ts>>32), byte(ts>>40),
			byte(w), byte(w>>8), byte(w>>16))
	}
	return b
}

// packMessages encodes compact messages as one string: per message its
// sequence in 6 bytes and its event count in 3, then its events as
// packEvents does, all little-endian.
func packMessages(msgs []Message) string {
	n := 0
	for _, m := range msgs {
		n += packedHeadBytes + packedEventBytes*len(m.Events)
	}
	b := make([]byte, 0, n)
	for _, m := range msgs {
		q, c := m.Seq, uint64(len(m.Events))
		b = append(b, byte(q), byte(q>>8), byte(q>>16), byte(q>>24), byte(q>>32), byte(q>>40),
			byte(c), byte(c>>8), byte(c>>16))
		b = appendEvents(b, m.Events)
	}
	return string(b)
}

// seenMember is the seen-set member a call of msgs records when every
// message is new: their sequences (0: none) joined by ",", as window.lua
// would join them.
func seenMember(msgs []Message) string {
	b := make([]byte, 0, 8*len(msgs))
	for _, m := range msgs {
		if m.Seq == 0 {
			continue
		}
		if len(b) > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendUint(b, m.Seq, 10)
	}
	return string(b)
}

// seenRanges is the seen-set member of the ranges form: the messages'
// sequences (0: none) sorted, consecutive ones joined as "first-last",
// separated by ",". A hot key's call holds most of the messages of
// several batches, so its thousands of sequences make a few ranges.
// ok is false when a sequence comes twice: such a call goes in the form
// with each message's events, which counts the copy once.
//
// It allocates the member only (the sequences of a call of up to 64
// messages are sorted on the stack): it is built for every call of the
// flusher's, thousands a second.
func seenRanges(msgs []Message) (member string, ok bool) {
	var stack [64]uint64
	seqs := stack[:0]
	for _, m := range msgs {
		if m.Seq != 0 {
			seqs = append(seqs, m.Seq)
		}
	}
	if len(seqs) == 0 {
		return "", true
	}
	slices.Sort(seqs)
	var sb strings.Builder
	var num [20]byte
	// At most every sequence, each with as many digits as the largest and
	// a separator.
	sb.Grow(len(seqs) * (len(strconv.AppendUint(num[:0], seqs[len(seqs)-1], 10)) + 1))
	for i := 0; i < len(seqs); {
		j := i
		for j+1 < len(seqs) && seqs[j+1] <= seqs[j]+1 {
			if seqs[j+1] == seqs[j] {
				return "", false
			}
			j++
		}
		if sb.Len() > 0 {
			sb.WriteByte(',')
		}
		sb.Write(strconv.AppendUint(num[:0], seqs[i], 10))
		if j > i {
			sb.WriteByte('-')
			sb.Write(strconv.AppendUint(num[:0], seqs[j], 10))
		}
		i = j + 1
	}
	return sb.String(), true
}

// Bounds of one window-log entry (SPAN and PAIRS in lib.lua): its
// milliseconds span at most logSpanMS, and it holds at most logPairs of
// them.
const (
	logSpanMS = 1000
	logPairs  = 256
)

// packRuns builds the log entries of a call whose messages are all
// compact, for window.lua's append when every message is new: the events
// summed per millisecond, in order, cut into entries as the script's
// log_pairs would cut them, each encoded as the log stores it
// (appendEntry). The script writes them to each rule's log as they are,
// without a step per event, when none is late, out of the window or
// before the rule's count boundary; otherwise it counts the messages
// themselves.
//
// Layout, little-endian: the oldest time (6 bytes), the newest (6), the
// total weight (6), the number of entries (3); then per entry its id time
// (its newest, 6 bytes), the length of its body (3) and the body. nil when
// there is no event.
func packRuns(msgs []Message) []byte {
	n := 0
	for _, m := range msgs {
		n += len(m.Events)
	}
	if n == 0 {
		return nil
	}
	pairs := make([]msWeight, 0, n)
	for _, m := range msgs {
		for _, e := range m.Events {
			pairs = append(pairs, msWeight{e.TS, e.Weight})
		}
	}
	slices.SortFunc(pairs, func(a, b msWeight) int { return cmp.Compare(a.ts, b.ts) })
	// Sum per millisecond, in place.
	k := 0
	var total int64
	for _, e := range pairs {
		total += e.w
		if k > 0 && pairs[k-1].ts == e.ts {
			pairs[k-1].w += e.w
			continue
		}
		pairs[k] = e
		k++
	}
	pairs = pairs[:k]
	b := make([]byte, 0, 21+16*(1+len(pairs)/logPairs)+8*len(pairs))
	b = appendUint(b, uint64(pairs[0].ts), 6)
	b = appendUint(b, uint64(pairs[len(pairs)-1].ts), 6)
	b = appendUint(b, uint64(total), 6)
	countAt := len(b)
	b = append(b, 0, 0, 0)
	entries := 0
	for i := 0; i < len(pairs); {
		j := i
		for j+1 < len(pairs) && pairs[j+1].ts-pairs[i].ts <= logSpanMS && j+1-i < logPairs {
			j++
		}
		m := pairs[j].ts
		b = appendUint(b, uint64(m), 6)
		lenAt := len(b)
		b = append(b, 0, 0, 0)
		b = appendEntry(b, m, pairs[i:j+1])
		putUint(b[lenAt:], uint64(len(b)-lenAt-3), 3)
		entries++
		i = j + 1
	}
	putUint(b[countAt:], uint64(entries), 3)
	return b
}

// appendEntry appends the body of a log entry with id time m holding
// pairs (ascending, within logSpanMS of m): their total weight (6 bytes),
// then per pair, oldest first, two bytes x = (m - ts) + 1024 * w when its
// weight w is 1 to 63, or x = m - ts followed by the weight in 6 bytes.
// lib.lua reads it (entry_pairs).
func appendEntry(b []byte, m int64, pairs []msWeight) []byte {
	var total int64
	for _, p := range pairs {
		total += p.w
	}
	b = appendUint(b, uint64(total), 6)
	for _, p := range pairs {
		d := uint64(m - p.ts)
		if p.w >= 1 && p.w <= 63 {
			b = appendUint(b, d+1024*uint64(p.w), 2)
			continue
		}
		b = appendUint(b, d, 2)
		b = appendUint(b, uint64(p.w), 6)
	}
	return b
}

// msWeight is the weight of one millisecond ts of a log entry: packRuns
// sorts and sums a call's events as these, a third of an Event's size.
type msWeight struct{ ts, w int64 }

// appendUint appends the n low bytes of x, little-endian.
func appendUint(b []byte, x uint64, n int) []byte {
	for i := range n {
		b = append(b, byte(x>>(8*i)))
	}
	return b
}

// putUint writes the n low bytes of x into b, little-endian.
func putUint(b []byte, x uint64, n int) {
	for i := range n {
		b[i] = byte(x >> (8 * i))
	}
}
