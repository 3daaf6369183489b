package event

// Bounds of the contract. They are constants, not settings: changing one is a
// change of the wire contract.
const (
	// maxTS is 9999-12-31T23:59:59.999Z in Unix milliseconds.
	maxTS     = 253402300799999
	maxStatus = 999
	maxWeight = 1_000_000
	// maxRawBytes bounds Reject.Raw.
	maxRawBytes = 4096
)

// Defaults of Limits.
const (
	defaultMaxPayloadBytes = 1 << 20
	defaultMaxFieldBytes   = 1024
	defaultMaxDepth        = 32
	// ceilingMaxDepth caps Limits.MaxDepth so that the recursive parser's
	// stack stays small whatever the configuration says.
	ceilingMaxDepth = 10000
)

// Event is one request observed by an API server.
//
// Every Event that Decode emits passes Validate. Its strings are valid UTF-8
// and share one allocation.
type Event struct {
	// Client identifies the caller: an API key, a user or a tenant. Required.
	Client string
	// TS is the time of the request in Unix milliseconds; 0 means the event
	// carried no timestamp and the caller uses the time JetStream stored the
	// message instead.
	TS int64
	// Service, Route, Method, IP and ID are optional; "" means absent. ID lets
	// the pipeline count a redelivered event once.
	Service, Route, Method, IP, ID string
	// Status is the response status, 0..999; 0 means absent.
	Status int
	// Weight is how many requests the event stands for, 1..1000000.
	Weight int64
	// Refused is true when the server refused the request because of a
	// ratemon flag.
	Refused bool
}

// HasTS reports whether the event carried its own timestamp.
func (e Event) HasTS() bool {
	return e.TS != 0
}

// Limits bounds what Decode accepts; the zero value means the defaults. A
// field that is zero or negative takes its default.
type Limits struct {
	// MaxPayloadBytes is the size of the largest payload accepted as a whole
	// (default 1 MiB). A larger payload is one Reject with ReasonTooLarge.
	MaxPayloadBytes int
	// MaxFieldBytes is the length of the longest string field after
	// decoding (default 1024).
	MaxFieldBytes int
	// MaxDepth is the deepest nesting of objects and arrays inside one
	// element, the element's own braces counting as 1 (default 32, capped at
	// 10000).
	MaxDepth int
}

// normalized returns l with the defaults filled in.
func (l Limits) normalized() Limits {
	if l.MaxPayloadBytes <= 0 {
		l.MaxPayloadBytes = defaultMaxPayloadBytes
	}
	if l.MaxFieldBytes <= 0 {
		l.MaxFieldBytes = defaultMaxFieldBytes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = defaultMaxDepth
	}
	if l.MaxDepth > ceilingMaxDepth {
		l.MaxDepth = ceilingMaxDepth
	}
	return l
}
