package pipeline

import (
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go"
)

// maxDeadData bounds the copy of the rejected input kept in a dead letter.
const maxDeadData = 4096

// DeadLetter is what ratemon publishes on the dead-letter subject for input
// it could not use. This is a documented contract.
type DeadLetter struct {
	Reason    string    `json:"reason"`
	Detail    string    `json:"detail"`
	Subject   string    `json:"subject"`
	StreamSeq uint64    `json:"stream_seq"`
	Index     int       `json:"index"` // element of the payload (array index or NDJSON line), -1 for the whole message
	Received  time.Time `json:"received"`
	Data      string    `json:"data"` // the rejected element, truncated to 4096 bytes
}

// deadLetters publishes dead letters on core NATS; a JetStream stream over
// the subject (created by the daemon) keeps them.
type deadLetters struct {
	nc      *nats.Conn
	subject string
}

func (d deadLetters) publish(dl DeadLetter) error {
	if len(dl.Data) > maxDeadData {
		dl.Data = dl.Data[:maxDeadData]
	}
	b, err := json.Marshal(dl)
	if err != nil {
		return err
	}
	return d.nc.Publish(d.subject, b)
}
