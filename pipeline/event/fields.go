package event

import "time"

// field is a known field of an event. The order of the constants is the order
// in which build checks them, so it decides which reason wins when an object
// has several problems.
type field int8

const (
	fClient field = iota
	fTS
	fService
	fRoute
	fMethod
	fIP
	fID
	fStatus
	fWeight
	fRefused
	nFields
	fUnknown field = -1
)

// String returns the field's JSON name.
func (f field) String() string {
	switch f {
	case fClient:
		return "client"
	case fTS:
		return "ts"
	case fService:
		return "service"
	case fRoute:
		return "route"
	case fMethod:
		return "method"
	case fIP:
		return "ip"
	case fID:
		return "id"
	case fStatus:
		return "status"
	case fWeight:
		return "weight"
	case fRefused:
		return "refused"
	}
	return "unknown"
}

// maxEscapedKey is the longest raw key that can still spell a known field
// with escapes: "refused" as seven \uXXXX escapes.
const maxEscapedKey = 7 * 6

// lookup returns the field named by key, the raw bytes between the quotes of
// an object key. Keys match exactly, after unescaping.
func lookup(key []byte, fl uint8) field {
	if fl&flagEscaped != 0 {
		if len(key) > maxEscapedKey {
			return fUnknown
		}
		var buf [3 * maxEscapedKey]byte // an invalid byte can grow to 3
		key = appendUnquoted(buf[:0], key, fl)
	}
	switch string(key) {
	case "client":
		return fClient
	case "ts":
		return fTS
	case "service":
		return fService
	case "route":
		return fRoute
	case "method":
		return fMethod
	case "ip":
		return fIP
	case "id":
		return fID
	case "status":
		return fStatus
	case "weight":
		return fWeight
	case "refused":
		return fRefused
	}
	return fUnknown
}

// token is where the value of a known field sits in the payload; for
// duplicate keys the last one wins.
type token struct {
	kind       kind
	flags      uint8
	start, end int
}

// fields holds one token per known field of an object.
type fields [nFields]token

// object scans an object at p.i. With f set, it records the value of every
// known field in f; unknown fields are checked and skipped.
func (p *parser) object(f *fields) bool {
	if !p.enter() {
		return false
	}
	if p.at('}') {
		p.i++
		p.depth--
		return true
	}
	for {
		if !p.at('"') {
			return p.syntaxErrorAt(p.i)
		}
		ks := p.i
		kfl, ok := p.str()
		if !ok {
			return false
		}
		id := fUnknown
		if f != nil {
			id = lookup(p.b[ks+1:p.i-1], kfl)
		}
		p.ws()
		if !p.at(':') {
			return p.syntaxErrorAt(p.i)
		}
		p.i++
		p.ws()
		vs := p.i
		k, vfl, ok := p.value()
		if !ok {
			return false
		}
		if id != fUnknown {
			f[id] = token{kind: k, flags: vfl, start: vs, end: p.i}
		}
		p.ws()
		switch {
		case p.at(','):
			p.i++
			p.ws()
		case p.at('}'):
			p.i++
			p.depth--
			return true
		default:
			return p.syntaxErrorAt(p.i)
		}
	}
}

// build checks the fields of one object against the contract and makes the
// Event. It decodes the kept strings into scratch and converts them with one
// allocation; it returns scratch, grown or not, for the next element.
func build(b []byte, f *fields, lim Limits, scratch []byte) (Event, []byte, *DecodeError) {
	ev := Event{Weight: 1}
	buf := scratch[:0]
	var spans [nFields][2]int
	var err *DecodeError
	for id := fClient; id < nFields; id++ {
		t := &f[id]
		switch id {
		case fTS:
			ev.TS, err = tsValue(b, t)
		case fStatus:
			ev.Status, err = statusValue(b, t)
		case fWeight:
			ev.Weight, err = weightValue(b, t)
		case fRefused:
			ev.Refused, err = refusedValue(t)
		default:
			lo := len(buf)
			buf, err = appendField(buf, b, id, t, lim.MaxFieldBytes)
			spans[id] = [2]int{lo, len(buf)}
			if id == fClient && err == nil && len(buf) == lo {
				err = &DecodeError{Reason: ReasonMissingClient, Detail: `client: required, got ""`}
			}
		}
		if err != nil {
			return Event{}, buf, err
		}
	}
	all := string(buf)
	ev.Client = all[spans[fClient][0]:spans[fClient][1]]
	ev.Service = all[spans[fService][0]:spans[fService][1]]
	ev.Route = all[spans[fRoute][0]:spans[fRoute][1]]
	ev.Method = all[spans[fMethod][0]:spans[fMethod][1]]
	ev.IP = all[spans[fIP][0]:spans[fIP][1]]
	ev.ID = all[spans[fID][0]:spans[fID][1]]
	return ev, buf, nil
}

// appendField appends the decoded string of field id to buf.
func appendField(buf, b []byte, id field, t *token, limit int) ([]byte, *DecodeError) {
	switch t.kind {
	case kindString:
	case kindAbsent, kindNull:
		if id == fClient {
			return buf, &DecodeError{Reason: ReasonMissingClient, Detail: "client: required, got " + t.kind.String()}
		}
		return buf, nil
	default:
		return buf, &DecodeError{Reason: ReasonBadField, Detail: id.String() + ": want string, got " + t.kind.String()}
	}
	s := b[t.start+1 : t.end-1]
	if t.flags == 0 && len(s) > limit {
		return buf, &DecodeError{Reason: ReasonFieldTooLong, Detail: detailTooLong(id.String(), len(s), limit)}
	}
	lo := len(buf)
	buf = appendUnquoted(buf, s, t.flags)
	if n := len(buf) - lo; n > limit {
		return buf[:lo], &DecodeError{Reason: ReasonFieldTooLong, Detail: detailTooLong(id.String(), n, limit)}
	}
	return buf, nil
}

// tsValue interprets ts: absent or null is 0, else integer milliseconds or an
// RFC 3339 string, truncated to the millisecond.
func tsValue(b []byte, t *token) (int64, *DecodeError) {
	raw := b[t.start:t.end]
	switch t.kind {
	case kindAbsent, kindNull:
		return 0, nil
	case kindNumber:
		if t.flags&flagNotInt != 0 {
			break
		}
		if v, ok := parseInt(raw); ok && v >= 1 && v <= maxTS {
			return v, nil
		}
		return 0, &DecodeError{Reason: ReasonBadTS, Detail: detailTSRange(got(raw))}
	case kindString:
		var tmp [64]byte
		s := appendUnquoted(tmp[:0], raw[1:len(raw)-1], t.flags)
		tm, err := time.Parse(time.RFC3339Nano, string(s))
		if err != nil {
			break
		}
		if ms := tm.UnixMilli(); ms >= 1 && ms <= maxTS {
			return ms, nil
		}
		return 0, &DecodeError{Reason: ReasonBadTS, Detail: detailTSRange(got(raw))}
	}
	return 0, &DecodeError{Reason: ReasonBadTS, Detail: detailTS(raw)}
}

// statusValue interprets status: absent or null is 0, else an integer 0..999.
func statusValue(b []byte, t *token) (int, *DecodeError) {
	raw := b[t.start:t.end]
	switch t.kind {
	case kindAbsent, kindNull:
		return 0, nil
	case kindNumber:
		if v, ok := parseInt(raw); ok && t.flags&flagNotInt == 0 && v >= 0 && v <= maxStatus {
			return int(v), nil
		}
	}
	return 0, &DecodeError{Reason: ReasonBadStatus, Detail: detailStatus(got(raw))}
}

// weightValue interprets weight: absent or null is 1, else an integer
// 1..1000000.
func weightValue(b []byte, t *token) (int64, *DecodeError) {
	raw := b[t.start:t.end]
	switch t.kind {
	case kindAbsent, kindNull:
		return 1, nil
	case kindNumber:
		if v, ok := parseInt(raw); ok && t.flags&flagNotInt == 0 && v >= 1 && v <= maxWeight {
			return v, nil
		}
	}
	return 0, &DecodeError{Reason: ReasonBadWeight, Detail: detailWeight(got(raw))}
}

// refusedValue interprets refused: absent or null is false.
func refusedValue(t *token) (bool, *DecodeError) {
	switch t.kind {
	case kindAbsent, kindNull, kindFalse:
		return false, nil
	case kindTrue:
		return true, nil
	}
	return false, &DecodeError{Reason: ReasonBadField, Detail: "refused: want boolean, got " + t.kind.String()}
}

// parseInt parses a JSON integer. Every integer of more than 18 digits is
// out of every range of the contract, so it reports false for those rather
// than handle overflow.
func parseInt(raw []byte) (int64, bool) {
	neg := len(raw) > 0 && raw[0] == '-'
	if neg {
		raw = raw[1:]
	}
	if len(raw) == 0 || len(raw) > 18 {
		return 0, false
	}
	var v int64
	for _, c := range raw {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	if neg {
		v = -v
	}
	return v, true
}
