package event

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestEvent_AppendJSON(t *testing.T) {
	tests := []struct {
		name string
		ev   Event
		want string
	}{
		{"only client", Event{Client: "a", Weight: 1}, `{"client":"a"}`},
		{
			"every field",
			Event{Client: "acme", TS: 1718000000123, Service: "billing", Route: "POST /x", Method: "POST", IP: "10.0.0.1", ID: "r-1", Status: 201, Weight: 3, Refused: true},
			`{"client":"acme","ts":1718000000123,"service":"billing","route":"POST /x","method":"POST","ip":"10.0.0.1","id":"r-1","status":201,"weight":3,"refused":true}`,
		},
		{"weight other than 1 is written", Event{Client: "a"}, `{"client":"a","weight":0}`},
		{"empty client is written", Event{Weight: 1}, `{"client":""}`},
		{"escapes", Event{Client: "q\"b\\n\nr\rt\t\x00\x1f<&>", Weight: 1}, `{"client":"q\"b\\n\nr\rt\t\u0000\u001f<&>"}`},
		{"line separators", Event{Client: "a\u2028b\u2029", Weight: 1}, `{"client":"a\u2028b\u2029"}`},
		{"invalid utf-8", Event{Client: "a\xffb\xe2\x82", Weight: 1}, `{"client":"a\ufffdb\ufffd\ufffd"}`},
		{"valid utf-8 kept", Event{Client: "été 😀", Weight: 1}, `{"client":"été 😀"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.ev.AppendJSON([]byte("prefix:"))
			require.Equal(t, "prefix:"+tt.want, string(got))
			require.True(t, json.Valid(got[len("prefix:"):]))
		})
	}
}

func TestEvent_AppendJSON_roundTrip(t *testing.T) {
	events := []Event{
		{Client: "a", Weight: 1},
		{Client: "acme", TS: 1718000000123, Service: "s", Route: "GET /{id}", Method: "GET", IP: "::1", ID: "{ } | = % \n \x00", Status: 404, Weight: 1000000, Refused: true},
		{Client: "\u2028\"\\😀\x7f", TS: 253402300799999, Weight: 2},
	}
	for _, e := range events {
		b := e.AppendJSON(nil)
		got, rejects := DecodeAll(b, Limits{})
		require.Empty(t, rejects)
		require.Equal(t, []Event{e}, got)

		var w wireEvent
		require.NoError(t, json.Unmarshal(b, &w))
		if w.Weight == 0 {
			w.Weight = 1
		}
		require.Equal(t, e, Event(w))
	}
}

func TestEvent_AppendJSON_doesNotAllocate(t *testing.T) {
	e := Event{Client: "acme\n\u2028\xff", TS: 1718000000123, Service: "billing", Route: "POST /x", Method: "POST", IP: "10.0.0.1", ID: "r-1", Status: 201, Weight: 3, Refused: true}
	buf := make([]byte, 0, 512)
	allocs := testing.AllocsPerRun(100, func() {
		buf = e.AppendJSON(buf[:0])
	})
	require.Zero(t, allocs)
}

func TestEvent_MarshalJSON(t *testing.T) {
	e := Event{Client: "a", TS: 5, Weight: 2}
	b, err := json.Marshal(struct{ E Event }{e})
	require.NoError(t, err)
	require.JSONEq(t, `{"E":{"client":"a","ts":5,"weight":2}}`, string(b))
}

func TestEvent_HasTS(t *testing.T) {
	require.False(t, Event{}.HasTS())
	require.True(t, Event{TS: 1}.HasTS())
}
