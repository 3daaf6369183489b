package event

import (
	"bytes"
	"fmt"
	"strings"
)

// RejectReason is why an element of a payload was refused. The values are a
// fixed set, so they are safe as metric label values.
type RejectReason string

// The reasons an element is rejected. A field with a reason of its own (ts,
// status, weight) uses it for every problem, wrong JSON type included;
// ReasonBadField covers the wrong JSON type of the others.
const (
	// ReasonInvalidJSON means the element is not valid JSON.
	ReasonInvalidJSON RejectReason = "invalid_json"
	// ReasonNotObject means the element is valid JSON but not an object.
	ReasonNotObject RejectReason = "not_object"
	// ReasonMissingClient means client is absent, null or "".
	ReasonMissingClient RejectReason = "missing_client"
	// ReasonBadTS means ts is not a timestamp in range.
	ReasonBadTS RejectReason = "bad_ts"
	// ReasonBadWeight means weight is not an integer in 1..1000000.
	ReasonBadWeight RejectReason = "bad_weight"
	// ReasonBadStatus means status is not an integer in 0..999.
	ReasonBadStatus RejectReason = "bad_status"
	// ReasonBadField means a known field has the wrong JSON type.
	ReasonBadField RejectReason = "bad_field"
	// ReasonFieldTooLong means a string field is longer than Limits.MaxFieldBytes.
	ReasonFieldTooLong RejectReason = "field_too_long"
	// ReasonTooLarge means the payload is longer than Limits.MaxPayloadBytes.
	ReasonTooLarge RejectReason = "too_large"
	// ReasonTooDeep means the element nests deeper than Limits.MaxDepth.
	ReasonTooDeep RejectReason = "too_deep"
)

// Reasons lists every RejectReason, for pre-creating metric label values. The
// slice is new on every call.
func Reasons() []RejectReason {
	return []RejectReason{
		ReasonInvalidJSON, ReasonNotObject, ReasonMissingClient, ReasonBadTS,
		ReasonBadWeight, ReasonBadStatus, ReasonBadField, ReasonFieldTooLong,
		ReasonTooLarge, ReasonTooDeep,
	}
}

// Reject is one element of a payload that could not be used.
type Reject struct {
	// Index is the position of the element in the payload, from 0: the array
	// index, or the ordinal of the value among the payload's top-level values
	// (for NDJSON, among its non-blank lines).
	Index int
	// Reason is why the element was refused.
	Reason RejectReason
	// Detail is lower-case, human-readable and names the field when the
	// problem is in one, e.g.
	// `ts: want integer unix milliseconds or RFC 3339 string, got "yesterday"`.
	Detail string
	// Raw is the element's bytes, truncated to 4096 bytes. It is a copy, safe
	// to keep after Decode returns.
	Raw []byte
}

// DecodeError describes a rejected element or an invalid Event.
type DecodeError struct {
	// Reason is the bounded reason, as in Reject.
	Reason RejectReason
	// Detail is lower-case and names the field, as in Reject.
	Detail string
}

// Error returns "<reason>: <detail>".
func (e *DecodeError) Error() string {
	return string(e.Reason) + ": " + e.Detail
}

// newReject builds a Reject, copying at most maxRawBytes of raw.
func newReject(idx int, reason RejectReason, detail string, raw []byte) Reject {
	return Reject{
		Index:  idx,
		Reason: reason,
		Detail: detail,
		Raw:    bytes.Clone(raw[:min(len(raw), maxRawBytes)]),
	}
}

// maxGotBytes bounds how much of an offending value a detail quotes.
const maxGotBytes = 64

// got renders a raw JSON value for a detail: truncated, on one line, valid
// UTF-8.
func got(raw []byte) string {
	s := string(raw[:min(len(raw), maxGotBytes)])
	if len(raw) > maxGotBytes {
		s += "..."
	}
	s = strings.Map(func(r rune) rune {
		if r < 0x20 {
			return ' '
		}
		return r
	}, s)
	return strings.ToValidUTF8(s, "\uFFFD")
}

// syntaxDetail describes a JSON syntax error at b[at], counting bytes from base.
func syntaxDetail(b []byte, at, base int) string {
	if at >= len(b) {
		return "unexpected end of input"
	}
	c := b[at]
	if c >= 0x20 && c < 0x7f {
		return fmt.Sprintf("unexpected %q at byte %d", rune(c), at-base)
	}
	return fmt.Sprintf("unexpected byte 0x%02x at byte %d", c, at-base)
}

// detailTS is the detail of a ts of the wrong type or format.
func detailTS(raw []byte) string {
	return "ts: want integer unix milliseconds or RFC 3339 string, got " + got(raw)
}

// detailTSRange is the detail of a ts outside 1..maxTS.
func detailTSRange(raw string) string {
	return fmt.Sprintf("ts: want 1..%d unix milliseconds, got %s", int64(maxTS), raw)
}

// detailStatus is the detail of a bad status.
func detailStatus(raw string) string {
	return fmt.Sprintf("status: want integer 0..%d, got %s", maxStatus, raw)
}

// detailWeight is the detail of a bad weight.
func detailWeight(raw string) string {
	return fmt.Sprintf("weight: want integer 1..%d, got %s", maxWeight, raw)
}

// detailTooLong is the detail of a string field over the limit.
func detailTooLong(field string, n, limit int) string {
	return fmt.Sprintf("%s: %d bytes, limit %d", field, n, limit)
}
