package event

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestEvent_Validate(t *testing.T) {
	valid := Event{Client: "a", TS: 1718000000123, Status: 200, Weight: 1}
	with := func(f func(*Event)) Event {
		e := valid
		f(&e)
		return e
	}
	tests := []struct {
		name   string
		ev     Event
		lim    Limits
		reason RejectReason
		detail string
	}{
		{name: "valid", ev: valid},
		{name: "no timestamp", ev: with(func(e *Event) { e.TS = 0 })},
		{name: "bounds", ev: Event{Client: strings.Repeat("c", 1024), TS: 253402300799999, Status: 999, Weight: 1000000}},
		{name: "missing client", ev: with(func(e *Event) { e.Client = "" }), reason: ReasonMissingClient, detail: `missing_client: client: required, got ""`},
		{name: "client too long", ev: with(func(e *Event) { e.Client = strings.Repeat("c", 1025) }), reason: ReasonFieldTooLong, detail: "field_too_long: client: 1025 bytes, limit 1024"},
		{name: "negative ts", ev: with(func(e *Event) { e.TS = -1 }), reason: ReasonBadTS, detail: "bad_ts: ts: want 1..253402300799999 unix milliseconds, got -1"},
		{name: "ts after year 9999", ev: with(func(e *Event) { e.TS = 253402300800000 }), reason: ReasonBadTS},
		{name: "route too long", ev: with(func(e *Event) { e.Route = "abcde" }), lim: Limits{MaxFieldBytes: 4}, reason: ReasonFieldTooLong, detail: "route: 5 bytes, limit 4"},
		{name: "id too long", ev: with(func(e *Event) { e.ID = strings.Repeat("i", 2000) }), reason: ReasonFieldTooLong, detail: "id:"},
		{name: "status", ev: with(func(e *Event) { e.Status = 1000 }), reason: ReasonBadStatus, detail: "bad_status: status: want integer 0..999, got 1000"},
		{name: "negative status", ev: with(func(e *Event) { e.Status = -1 }), reason: ReasonBadStatus},
		{name: "zero weight", ev: with(func(e *Event) { e.Weight = 0 }), reason: ReasonBadWeight, detail: "bad_weight: weight: want integer 1..1000000, got 0"},
		{name: "weight too big", ev: with(func(e *Event) { e.Weight = 1000001 }), reason: ReasonBadWeight},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.ev.Validate(tt.lim)
			if tt.reason == "" {
				require.NoError(t, err)
				return
			}
			var de *DecodeError
			require.ErrorAs(t, err, &de)
			require.Equal(t, tt.reason, de.Reason)
			require.Contains(t, err.Error(), tt.detail)
		})
	}
}

func TestDecodeError_Error(t *testing.T) {
	var err error = &DecodeError{Reason: ReasonBadTS, Detail: "ts: want integer"}
	require.EqualError(t, err, "bad_ts: ts: want integer")
	var de *DecodeError
	require.ErrorAs(t, err, &de)
}

func TestReasons(t *testing.T) {
	rs := Reasons()
	require.Len(t, rs, 10)
	seen := map[RejectReason]bool{}
	for _, r := range rs {
		require.False(t, seen[r], "duplicate %s", r)
		seen[r] = true
		require.Regexp(t, `^[a-z]+(_[a-z]+)*$`, string(r))
	}
	rs[0] = "changed"
	require.Equal(t, ReasonInvalidJSON, Reasons()[0], "Reasons returns a new slice")
}
