package event

import (
	"bytes"
	"fmt"
	"testing"
)

// benchEvent is a typical event of about 200 bytes.
const benchEvent = `{"client":"acme-prod-7f3a","ts":1718000000123,"service":"billing","route":"POST /v1/invoices/{id}/pay","method":"POST","ip":"203.0.113.42","id":"req-01HZX5J8K2M3N4P5Q6R7S8T9","status":201,"weight":1}`

// benchEventRFC3339 is benchEvent with an RFC 3339 timestamp.
const benchEventRFC3339 = `{"client":"acme-prod-7f3a","ts":"2024-06-10T08:13:20.123+02:00","service":"billing","route":"POST /v1/invoices/{id}/pay","method":"POST","ip":"203.0.113.42","id":"req-01HZX5J8K2M3N4P5Q6R7S8T9","status":201}`

// benchBatch returns n distinct events as NDJSON and as a JSON array.
func benchBatch(n int) (ndjson, array []byte) {
	var nd, arr bytes.Buffer
	arr.WriteByte('[')
	for i := range n {
		line := fmt.Sprintf(`{"client":"client-%03d","ts":%d,"service":"billing","route":"GET /v1/items/{id}","method":"GET","ip":"10.0.%d.%d","id":"req-%08d","status":200}`,
			i%50, 1718000000000+int64(i), i/256, i%256, i)
		nd.WriteString(line)
		nd.WriteByte('\n')
		if i > 0 {
			arr.WriteByte(',')
		}
		arr.WriteString(line)
	}
	arr.WriteByte(']')
	return nd.Bytes(), arr.Bytes()
}

func BenchmarkDecode(b *testing.B) {
	nd, arr := benchBatch(100)
	for _, bc := range []struct {
		name    string
		payload []byte
		events  int
	}{
		{"object", []byte(benchEvent), 1},
		{"object_rfc3339", []byte(benchEventRFC3339), 1},
		{"ndjson100", nd, 100},
		{"array100", arr, 100},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var n int
			emit := func(Event) { n++ }
			reject := func(r Reject) { b.Fatalf("unexpected reject: %s: %s", r.Reason, r.Detail) }
			b.SetBytes(int64(len(bc.payload)))
			b.ReportAllocs()
			for b.Loop() {
				Decode(bc.payload, Limits{}, emit, reject)
			}
			if n%bc.events != 0 {
				b.Fatalf("emitted %d events, not a multiple of %d", n, bc.events)
			}
		})
	}
}

func BenchmarkAppendJSON(b *testing.B) {
	events, _ := DecodeAll([]byte(benchEvent), Limits{})
	if len(events) != 1 {
		b.Fatal("bench event does not decode")
	}
	e := events[0]
	buf := make([]byte, 0, 512)
	b.SetBytes(int64(len(e.AppendJSON(nil))))
	b.ReportAllocs()
	for b.Loop() {
		buf = e.AppendJSON(buf[:0])
	}
}
