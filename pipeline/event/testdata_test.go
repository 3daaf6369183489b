package event

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// testdataCase is one directory of testdata: a payload in in.ndjson or
// in.json, and want.json.
type testdataCase struct {
	name string
	in   []byte
	want testdataWant
}

// testdataWant is the content of want.json. Events use the contract's field
// names; an absent weight is 1.
type testdataWant struct {
	Limits struct {
		MaxPayloadBytes int `json:"max_payload_bytes"`
		MaxFieldBytes   int `json:"max_field_bytes"`
		MaxDepth        int `json:"max_depth"`
	} `json:"limits"`
	Events  []wireEvent `json:"events"`
	Rejects []struct {
		Index  int          `json:"index"`
		Reason RejectReason `json:"reason"`
	} `json:"rejects"`
}

// loadTestdata reads every case under testdata, skipping the fuzz corpus.
func loadTestdata(t testing.TB) []testdataCase {
	t.Helper()
	dirs, err := os.ReadDir("testdata")
	require.NoError(t, err)
	var cases []testdataCase
	for _, d := range dirs {
		if !d.IsDir() || d.Name() == "fuzz" {
			continue
		}
		dir := filepath.Join("testdata", d.Name())
		c := testdataCase{name: d.Name()}
		for _, name := range []string{"in.ndjson", "in.json"} {
			if b, err := os.ReadFile(filepath.Join(dir, name)); err == nil {
				c.in = b
				break
			}
		}
		require.NotNil(t, c.in, "%s: no in.ndjson or in.json", dir)
		raw, err := os.ReadFile(filepath.Join(dir, "want.json"))
		require.NoError(t, err)
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		require.NoError(t, dec.Decode(&c.want), "%s/want.json", dir)
		cases = append(cases, c)
	}
	require.GreaterOrEqual(t, len(cases), 8)
	return cases
}

func TestDecode_testdata(t *testing.T) {
	for _, c := range loadTestdata(t) {
		t.Run(c.name, func(t *testing.T) {
			lim := Limits{
				MaxPayloadBytes: c.want.Limits.MaxPayloadBytes,
				MaxFieldBytes:   c.want.Limits.MaxFieldBytes,
				MaxDepth:        c.want.Limits.MaxDepth,
			}
			var want []Event
			for _, w := range c.want.Events {
				if w.Weight == 0 {
					w.Weight = 1
				}
				want = append(want, Event(w))
			}
			var events []Event
			var rejects []Reject
			for _, o := range checkDecode(t, c.in, lim) {
				if o.ev != nil {
					events = append(events, *o.ev)
				} else {
					rejects = append(rejects, *o.rej)
				}
			}
			require.Equal(t, want, events)
			require.Len(t, rejects, len(c.want.Rejects), "rejects: %+v", rejects)
			for i, w := range c.want.Rejects {
				require.Equal(t, w.Index, rejects[i].Index, "reject %d", i)
				require.Equal(t, w.Reason, rejects[i].Reason, "reject %d: %s", i, rejects[i].Detail)
			}
		})
	}
}
