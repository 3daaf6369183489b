package event

import "bytes"

// failKind says why the strict parser stopped.
type failKind uint8

const (
	failNone failKind = iota
	failSyntax
	failDeep
)

// kind is the JSON type of a value.
type kind uint8

const (
	kindAbsent kind = iota // the key was not in the object
	kindNull
	kindTrue
	kindFalse
	kindNumber
	kindString
	kindObject
	kindArray
)

// String names the kind as a detail shows it.
func (k kind) String() string {
	switch k {
	case kindNull:
		return "null"
	case kindTrue, kindFalse:
		return "boolean"
	case kindNumber:
		return "number"
	case kindString:
		return "string"
	case kindObject:
		return "object"
	case kindArray:
		return "array"
	}
	return "nothing"
}

// Flags of a scanned value.
const (
	flagEscaped  uint8 = 1 << iota // string: holds a backslash escape
	flagNonASCII                   // string: holds a byte >= 0x80
	flagNotInt                     // number: has a fraction or an exponent
)

// parser is a strict JSON scanner over one payload, after RFC 8259. It does
// not allocate and never reads out of bounds. Its methods return false on
// failure, and the first failure is recorded in fail and failAt.
type parser struct {
	b        []byte
	i        int
	depth    int
	maxDepth int
	fail     failKind
	failAt   int
}

// syntaxErrorAt records a syntax error at byte at and returns false.
func (p *parser) syntaxErrorAt(at int) bool {
	if p.fail == failNone {
		p.fail, p.failAt = failSyntax, at
	}
	return false
}

// isSpace reports whether c is JSON whitespace.
func isSpace(c byte) bool {
	return c == ' ' || c == '\n' || c == '\r' || c == '\t'
}

// skipSpace returns the index of the first non-whitespace byte at or after i.
func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// ws skips whitespace.
func (p *parser) ws() {
	p.i = skipSpace(p.b, p.i)
}

// at reports whether the byte at p.i is c.
func (p *parser) at(c byte) bool {
	return p.i < len(p.b) && p.b[p.i] == c
}

// enter opens an object or array, enforcing maxDepth.
func (p *parser) enter() bool {
	p.depth++
	if p.depth > p.maxDepth {
		if p.fail == failNone {
			p.fail, p.failAt = failDeep, p.i
		}
		return false
	}
	p.i++
	p.ws()
	return true
}

// value scans any JSON value at p.i and returns its kind and flags.
func (p *parser) value() (kind, uint8, bool) {
	if p.i >= len(p.b) {
		return kindAbsent, 0, p.syntaxErrorAt(p.i)
	}
	switch c := p.b[p.i]; {
	case c == '"':
		fl, ok := p.str()
		return kindString, fl, ok
	case c == '{':
		return kindObject, 0, p.object(nil)
	case c == '[':
		return kindArray, 0, p.array()
	case c == 't':
		return kindTrue, 0, p.literal("true")
	case c == 'f':
		return kindFalse, 0, p.literal("false")
	case c == 'n':
		return kindNull, 0, p.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		fl, ok := p.number()
		return kindNumber, fl, ok
	}
	return kindAbsent, 0, p.syntaxErrorAt(p.i)
}

// array scans an array at p.i, skipping its elements.
func (p *parser) array() bool {
	if !p.enter() {
		return false
	}
	if p.at(']') {
		p.i++
		p.depth--
		return true
	}
	for {
		if _, _, ok := p.value(); !ok {
			return false
		}
		p.ws()
		switch {
		case p.at(','):
			p.i++
			p.ws()
		case p.at(']'):
			p.i++
			p.depth--
			return true
		default:
			return p.syntaxErrorAt(p.i)
		}
	}
}

// literal scans word (true, false or null) at p.i.
func (p *parser) literal(word string) bool {
	if len(p.b)-p.i >= len(word) && string(p.b[p.i:p.i+len(word)]) == word {
		p.i += len(word)
		return true
	}
	k := 0
	for p.i+k < len(p.b) && k < len(word) && p.b[p.i+k] == word[k] {
		k++
	}
	return p.syntaxErrorAt(p.i + k)
}

// number scans a number at p.i with the strict JSON grammar.
func (p *parser) number() (uint8, bool) {
	b, i := p.b, p.i
	var fl uint8
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = skipDigits(b, i+1)
	default:
		return 0, p.syntaxErrorAt(i)
	}
	if i < len(b) && b[i] == '.' {
		fl = flagNotInt
		if i++; i >= len(b) || b[i] < '0' || b[i] > '9' {
			return 0, p.syntaxErrorAt(i)
		}
		i = skipDigits(b, i)
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		fl = flagNotInt
		if i++; i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return 0, p.syntaxErrorAt(i)
		}
		i = skipDigits(b, i)
	}
	p.i = i
	return fl, true
}

// skipDigits returns the index of the first non-digit at or after i.
func skipDigits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

// str scans a string at p.i, checking escapes and control characters.
func (p *parser) str() (uint8, bool) {
	b := p.b
	var fl uint8
	i := p.i + 1
	for {
		for i < len(b) && plain(b[i]) {
			i++
		}
		if i >= len(b) {
			return 0, p.syntaxErrorAt(len(b))
		}
		switch c := b[i]; {
		case c == '"':
			p.i = i + 1
			return fl, true
		case c == '\\':
			fl |= flagEscaped
			if i+1 >= len(b) {
				return 0, p.syntaxErrorAt(len(b))
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				for k := i + 2; k < i+6; k++ {
					if k >= len(b) || unhex(b[k]) < 0 {
						return 0, p.syntaxErrorAt(k)
					}
				}
				i += 6
			default:
				return 0, p.syntaxErrorAt(i + 1)
			}
		case c < 0x20:
			return 0, p.syntaxErrorAt(i)
		default: // c >= 0x80
			fl |= flagNonASCII
			i++
		}
	}
}

// plain reports whether c stands for itself inside a JSON string and is ASCII.
func plain(c byte) bool {
	return c >= 0x20 && c < 0x80 && c != '"' && c != '\\'
}

// unhex returns the value of hex digit c, or -1.
func unhex(c byte) rune {
	switch {
	case c >= '0' && c <= '9':
		return rune(c - '0')
	case c >= 'a' && c <= 'f':
		return rune(c - 'a' + 10)
	case c >= 'A' && c <= 'F':
		return rune(c - 'A' + 10)
	}
	return -1
}

// extent finds where the value starting at b[s] ends, with a cheap byte scan
// that tracks only strings and bracket depth and does not check the grammar.
// It is how an array's elements are delimited before they are parsed, so
// that a malformed or too deep element can be rejected alone.
func extent(b []byte, s int) (int, bool) {
	if s >= len(b) {
		return s, false
	}
	switch b[s] {
	case '"':
		return stringEnd(b, s)
	case '}', ']', ',', ':':
		return s, false
	case '{', '[':
	default:
		i := s
		for i < len(b) && !isDelimiter(b[i]) {
			i++
		}
		return i, i > s
	}
	depth := 0
	for i := s; i < len(b); i++ {
		switch b[i] {
		case '"':
			end, ok := stringEnd(b, i)
			if !ok {
				return end, false
			}
			i = end - 1
		case '{', '[':
			depth++
		case '}', ']':
			if depth--; depth == 0 {
				return i + 1, true
			}
		}
	}
	return len(b), false
}

// isDelimiter reports whether c may follow a number or a literal.
func isDelimiter(c byte) bool {
	switch c {
	case ',', ']', '}', '[', '{', '"', ':':
		return true
	}
	return isSpace(c)
}

// stringEnd returns the index after the quote that closes the string opened
// at b[q].
func stringEnd(b []byte, q int) (int, bool) {
	for i := q + 1; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1, true
		}
	}
	return len(b), false
}

// lineEnd returns the index of the first newline at or after i, or len(b).
func lineEnd(b []byte, i int) int {
	if k := bytes.IndexByte(b[i:], '\n'); k >= 0 {
		return i + k
	}
	return len(b)
}
