package keyspace

import (
	"strings"
)

const hexDigits = "0123456789ABCDEF"

// needsEscape reports whether b must be percent-encoded inside a limit key value.
func needsEscape(b byte) bool {
	switch b {
	case '{', '}', '|', '=', '%':
		return true
	}
	return b < 0x20 || b == 0x7f
}

// Escape percent-encodes the characters `{ } | = %` and the ASCII control
// characters of a limit key value, so that the value cannot end a hash tag or
// forge a separator. Every other byte, including UTF-8, is kept as is.
func Escape(v string) string {
	n := 0
	for i := 0; i < len(v); i++ {
		if needsEscape(v[i]) {
			n++
		}
	}
	if n == 0 {
		return v
	}
	var sb strings.Builder
	sb.Grow(len(v) + 2*n)
	for i := 0; i < len(v); i++ {
		b := v[i]
		if needsEscape(b) {
			sb.WriteByte('%')
			sb.WriteByte(hexDigits[b>>4])
			sb.WriteByte(hexDigits[b&0x0f])
			continue
		}
		sb.WriteByte(b)
	}
	return sb.String()
}

// AppendEscape appends the escaped form of v to dst; it is Escape without an
// allocation when dst has room.
func AppendEscape(dst []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		b := v[i]
		if needsEscape(b) {
			dst = append(dst, '%', hexDigits[b>>4], hexDigits[b&0x0f])
			continue
		}
		dst = append(dst, b)
	}
	return dst
}

// Unescape reverses Escape. Malformed escapes are kept literally.
func Unescape(v string) string {
	if !strings.Contains(v, "%") {
		return v
	}
	var sb strings.Builder
	sb.Grow(len(v))
	for i := 0; i < len(v); i++ {
		if v[i] == '%' && i+2 < len(v) {
			hi, ok1 := unhex(v[i+1])
			lo, ok2 := unhex(v[i+2])
			if ok1 && ok2 {
				sb.WriteByte(hi<<4 | lo)
				i += 2
				continue
			}
		}
		sb.WriteByte(v[i])
	}
	return sb.String()
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}
