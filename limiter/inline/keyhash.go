package inline

import (
	"math/bits"
	"strings"
)

// hashFields hashes the values of the fields whose bits are set in m,
// which are present, as denySet.newEntry hashes the values of a key;
// lookupAll folds them into each shape's key hash. The hash of each field
// value is computed once per request, so that the client's hash serves
// both the client and the client|route shapes.
func (q *request) hashFields(seed *hashSeed, m uint8) {
	q.hashed |= m
	for ; m != 0; m &= m - 1 {
		i := uint8(bits.TrailingZeros8(m)) & (numIdx - 1)
		if i == idxMethod {
			q.hashes[i] = q.methodHash(seed)
			continue
		}
		q.hashes[i] = hashValue(seed, q.vals[i])
	}
}

// methodHash hashes the request's method upper-cased, as
// limiter.FieldValue gives it, without allocating for ASCII.
func (q *request) methodHash(seed *hashSeed) uint64 {
	v := q.vals[idxMethod]
	var buf [16]byte
	if len(v) > len(buf) || !isASCII(v) {
		return hashValue(seed, strings.ToUpper(v))
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		buf[i] = c
	}
	return hashBytes(seed, buf[:len(v)])
}

// sameValues reports whether e, of g's shape, holds the request's values
// of that shape.
func (q *request) sameValues(g *group, e *entry) bool {
	if len(e.vals) != len(g.index) {
		return false
	}
	for n, i := range g.index {
		v := q.vals[i&(numIdx-1)]
		if i == idxMethod {
			if !sameMethod(v, e.vals[n]) {
				return false
			}
			continue
		}
		if v != e.vals[n] {
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
	return len(m) == len(upper) && upperHasPrefix(m, upper)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
