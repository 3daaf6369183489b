package limiter

import (
	"strings"

	"github.com/ratemon/ratemon/internal/keyspace"
	"github.com/ratemon/ratemon/pipeline/event"
)

// LimitKey identifies what a rule counts: the values of the rule's key
// fields in one event, as `field=value` pairs in the rule's key order joined
// by `|`, values escaped by keyspace.Escape. Examples: `client=acme`,
// `ip=10.1.2.3`, `client=acme|route=POST /login`.
type LimitKey string

// Shape is the ordered list of fields a limit key is made of.
type Shape []Field

// String returns the shape as its fields joined by ",", e.g. "client,route".
func (s Shape) String() string {
	parts := make([]string, len(s))
	for i, f := range s {
		parts[i] = string(f)
	}
	return strings.Join(parts, ",")
}

// Equal reports whether two shapes list the same fields in the same order.
func (s Shape) Equal(o Shape) bool {
	if len(s) != len(o) {
		return false
	}
	for i := range s {
		if s[i] != o[i] {
			return false
		}
	}
	return true
}

// FieldValue returns the value of field f in e, the one the limit key uses.
func FieldValue(e *event.Event, f Field) string {
	switch f {
	case FieldClient:
		return e.Client
	case FieldIP:
		return e.IP
	case FieldService:
		return e.Service
	case FieldRoute:
		return e.Route
	case FieldMethod:
		return strings.ToUpper(e.Method)
	}
	return ""
}

// AppendKey appends the limit key of shape for e to dst. ok is false when e
// lacks one of the fields: such an event is not counted by rules of that
// shape.
func AppendKey(dst []byte, shape Shape, e *event.Event) (out []byte, ok bool) {
	for i, f := range shape {
		v := FieldValue(e, f)
		if v == "" {
			return dst, false
		}
		if i > 0 {
			dst = append(dst, '|')
		}
		dst = append(dst, f...)
		dst = append(dst, '=')
		dst = keyspace.AppendEscape(dst, v)
	}
	return dst, true
}

// KeyOf returns the limit key of shape for e; ok is false when e lacks a field.
func KeyOf(shape Shape, e *event.Event) (LimitKey, bool) {
	var buf [128]byte
	b, ok := AppendKey(buf[:0], shape, e)
	if !ok {
		return "", false
	}
	return LimitKey(b), true
}

// KeyFromValues builds a limit key from field values given by name, as the
// HTTP check and the CLI do; ok is false when a field of shape has no value.
func KeyFromValues(shape Shape, values map[Field]string) (LimitKey, bool) {
	var sb strings.Builder
	for i, f := range shape {
		v := values[f]
		if f == FieldMethod {
			v = strings.ToUpper(v)
		}
		if v == "" {
			return "", false
		}
		if i > 0 {
			sb.WriteByte('|')
		}
		sb.WriteString(string(f))
		sb.WriteByte('=')
		sb.WriteString(keyspace.Escape(v))
	}
	return LimitKey(sb.String()), true
}

// ShapeOf parses the shape back from a limit key: the field names before each
// `=`. ok is false when the key is not well formed.
func ShapeOf(k LimitKey) (Shape, bool) {
	s := string(k)
	if s == "" {
		return nil, false
	}
	var shape Shape
	for len(s) > 0 {
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return nil, false
		}
		f := Field(s[:eq])
		if f.Validate() != nil {
			return nil, false
		}
		shape = append(shape, f)
		s = s[eq+1:]
		bar := strings.IndexByte(s, '|')
		if bar < 0 {
			break
		}
		s = s[bar+1:]
	}
	return shape, true
}

// Values splits a limit key into its unescaped field values.
func Values(k LimitKey) map[Field]string {
	out := map[Field]string{}
	for _, part := range strings.Split(string(k), "|") {
		eq := strings.IndexByte(part, '=')
		if eq <= 0 {
			continue
		}
		out[Field(part[:eq])] = keyspace.Unescape(part[eq+1:])
	}
	return out
}
