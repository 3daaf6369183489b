package inline

import (
	"hash/maphash"
	"strings"

	"github.com/ratemon/ratemon/limiter"
)

// keyHash returns the hash of the request's limit key of g's shape, as
// denySet.newEntry computes it from the key, without building the key;
// ok is false when the request lacks one of the fields. The hash of each
// field value is computed once per request.
func (q *request) keyHash(seed maphash.Seed, g *group) (uint64, bool) {
	h := g.hash0
	for n, i := range g.index {
		bit := uint8(1) << i
		if q.hashed&bit == 0 {
			v, ok := q.fieldHash(seed, g.shape[n])
			if !ok {
				return 0, false
			}
			q.hashes[i] = v
			q.hashed |= bit
		}
		h = mixHash(h, q.hashes[i])
	}
	return h, true
}

// fieldHash hashes the value of f in the request, as limiter.FieldValue
// gives it (the method upper-cased).
func (q *request) fieldHash(seed maphash.Seed, f limiter.Field) (uint64, bool) {
	if f != limiter.FieldMethod {
		v := q.value(f)
		return maphash.String(seed, v), v != ""
	}
	m := q.rawMethod
	if m == "" {
		return 0, false
	}
	var buf [16]byte
	if len(m) > len(buf) || !isASCII(m) {
		return maphash.String(seed, strings.ToUpper(m)), true
	}
	for i := 0; i < len(m); i++ {
		c := m[i]
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		buf[i] = c
	}
	return maphash.Bytes(seed, buf[:len(m)]), true
}

// sameValues reports whether e, of the given shape, holds the request's
// values of that shape.
func (q *request) sameValues(shape limiter.Shape, e *entry) bool {
	for i, f := range shape {
		if f == limiter.FieldMethod {
			if !sameMethod(q.rawMethod, e.vals[i]) {
				return false
			}
			continue
		}
		if q.value(f) != e.vals[i] {
			return false
		}
	}
	return true
}

// sameMethod reports whether strings.ToUpper(m) == upper without
// allocating for ASCII.
func sameMethod(m, upper string) bool {
	if !isASCII(m) {
		return strings.ToUpper(m) == upper
	}
	if len(m) != len(upper) {
		return false
	}
	for i := 0; i < len(m); i++ {
		c := m[i]
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != upper[i] {
			return false
		}
	}
	return true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
