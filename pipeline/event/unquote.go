package event

import (
	"unicode/utf16"
	"unicode/utf8"
)

// appendUnquoted appends the decoded form of s, the bytes between the quotes
// of a JSON string the parser has accepted, to dst. fl are the string's scan
// flags. Like encoding/json, it turns every invalid UTF-8 byte and every lone
// surrogate escape into U+FFFD. It never reads past s, even if s was not
// checked.
func appendUnquoted(dst, s []byte, fl uint8) []byte {
	if fl&flagEscaped == 0 && (fl&flagNonASCII == 0 || utf8.Valid(s)) {
		return append(dst, s...)
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			var r rune
			r, i = unescape(s, i)
			dst = utf8.AppendRune(dst, r)
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			i++
		default:
			r, size := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && size == 1 {
				dst = utf8.AppendRune(dst, utf8.RuneError)
			} else {
				dst = append(dst, s[i:i+size]...)
			}
			i += size
		}
	}
	return dst
}

// unescape decodes the escape at s[i] (a backslash) and returns the rune and
// the index after the escape. A surrogate pair written as two \u escapes is
// one rune; a lone surrogate is U+FFFD, as in encoding/json.
func unescape(s []byte, i int) (rune, int) {
	switch s[i+1] {
	case 'b':
		return '\b', i + 2
	case 'f':
		return '\f', i + 2
	case 'n':
		return '\n', i + 2
	case 'r':
		return '\r', i + 2
	case 't':
		return '\t', i + 2
	case 'u':
		r := hex4(s, i+2)
		if r < 0 {
			return utf8.RuneError, i + 2
		}
		i += 6
		if !utf16.IsSurrogate(r) {
			return r, i
		}
		if i+1 < len(s) && s[i] == '\\' && s[i+1] == 'u' {
			if dec := utf16.DecodeRune(r, hex4(s, i+2)); dec != utf8.RuneError {
				return dec, i + 6
			}
		}
		return utf8.RuneError, i
	}
	return rune(s[i+1]), i + 2 // '"', '\\' and '/'
}

// hex4 decodes the four hex digits at s[i:], or returns -1.
func hex4(s []byte, i int) rune {
	if i+4 > len(s) {
		return -1
	}
	var r rune
	for _, c := range s[i : i+4] {
		v := unhex(c)
		if v < 0 {
			return -1
		}
		r = r<<4 | v
	}
	return r
}
