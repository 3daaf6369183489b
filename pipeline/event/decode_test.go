package event

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// wantReject is an expected Reject; Raw and Detail are checked when set,
// Detail as a substring.
type wantReject struct {
	Index  int
	Reason RejectReason
	Raw    string
	Detail string
}

// decodeCase is one table case: a payload and what Decode must report.
type decodeCase struct {
	name    string
	in      string
	lim     Limits
	events  []Event
	rejects []wantReject
}

// ev is an event with only a client.
func ev(client string) Event {
	return Event{Client: client, Weight: 1}
}

// runDecodeCases runs table cases through checkDecode, which also compares
// every element with the encoding/json oracle.
func runDecodeCases(t *testing.T, tests []decodeCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var events []Event
			var rejects []Reject
			for _, o := range checkDecode(t, []byte(tt.in), tt.lim) {
				if o.ev != nil {
					events = append(events, *o.ev)
				} else {
					rejects = append(rejects, *o.rej)
				}
			}
			require.Equal(t, tt.events, events)
			require.Len(t, rejects, len(tt.rejects), "rejects: %+v", rejects)
			for i, w := range tt.rejects {
				r := rejects[i]
				require.Equal(t, w.Index, r.Index, "reject %d", i)
				require.Equal(t, w.Reason, r.Reason, "reject %d: %s", i, r.Detail)
				if w.Raw != "" {
					require.Equal(t, w.Raw, string(r.Raw), "reject %d", i)
				}
				if w.Detail != "" {
					require.Contains(t, r.Detail, w.Detail, "reject %d", i)
				}
			}
		})
	}
}

func TestDecode_payloads(t *testing.T) {
	runDecodeCases(t, []decodeCase{
		{name: "empty payload", in: ""},
		{name: "only whitespace", in: " \r\n\t\n"},
		{name: "single object", in: `{"client":"a"}`, events: []Event{ev("a")}},
		{name: "array", in: ` [ {"client":"a"} , {"client":"b"} ] `, events: []Event{ev("a"), ev("b")}},
		{name: "empty array", in: "[ ]"},
		{
			name:   "array with bad elements rejected alone",
			in:     `[{"client":"a"},{"client":},7,{"ts":1},{"client":"c"}]`,
			events: []Event{ev("a"), ev("c")},
			rejects: []wantReject{
				{Index: 1, Reason: ReasonInvalidJSON, Raw: `{"client":}`, Detail: `unexpected '}' at byte 10`},
				{Index: 2, Reason: ReasonNotObject, Raw: `7`, Detail: "want object, got number"},
				{Index: 3, Reason: ReasonMissingClient, Raw: `{"ts":1}`},
			},
		},
		{
			name:    "array unterminated is rejected whole",
			in:      `[{"client":"a"},{"client":"b"}`,
			rejects: []wantReject{{Index: 0, Reason: ReasonInvalidJSON, Raw: `[{"client":"a"},{"client":"b"}`, Detail: "array: unexpected end of input"}},
		},
		{
			name:    "array missing comma is rejected whole",
			in:      `[{"client":"a"} {"client":"b"}]`,
			rejects: []wantReject{{Index: 0, Reason: ReasonInvalidJSON, Detail: "array: unexpected '{' at byte 16"}},
		},
		{
			name:    "array trailing comma is rejected whole",
			in:      `[{"client":"a"},]`,
			rejects: []wantReject{{Index: 0, Reason: ReasonInvalidJSON}},
		},
		{
			name:    "text after array is rejected whole",
			in:      "[{\"client\":\"a\"}]\n{\"client\":\"b\"}",
			rejects: []wantReject{{Index: 0, Reason: ReasonInvalidJSON}},
		},
		{
			name:   "ndjson with a bad line in the middle",
			in:     "{\"client\":\"a\"}\n{\"client\":\"b\",}\n{\"client\":\"c\"}\n",
			events: []Event{ev("a"), ev("c")},
			rejects: []wantReject{
				{Index: 1, Reason: ReasonInvalidJSON, Raw: `{"client":"b",}`, Detail: "unexpected '}' at byte 14"},
			},
		},
		{
			name:    "ndjson unterminated line costs that line only",
			in:      "{\"client\":\"a\"}\n{\"client\":\"b\"\n{\"client\":\"c\"}",
			events:  []Event{ev("a"), ev("c")},
			rejects: []wantReject{{Index: 1, Reason: ReasonInvalidJSON, Raw: `{"client":"b"`}},
		},
		{
			name:    "ndjson unterminated string costs that line only",
			in:      "{\"client\":\"b}\n{\"client\":\"c\"}\n",
			events:  []Event{ev("c")},
			rejects: []wantReject{{Index: 0, Reason: ReasonInvalidJSON, Raw: `{"client":"b}`}},
		},
		{
			name:    "ndjson extra closing brace",
			in:      "{\"client\":\"a\"}}\n{\"client\":\"b\"}",
			events:  []Event{ev("a"), ev("b")},
			rejects: []wantReject{{Index: 1, Reason: ReasonInvalidJSON, Raw: `}`}},
		},
		{
			name:    "ndjson mismatched brackets reject the rest of the line",
			in:      "{\"client\":\"a\",\"x\":[}]\n{\"client\":\"b\"}",
			events:  []Event{ev("b")},
			rejects: []wantReject{{Index: 0, Reason: ReasonInvalidJSON, Raw: `{"client":"a","x":[}]`}},
		},
		{
			name:    "garbage after a number",
			in:      "12ab\n{\"client\":\"b\"}",
			events:  []Event{ev("b")},
			rejects: []wantReject{{Index: 0, Reason: ReasonInvalidJSON, Raw: "12ab"}},
		},
		{
			name:   "ndjson crlf and blank lines",
			in:     "\r\n{\"client\":\"a\"}\r\n\r\n   \r\n{\"client\":\"b\"}\r\n{\"client\":}\r\n{\"client\":\"d\"}\r\n",
			events: []Event{ev("a"), ev("b"), ev("d")},
			rejects: []wantReject{
				{Index: 2, Reason: ReasonInvalidJSON, Raw: `{"client":}`},
			},
		},
		{
			name:   "pretty-printed object",
			in:     "{\n  \"client\": \"a\",\n  \"extra\": {\n    \"k\": [1, 2]\n  },\n  \"weight\": 3\n}\n",
			events: []Event{{Client: "a", Weight: 3}},
		},
		{
			name:   "pretty-printed objects one after the other",
			in:     "{\n \"client\": \"a\"\n}\n{\n \"client\": \"b\"\n}",
			events: []Event{ev("a"), ev("b")},
		},
		{
			name:   "broken pretty-printed object resumes after the line of the error",
			in:     "{\n \"client\": \"a\"\n \"route\": \"/x\"\n}\n{\"client\":\"b\"}",
			events: []Event{ev("b")},
			rejects: []wantReject{
				{Index: 0, Reason: ReasonInvalidJSON, Raw: "{\n \"client\": \"a\"\n \"route\": \"/x\"", Detail: "unexpected '\"' at byte 18"},
				{Index: 1, Reason: ReasonInvalidJSON, Raw: "}"},
			},
		},
		{
			name:    "ndjson line missing nested closers",
			in:      "{\"client\":\"a\",\"x\":[1,{\"y\":2\n  {\"client\":\"b\"}\n",
			events:  []Event{ev("b")},
			rejects: []wantReject{{Index: 0, Reason: ReasonInvalidJSON, Raw: `{"client":"a","x":[1,{"y":2`}},
		},
		{
			name:   "objects without newline between them",
			in:     `{"client":"a"}{"client":"b"} {"client":"c"}`,
			events: []Event{ev("a"), ev("b"), ev("c")},
		},
		{
			name: "top-level values that are not objects",
			in:   "[1]",
			rejects: []wantReject{
				{Index: 0, Reason: ReasonNotObject, Raw: "1"},
			},
		},
		{
			name: "stream of values that are not objects",
			in:   "\"s\"\nnull\ntrue\n-1.5e3\n{\"client\":\"a\"}\n[{\"client\":\"b\"}]",
			rejects: []wantReject{
				{Index: 0, Reason: ReasonNotObject, Detail: "got string"},
				{Index: 1, Reason: ReasonNotObject, Detail: "got null"},
				{Index: 2, Reason: ReasonNotObject, Detail: "got boolean"},
				{Index: 3, Reason: ReasonNotObject, Detail: "got number"},
				{Index: 5, Reason: ReasonNotObject, Detail: "got array"},
			},
			events: []Event{ev("a")},
		},
		{
			name:    "oversized payload",
			in:      `{"client":"a"}` + strings.Repeat(" ", 100),
			lim:     Limits{MaxPayloadBytes: 100},
			rejects: []wantReject{{Index: 0, Reason: ReasonTooLarge, Detail: "payload: 114 bytes, limit 100"}},
		},
		{
			name:   "payload at the size limit",
			in:     `{"client":"a"}`,
			lim:    Limits{MaxPayloadBytes: 14},
			events: []Event{ev("a")},
		},
		{
			name:   "deep json rejected alone",
			in:     "{\"client\":\"a\"}\n{\"client\":\"b\",\"x\":" + strings.Repeat("[", 40) + strings.Repeat("]", 40) + "}\n{\"client\":\"c\"}",
			events: []Event{ev("a"), ev("c")},
			rejects: []wantReject{
				{Index: 1, Reason: ReasonTooDeep, Detail: "nesting deeper than 32"},
			},
		},
		{
			name:   "depth at the limit is accepted",
			in:     `{"client":"a","x":` + strings.Repeat(`{"y":`, 31) + "1" + strings.Repeat("}", 31) + "}",
			events: []Event{ev("a")},
		},
		{
			name:    "depth one over the limit",
			in:      `{"client":"a","x":` + strings.Repeat(`{"y":`, 32) + "1" + strings.Repeat("}", 32) + "}",
			rejects: []wantReject{{Index: 0, Reason: ReasonTooDeep}},
		},
		{
			name:    "custom depth limit in an array",
			in:      `[{"client":"a","x":[[1]]},{"client":"b","x":[1]}]`,
			lim:     Limits{MaxDepth: 2},
			events:  []Event{ev("b")},
			rejects: []wantReject{{Index: 0, Reason: ReasonTooDeep, Raw: `{"client":"a","x":[[1]]}`}},
		},
		{
			name:    "unterminated deep element",
			in:      strings.Repeat("[", 100000),
			rejects: []wantReject{{Index: 0, Reason: ReasonInvalidJSON, Detail: "array: unexpected end of input"}},
		},
		{
			name:    "very deep stream element",
			in:      "{\"x\":" + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + "}\n{\"client\":\"b\"}",
			events:  []Event{ev("b")},
			rejects: []wantReject{{Index: 0, Reason: ReasonTooDeep}},
		},
	})
}

// TestDecode_garbageIsLinear decodes 1 MiB payloads of pathological
// garbage. Decoding is linear in the payload size, so each takes
// milliseconds; a quadratic resynchronisation would take minutes.
func TestDecode_garbageIsLinear(t *testing.T) {
	for _, unit := range []string{"{\n", "{\"a\":[\n", "\"\n", "[1,\n", "{\"a\":\"\n", "x", "[", "{\"a\":{\"a\":"} {
		t.Run(unit, func(t *testing.T) {
			payload := []byte("\n" + strings.Repeat(unit, (1<<20-1)/len(unit)))
			events, rejects := 0, 0
			Decode(payload, Limits{},
				func(Event) { events++ },
				func(r Reject) {
					if r.Index != rejects {
						require.Equal(t, rejects, r.Index)
					}
					rejects++
				})
			require.Zero(t, events)
			require.NotZero(t, rejects)
		})
	}
}

func TestDecode_rawIsTruncatedCopy(t *testing.T) {
	payload := []byte(`{"client":"a","pad":"` + strings.Repeat("x", 5000) + `","weight":0}`)
	_, rejects := DecodeAll(payload, Limits{})
	require.Len(t, rejects, 1)
	require.Equal(t, ReasonBadWeight, rejects[0].Reason)
	require.Len(t, rejects[0].Raw, 4096)
	require.Equal(t, payload[:4096], rejects[0].Raw)
	payload[0] = 'X'
	require.Equal(t, byte('{'), rejects[0].Raw[0], "Raw must be a copy")
}

func TestDecode_nilCallbacks(t *testing.T) {
	require.NotPanics(t, func() {
		Decode([]byte("{\"client\":\"a\"}\nx\n"), Limits{}, nil, nil)
	})
}

func TestDecode_largeValidPayload(t *testing.T) {
	var b bytes.Buffer
	for range 5000 {
		b.WriteString(`{"client":"acme","ts":1718000000123,"route":"GET /v1/items","status":200}` + "\n")
	}
	events, rejects := DecodeAll(b.Bytes(), Limits{})
	require.Empty(t, rejects)
	require.Len(t, events, 5000)
}

// wireEvent is the event as encoding/json sees it with exact-case tags.
type wireEvent struct {
	Client  string `json:"client"`
	TS      int64  `json:"ts"`
	Service string `json:"service"`
	Route   string `json:"route"`
	Method  string `json:"method"`
	IP      string `json:"ip"`
	ID      string `json:"id"`
	Status  int    `json:"status"`
	Weight  int64  `json:"weight"`
	Refused bool   `json:"refused"`
}

func TestDecode_matchesEncodingJSONStruct(t *testing.T) {
	inputs := []string{
		`{"client":"acme","ts":1718000000123,"service":"billing","route":"POST /v1/x","method":"POST","ip":"10.0.0.1","id":"r-1","status":201,"weight":5,"refused":true}`,
		`{"client":"\u00e9\ud83d\ude00\ud800x\"\\\/\b\f\n\r\t","weight":1}`,
		"{\"client\":\"bad \xff\xfe utf8 \xe2\x82\",\"weight\":1}",
		`{ "weight" : 2 , "client" : "a" , "n" : [ 1 , { "deep" : [ null , true , false , -0.5e-3 ] } ] , "s" : "\"}" }`,
		`{"client":"a","client":"b","weight":1,"weight":7}`,
		`{"client":"x","id":"{ } | = % \n \u0000","weight":1}`,
	}
	for _, in := range inputs {
		var w wireEvent
		require.NoError(t, json.Unmarshal([]byte(in), &w))
		events, rejects := DecodeAll([]byte(in), Limits{})
		require.Empty(t, rejects)
		require.Equal(t, []Event{{
			Client: w.Client, TS: w.TS, Service: w.Service, Route: w.Route, Method: w.Method,
			IP: w.IP, ID: w.ID, Status: w.Status, Weight: w.Weight, Refused: w.Refused,
		}}, events, in)
	}
}
