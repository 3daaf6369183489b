package event

import (
	"strconv"
	"unicode/utf8"
)

// AppendJSON appends the event to dst as a JSON object with the contract's
// field names and returns the extended buffer. client is always written; ts
// only when HasTS, as integer milliseconds; the other strings, status and
// refused only when not empty; weight only when it is not the default 1. It
// allocates nothing beyond growing dst. Invalid UTF-8 is written as U+FFFD.
func (e Event) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"client":`...)
	dst = appendQuoted(dst, e.Client)
	if e.HasTS() {
		dst = append(dst, `,"ts":`...)
		dst = strconv.AppendInt(dst, e.TS, 10)
	}
	dst = appendOptional(dst, `,"service":`, e.Service)
	dst = appendOptional(dst, `,"route":`, e.Route)
	dst = appendOptional(dst, `,"method":`, e.Method)
	dst = appendOptional(dst, `,"ip":`, e.IP)
	dst = appendOptional(dst, `,"id":`, e.ID)
	if e.Status != 0 {
		dst = append(dst, `,"status":`...)
		dst = strconv.AppendInt(dst, int64(e.Status), 10)
	}
	if e.Weight != 1 {
		dst = append(dst, `,"weight":`...)
		dst = strconv.AppendInt(dst, e.Weight, 10)
	}
	if e.Refused {
		dst = append(dst, `,"refused":true`...)
	}
	return append(dst, '}')
}

// MarshalJSON implements json.Marshaler with AppendJSON.
func (e Event) MarshalJSON() ([]byte, error) {
	return e.AppendJSON(make([]byte, 0, 128)), nil
}

// appendOptional appends key and the quoted v when v is not empty.
func appendOptional(dst []byte, key, v string) []byte {
	if v == "" {
		return dst
	}
	return appendQuoted(append(dst, key...), v)
}

const hexDigits = "0123456789abcdef"

// appendQuoted appends s as a JSON string. It escapes '"', '\\', control
// characters, U+2028 and U+2029, and writes invalid UTF-8 as \ufffd.
func appendQuoted(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
