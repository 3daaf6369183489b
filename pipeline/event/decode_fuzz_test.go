package event

import (
	"strings"
	"testing"
)

// FuzzDecode checks that Decode never panics, keeps every invariant of its
// output, and agrees with the encoding/json oracle wherever the oracle has an
// answer. Each input runs under the default limits and under small ones that
// reach the size, length and depth checks.
func FuzzDecode(f *testing.F) {
	for _, c := range loadTestdata(f) {
		f.Add(c.in)
	}
	for _, s := range []string{
		``,
		`{"client":"a"}`,
		`{"client":"a","ts":"2024-06-10T08:13:20.123+02:00","weight":2,"status":200,"refused":true}`,
		`[{"client":"a"},{"client":"b","ts":1718000000123}]`,
		`[{"client":"a"},1,null,{"client":},"x"]`,
		"{\"client\":\"a\"}\n{\"client\":\n{\"client\":\"c\"}\r\n",
		`{"client":"\ud83d\ude00\ud800\u00e9\"\\\/\b\f\n\r\t"}`,
		"{\"client\":\"\xff\xfe\"}",
		`{"cl\u0069ent":"a","client":"b","Client":"c"}`,
		`{"client":"a","x":[[[[[[[[[[[[1]]]]]]]]]]]]}`,
		`{"client":"a","ts":1e3,"status":-0,"weight":1.0}`,
		`{"client":"a","x":{"y":"}\"{"}}` + "\n" + `{"a":1}}`,
		`12ab "s" true [1]`,
		"{\n  \"client\": \"a\"\n}\n{\n  \"client\": \"b\"\n",
		`{"client":"` + strings.Repeat("x", 100) + `"}`,
		`"\ud83d\ude00"`,
		`"2024-06-10T08:13:20.123+02:00"`,
		`1718000000123`,
		`true`,
	} {
		f.Add([]byte(s))
	}
	small := Limits{MaxPayloadBytes: 4096, MaxFieldBytes: 8, MaxDepth: 4}
	f.Fuzz(func(t *testing.T, payload []byte) {
		checkDecode(t, payload, Limits{})
		checkDecode(t, payload, small)
		// Most mutations break the JSON around a value; used as the value
		// of a known field, the input still reaches the field decoders and
		// the comparison with encoding/json.
		v := string(payload)
		for _, wrapped := range []string{
			`{"client":` + v + `}`,
			`{"client":"c","ts":` + v + `}`,
			`{"client":"c","id":` + v + `,"weight":` + v + `,"status":` + v + `}`,
			`{"client":"c","refused":` + v + `,"x":[` + v + `]}`,
		} {
			checkDecode(t, []byte(wrapped), Limits{})
		}
	})
}
