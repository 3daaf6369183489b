package inline

import "github.com/ratemon/ratemon/pipeline/event"

// maxSubject is the longest route matched in place; a longer one is
// matched by limiter.Rule.Matches, which may allocate.
const maxSubject = 192

// Field indexes: the position of each field's value in request.vals and
// of its hash in request.hashes, and the digits of shapeCode.
const (
	idxClient  = 1
	idxIP      = 2
	idxService = 3
	idxRoute   = 4
	idxMethod  = 5
	numIdx     = 8 // a power of two above the last index, so that i&(numIdx-1) needs no bounds check
)

// request is an event as a check sees it, prepared once per check. It
// holds the event's strings, never the event: a pointer kept here would
// make every checked event escape to the heap. It is kept small because a
// check zeroes one on every call.
type request struct {
	// vals holds the event's values by field index. The method is as the
	// event gives it, not upper-cased (see methodHash and sameMethod).
	vals    [numIdx]string
	method  string // the event's method, else the route's leading method
	path    string // the route without its leading method
	fast    bool   // method is ASCII and the subject fits: match in place
	present uint8  // bit i set: vals[i] is not ""
	hashed  uint8  // bit i set: hashes[i] holds the hash of vals[i]
	hashes  [numIdx]uint64
}

// init prepares q for e; the fields the daemon hashes are hashed by
// compiled.prepare, which calls it.
func (q *request) init(e *event.Event) {
	// One field at a time: an array literal is built on the stack and
	// copied in 16-byte moves that stall on the 8-byte stores just made.
	// vals[0] and the slots past idxMethod are never written: always "".
	q.vals[idxClient] = e.Client
	q.vals[idxIP] = e.IP
	q.vals[idxService] = e.Service
	q.vals[idxRoute] = e.Route
	q.vals[idxMethod] = e.Method
	q.method, q.path, q.hashed = e.Method, e.Route, 0
	q.present = presentBit(e.Client, idxClient) | presentBit(e.IP, idxIP) | presentBit(e.Service, idxService) |
		presentBit(e.Route, idxRoute) | presentBit(e.Method, idxMethod)
	if n := methodPrefix(q.path); n > 0 {
		if q.method == "" {
			q.method = q.path[:n]
		}
		q.path = trimSpaces(q.path[n+1:])
	}
	q.fast = len(q.method)+1+len(q.path) <= maxSubject && isASCII(q.method)
}

// event rebuilds the event, for the rare paths that need limiter's own
// functions (and may allocate).
func (q *request) event() event.Event {
	return event.Event{Client: q.vals[idxClient], IP: q.vals[idxIP], Service: q.vals[idxService],
		Route: q.vals[idxRoute], Method: q.vals[idxMethod]}
}

// presentBit returns the bit of index i when v is not "", else 0.
func presentBit(v string, i uint8) uint8 {
	if v == "" {
		return 0
	}
	return 1 << i
}

// methodPrefix returns the length of the route's leading method when s
// starts with one and a space, else 0. It is limiter's test, an
// IndexByte of the first space and a check that what precedes it is 1 to
// 16 upper-case letters, done in one pass over at most 17 bytes: a route
// is scanned only as far as a method could reach.
func methodPrefix(s string) int {
	n := 0
	for n < len(s) && n <= 16 && s[n] >= 'A' && s[n] <= 'Z' {
		n++
	}
	if n == 0 || n > 16 || n == len(s) || s[n] != ' ' {
		return 0
	}
	return n
}

// trimSpaces is strings.TrimLeft(s, " ") without its call and set setup.
func trimSpaces(s string) string {
	for len(s) > 0 && s[0] == ' ' {
		s = s[1:]
	}
	return s
}

// appendSubject appends strings.ToUpper(method) + " " + path to dst;
// method is ASCII.
func appendSubject(dst []byte, method, path string) []byte {
	n := len(dst)
	dst = append(append(append(dst, method...), ' '), path...)
	for i := n; i < n+len(method); i++ {
		if c := dst[i]; c >= 'a' && c <= 'z' {
			dst[i] = c - ('a' - 'A')
		}
	}
	return dst
}
