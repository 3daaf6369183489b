package event

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// oracle applies the contract to one element with encoding/json. It is a
// second, deliberately plain implementation of the contract, against which
// the hand-written decoder is checked. It expects raw to be valid JSON.
func oracle(raw []byte, lim Limits) (Event, RejectReason) {
	lim = lim.normalized()
	if oracleDepth(raw) > lim.MaxDepth {
		return Event{}, ReasonTooDeep
	}
	if !bytes.HasPrefix(trimJSONSpace(raw), []byte("{")) {
		return Event{}, ReasonNotObject
	}
	var m map[string]json.RawMessage // duplicate keys: the last wins
	if err := json.Unmarshal(raw, &m); err != nil {
		return Event{}, ReasonInvalidJSON
	}
	present := func(k string) bool { v, ok := m[k]; return ok && string(v) != "null" }
	str := func(k string, dst *string) RejectReason {
		if !present(k) {
			return ""
		}
		if err := json.Unmarshal(m[k], dst); err != nil || m[k][0] != '"' {
			return ReasonBadField
		}
		if len(*dst) > lim.MaxFieldBytes {
			return ReasonFieldTooLong
		}
		return ""
	}
	integer := func(v json.RawMessage) (int64, bool) {
		if bytes.ContainsAny(v, ".eE") {
			return 0, false
		}
		n, err := strconv.ParseInt(string(v), 10, 64)
		return n, err == nil
	}
	ev := Event{Weight: 1}
	if !present("client") {
		return Event{}, ReasonMissingClient
	}
	if r := str("client", &ev.Client); r != "" {
		return Event{}, r
	}
	if ev.Client == "" {
		return Event{}, ReasonMissingClient
	}
	if present("ts") {
		v := m["ts"]
		var s string
		if json.Unmarshal(v, &s) == nil {
			tm, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return Event{}, ReasonBadTS
			}
			ev.TS = tm.UnixMilli()
		} else if n, ok := integer(v); ok {
			ev.TS = n
		} else {
			return Event{}, ReasonBadTS
		}
		if ev.TS < 1 || ev.TS > 253402300799999 {
			return Event{}, ReasonBadTS
		}
	}
	for _, f := range []struct {
		k   string
		dst *string
	}{{"service", &ev.Service}, {"route", &ev.Route}, {"method", &ev.Method}, {"ip", &ev.IP}, {"id", &ev.ID}} {
		if r := str(f.k, f.dst); r != "" {
			return Event{}, r
		}
	}
	if present("status") {
		n, ok := integer(m["status"])
		if !ok || n < 0 || n > 999 {
			return Event{}, ReasonBadStatus
		}
		ev.Status = int(n)
	}
	if present("weight") {
		n, ok := integer(m["weight"])
		if !ok || n < 1 || n > 1_000_000 {
			return Event{}, ReasonBadWeight
		}
		ev.Weight = n
	}
	if present("refused") {
		if err := json.Unmarshal(m["refused"], &ev.Refused); err != nil {
			return Event{}, ReasonBadField
		}
	}
	return ev, ""
}

// oracleDepth is the deepest nesting of brackets outside strings in raw.
func oracleDepth(raw []byte) int {
	depth, deepest, inString := 0, 0, false
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			depth++
			deepest = max(deepest, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return deepest
}

// trimJSONSpace trims JSON whitespace on both sides.
func trimJSONSpace(b []byte) []byte {
	return bytes.Trim(b, " \t\r\n")
}

// oracleElements splits a payload into its elements with encoding/json, when
// it is simple enough to have an unambiguous answer: an array encoding/json
// accepts, or lines that are each one valid JSON value.
func oracleElements(payload []byte) ([][]byte, bool) {
	trimmed := trimJSONSpace(payload)
	if len(trimmed) == 0 {
		return nil, true
	}
	if trimmed[0] == '[' {
		var elems []json.RawMessage
		if err := json.Unmarshal(payload, &elems); err != nil {
			return nil, false
		}
		out := make([][]byte, len(elems))
		for i, e := range elems {
			out[i] = e
		}
		return out, true
	}
	var out [][]byte
	for line := range bytes.SplitSeq(payload, []byte("\n")) {
		line = trimJSONSpace(line)
		if len(line) == 0 {
			continue
		}
		if !json.Valid(line) {
			return nil, false
		}
		out = append(out, line)
	}
	return out, true
}

// outcome is what Decode reported for one element: an event or a reject.
type outcome struct {
	ev  *Event
	rej *Reject
}

// checkDecode decodes payload and checks every invariant of Decode, and
// compares with the oracle where the oracle has an answer.
func checkDecode(t testing.TB, payload []byte, lim Limits) []outcome {
	t.Helper()
	orig := bytes.Clone(payload)
	var outs []outcome
	Decode(payload, lim,
		func(e Event) { outs = append(outs, outcome{ev: &e}) },
		func(r Reject) { outs = append(outs, outcome{rej: &r}) })
	require.Equal(t, orig, payload, "Decode must not modify the payload")

	n := lim.normalized()
	for i, o := range outs {
		if o.rej != nil {
			r := o.rej
			require.Equal(t, i, r.Index, "reject index")
			require.LessOrEqual(t, len(r.Raw), 4096)
			require.Contains(t, Reasons(), r.Reason)
			require.NotEmpty(t, r.Detail)
			require.Equal(t, strings.ToLower(r.Detail[:1]), r.Detail[:1], "detail is lower-case: %q", r.Detail)
			continue
		}
		e := *o.ev
		require.NoError(t, e.Validate(lim), "emitted event must validate: %+v", e)
		for _, s := range []string{e.Client, e.Service, e.Route, e.Method, e.IP, e.ID} {
			require.True(t, utf8.ValidString(s))
		}
		again, rejs := DecodeAll(e.AppendJSON(nil), lim)
		require.Empty(t, rejs)
		require.Equal(t, []Event{e}, again, "AppendJSON must round-trip")
	}

	if len(payload) > n.MaxPayloadBytes {
		require.Len(t, outs, 1)
		require.Equal(t, ReasonTooLarge, outs[0].rej.Reason)
		return outs
	}
	elems, ok := oracleElements(payload)
	if !ok {
		return outs
	}
	require.Len(t, outs, len(elems), "one outcome per element")
	for i, raw := range elems {
		want, reason := oracle(raw, lim)
		o := outs[i]
		if reason == "" {
			require.Nil(t, o.rej, "element %d %q: oracle accepts, got %+v", i, raw, o.rej)
			require.Equal(t, want, *o.ev, "element %d %q", i, raw)
			continue
		}
		require.NotNil(t, o.rej, "element %d %q: oracle rejects with %s, got %+v", i, raw, reason, o.ev)
		require.Equal(t, reason, o.rej.Reason, "element %d %q: %s", i, raw, o.rej.Detail)
		require.Equal(t, raw[:min(len(raw), 4096)], o.rej.Raw)
	}
	return outs
}
