package event

import (
	"bytes"
	"fmt"
)

// scratchBytes is the stack buffer in which Decode assembles the strings of
// one event before their single allocation.
const scratchBytes = 512

// Decode parses a payload and calls emit for every valid event and reject for
// every bad element, in payload order. Either function may be nil.
//
// A payload whose first non-space byte is '[' is a JSON array of events.
// Otherwise it is a sequence of JSON values: one object, NDJSON, or
// pretty-printed objects. Decode never panics and never stops at a bad
// element: one bad NDJSON line or array element is rejected alone. An array
// whose own structure is broken (brackets, commas, trailing data) is rejected
// as a whole, with one Reject of Index 0.
//
// In a sequence, a value that fails to parse is rejected from its start to
// the end of the line on which the error is, and decoding resumes on the
// next line; the package documentation has the details. The time Decode
// takes is linear in the size of the payload, whatever the payload.
func Decode(payload []byte, lim Limits, emit func(Event), reject func(Reject)) {
	var sb [scratchBytes]byte
	scratch := sb[:0]
	d := decoder{b: payload, lim: lim.normalized(), emit: emit, reject: reject}
	if len(payload) > d.lim.MaxPayloadBytes {
		d.rejectRaw(0, ReasonTooLarge, fmt.Sprintf("payload: %d bytes, limit %d", len(payload), d.lim.MaxPayloadBytes), payload)
		return
	}
	i := skipSpace(payload, 0)
	if i == len(payload) {
		return
	}
	if payload[i] == '[' {
		d.array(i, scratch)
		return
	}
	if ndjson(payload, i) {
		d.lines(i, scratch)
		return
	}
	for idx := 0; i < len(payload); idx++ {
		i, scratch = d.element(i, idx, true, scratch)
		i = skipSpace(payload, i)
	}
}

// ndjson reports whether the sequence starting at b[i] is NDJSON: its first
// value is complete on its first line. Then every line is decoded on its
// own, so that a line missing its closing bracket cannot take the next
// line's event with it. A pretty-printed object, whose first line is not a
// complete value, is decoded as a sequence of values spanning lines.
func ndjson(b []byte, i int) bool {
	end, ok := extent(b, i)
	return ok && bytes.IndexByte(b[i:end], '\n') < 0
}

// lines decodes NDJSON from b[i]: each non-blank line is a sequence of its
// own, and element indexes run across lines.
func (d *decoder) lines(i int, scratch []byte) {
	idx := 0
	for i < len(d.b) {
		end := lineEnd(d.b, i)
		sub := decoder{b: d.b[i:end], lim: d.lim, emit: d.emit, reject: d.reject}
		for j := skipSpace(sub.b, 0); j < len(sub.b); idx++ {
			j, scratch = sub.element(j, idx, true, scratch)
			j = skipSpace(sub.b, j)
		}
		i = skipSpace(d.b, min(end+1, len(d.b)))
	}
}

// DecodeAll is Decode collecting into slices, for tests and the CLI.
func DecodeAll(payload []byte, lim Limits) ([]Event, []Reject) {
	var evs []Event
	var rejs []Reject
	Decode(payload, lim,
		func(e Event) { evs = append(evs, e) },
		func(r Reject) { rejs = append(rejs, r) })
	return evs, rejs
}

// decoder is the state of one Decode call. It lives on Decode's stack and
// its methods never store into it; the scratch buffer is passed along
// instead, so that it stays on the stack too.
type decoder struct {
	b      []byte
	lim    Limits
	emit   func(Event)
	reject func(Reject)
}

// rejectRaw reports element idx as rejected.
func (d *decoder) rejectRaw(idx int, reason RejectReason, detail string, raw []byte) {
	if d.reject != nil {
		d.reject(newReject(idx, reason, detail, raw))
	}
}

// array decodes the array that opens at b[a]. A first pass checks the
// array's own structure with a byte scan, so that nothing is emitted from an
// array that will be rejected as a whole; the second decodes the elements.
func (d *decoder) array(a int, scratch []byte) {
	b := d.b
	if at, ok := frameArray(b, a); !ok {
		d.rejectRaw(0, ReasonInvalidJSON, "array: "+syntaxDetail(b, at, 0), b)
		return
	}
	i := skipSpace(b, a+1)
	for idx := 0; i < len(b) && b[i] != ']'; idx++ {
		i, scratch = d.element(i, idx, false, scratch)
		i = skipSpace(b, i)
		if i >= len(b) || b[i] != ',' {
			return
		}
		i = skipSpace(b, i+1)
	}
}

// frameArray checks the structure of the array that opens at b[a]: elements
// that a byte scan can delimit, separated by commas, closed, and followed by
// nothing but whitespace. It returns where the structure breaks.
func frameArray(b []byte, a int) (int, bool) {
	i := skipSpace(b, a+1)
	if i < len(b) && b[i] == ']' {
		i = skipSpace(b, i+1)
		return i, i == len(b)
	}
	for {
		end, ok := extent(b, i)
		if !ok {
			return end, false
		}
		i = skipSpace(b, end)
		switch {
		case i < len(b) && b[i] == ',':
			i = skipSpace(b, i+1)
		case i < len(b) && b[i] == ']':
			i = skipSpace(b, i+1)
			return i, i == len(b)
		default:
			return i, false
		}
	}
}

// element decodes the value at b[s], element idx of the payload, and reports
// it. It returns where the next element may start, and scratch.
func (d *decoder) element(s, idx int, lines bool, scratch []byte) (int, []byte) {
	b := d.b
	p := parser{b: b, i: s, maxDepth: d.lim.MaxDepth}
	if b[s] == '{' {
		var f fields
		if !p.object(&f) {
			return d.failed(&p, s, idx, lines), scratch
		}
		ev, scratch, err := build(b, &f, d.lim, scratch)
		switch {
		case err != nil:
			d.rejectRaw(idx, err.Reason, err.Detail, b[s:p.i])
		case d.emit != nil:
			d.emit(ev)
		}
		return p.i, scratch
	}
	k, _, ok := p.value()
	if !ok {
		return d.failed(&p, s, idx, lines), scratch
	}
	// A number or literal must end at a delimiter: "12ab" is one bad
	// element, not the number 12 followed by garbage.
	if p.i < len(b) && !isDelimiter(b[p.i]) {
		p.syntaxErrorAt(p.i)
		return d.failed(&p, s, idx, lines), scratch
	}
	d.rejectRaw(idx, ReasonNotObject, "want object, got "+k.String(), b[s:p.i])
	return p.i, scratch
}

// failed rejects the element at b[s] that p could not parse, and returns
// where decoding resumes: in an array, after the element as the byte scan
// of frameArray delimited it; in a sequence, after the line of the error.
func (d *decoder) failed(p *parser, s, idx int, lines bool) int {
	b := d.b
	reason := ReasonInvalidJSON
	detail := syntaxDetail(b, p.failAt, s)
	if p.fail == failDeep {
		reason = ReasonTooDeep
		detail = fmt.Sprintf("nesting deeper than %d", d.lim.MaxDepth)
	}
	var stop, next int
	if lines {
		stop, next = resync(b, s, p)
	} else {
		end, ok := extent(b, s)
		if !ok {
			end = len(b) // unreachable after frameArray; end the array
		}
		stop, next = end, end
	}
	d.rejectRaw(idx, reason, detail, trimSpaceRight(b[s:stop]))
	return next
}

// resync decides, for a value of a sequence that starts at b[s] and failed
// to parse, where its reject stops and where decoding resumes. The reject
// runs to the end of the line on which the parser found the error, and
// decoding resumes on the next line. One exception keeps an NDJSON line that
// lacks its closing bracket from swallowing the next event: when the error
// is a '{' that opens a later line, the reject stops before that line and
// decoding resumes at the '{'.
//
// Either way decoding resumes past every byte the parser read, except the
// blank start of the line of that '{', so a sequence decodes in time linear
// in its size however it fails: no byte is parsed twice over.
func resync(b []byte, s int, p *parser) (stop, next int) {
	at := min(p.failAt, len(b))
	if p.fail == failSyntax && at < len(b) && b[at] == '{' {
		if nl := bytes.LastIndexByte(b[s:at], '\n'); nl >= 0 && len(trimSpaceRight(b[s+nl+1:at])) == 0 {
			return s + nl, s + nl + 1
		}
	}
	stop = lineEnd(b, at)
	return stop, min(stop+1, len(b))
}

// trimSpaceRight drops trailing JSON whitespace, such as the \r of a CRLF line.
func trimSpaceRight(b []byte) []byte {
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}
