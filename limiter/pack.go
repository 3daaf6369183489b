package limiter

import (
	"strconv"
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
