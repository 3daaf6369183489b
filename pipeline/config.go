package pipeline

import (
	"fmt"
	"time"

	"github.com/ratemon/ratemon/internal/fielderr"
)

// Evaluation says where limit keys are evaluated.
type Evaluation string

// Evaluation modes.
const (
	// EvaluateInline evaluates each limit key in the same script call that
	// appends a batch's events to it: one Redis call per key per batch, no
	// work notice. The default.
	EvaluateInline Evaluation = "inline"
	// EvaluateWorkers appends, writes work notices, and lets the workers
	// evaluate each key once per notice batch (consumer group per shard).
	EvaluateWorkers Evaluation = "workers"
)

// Validate checks that e is a known mode.
func (e Evaluation) Validate() error {
	switch e {
	case EvaluateInline, EvaluateWorkers:
		return nil
	}
	return fmt.Errorf("must be inline or workers, got %q", string(e))
}

// IngestConfig configures ingestion from NATS into the window logs.
type IngestConfig struct {
	Evaluation      Evaluation    `yaml:"evaluation" usage:"where keys are evaluated: inline (with the append, one redis call per key per batch) or workers (work notices read by the worker consumer group)"`
	BatchSize       int           `yaml:"batch_size" usage:"most NATS messages handled in one batch"`
	Linger          time.Duration `yaml:"linger" usage:"longest wait for more messages before a partial batch is processed"`
	Concurrency     int           `yaml:"concurrency" usage:"batches processed at once"`
	MaxSkew         time.Duration `yaml:"max_skew" usage:"events further than this in the future are clamped to the time JetStream stored them"`
	MaxFieldBytes   int           `yaml:"max_field_bytes" usage:"longest accepted string field of an event, in bytes"`
	MaxPayloadBytes int           `yaml:"max_payload_bytes" usage:"largest accepted NATS message, in bytes"`
	FloorRefresh    time.Duration `yaml:"floor_refresh" usage:"how often the consumer's ack floor is read, to prune redelivery records"`
	Hold            time.Duration `yaml:"hold" usage:"longest time the events of a key that cannot reach any threshold are held back to be sent with its later ones (inline evaluation; negative: never hold)"`
	HoldMessages    int           `yaml:"hold_messages" usage:"most messages left unacknowledged because some of their events are held; with the pull buffer (batch_size × concurrency) at most nats.max_ack_pending (unset: 12000, or what max_ack_pending leaves)"`
}

// DefaultHold is ingest.hold when it is not set (the daemon's
// configuration shortens it to a quarter of nats.ack_wait).
const DefaultHold = 2500 * time.Millisecond

// DefaultHoldMessages is ingest.hold_messages when it is not set (the
// daemon's configuration lowers it to what nats.max_ack_pending leaves
// beside the pull buffer).
const DefaultHoldMessages = 12000

// SetDefaults fills unset fields.
func (c *IngestConfig) SetDefaults() {
	if c.Evaluation == "" {
		c.Evaluation = EvaluateInline
	}
	if c.BatchSize == 0 {
		c.BatchSize = 1000
	}
	if c.Linger == 0 {
		c.Linger = 2 * time.Millisecond
	}
	if c.Concurrency == 0 {
		c.Concurrency = 2
	}
	if c.MaxSkew == 0 {
		c.MaxSkew = 5 * time.Second
	}
	if c.MaxFieldBytes == 0 {
		c.MaxFieldBytes = 1024
	}
	if c.MaxPayloadBytes == 0 {
		c.MaxPayloadBytes = 1 << 20
	}
	if c.FloorRefresh == 0 {
		c.FloorRefresh = time.Second
	}
	if c.Hold == 0 {
		c.Hold = DefaultHold
	}
	if c.HoldMessages == 0 {
		c.HoldMessages = DefaultHoldMessages
	}
}

// Holds reports whether ingestion holds back the events of keys far from
// their thresholds (see holder).
func (c *IngestConfig) Holds() bool {
	return c.Evaluation == EvaluateInline && c.Hold > 0
}

// LoadBacklog is how many published messages a load generator that waits
// for acknowledgements (ratemon bench --rate 0, the soak's maximum) lets
// wait unacknowledged per daemon: what the daemon leaves unacknowledged by
// design, its pull buffer (batch_size × concurrency) and, when it holds,
// hold_messages, plus another pull buffer queued. A smaller bound would
// throttle the generator on ratemon's holding.
func (c *IngestConfig) LoadBacklog() int {
	n := 2 * c.BatchSize * c.Concurrency
	if c.Holds() {
		n += c.HoldMessages
	}
	return n
}

// Validate reports every problem, located by field.
func (c *IngestConfig) Validate() error {
	var l fielderr.List
	if err := c.Evaluation.Validate(); err != nil {
		l.Add("evaluation", "%v", err)
	}
	if c.BatchSize < 1 || c.BatchSize > 100000 {
		l.Add("batch_size", "must be between 1 and 100000, got %d", c.BatchSize)
	}
	if c.Linger < 0 || c.Linger > time.Second {
		l.Add("linger", "must be between 0s and 1s, got %v", c.Linger)
	}
	if c.Concurrency < 1 || c.Concurrency > 256 {
		l.Add("concurrency", "must be between 1 and 256, got %d", c.Concurrency)
	}
	if c.MaxSkew < 0 {
		l.Add("max_skew", "must not be negative, got %v", c.MaxSkew)
	}
	if c.MaxFieldBytes < 16 || c.MaxFieldBytes > 1<<16 {
		l.Add("max_field_bytes", "must be between 16 and 65536, got %d", c.MaxFieldBytes)
	}
	if c.MaxPayloadBytes < 1024 || c.MaxPayloadBytes > 64<<20 {
		l.Add("max_payload_bytes", "must be between 1024 and 67108864, got %d", c.MaxPayloadBytes)
	}
	if c.FloorRefresh < 10*time.Millisecond {
		l.Add("floor_refresh", "must be at least 10ms, got %v", c.FloorRefresh)
	}
	if c.Hold > 10*time.Second {
		l.Add("hold", "must be at most 10s (negative: never hold), got %v", c.Hold)
	}
	if c.HoldMessages < 1 || c.HoldMessages > 1000000 {
		l.Add("hold_messages", "must be between 1 and 1000000, got %d", c.HoldMessages)
	}
	return l.Err()
}

// WorkerConfig configures the evaluation workers.
type WorkerConfig struct {
	Shards    int           `yaml:"shards" usage:"work-notice streams; every replica must use the same number"`
	BatchSize int           `yaml:"batch_size" usage:"most work notices read from one shard at once"`
	Block     time.Duration `yaml:"block" usage:"longest XREADGROUP wait on an idle shard"`
	ClaimIdle time.Duration `yaml:"claim_idle" usage:"notices pending this long with a dead consumer are reclaimed"`
	TopK      int           `yaml:"top_k" usage:"busiest limit keys kept per rule for ratemon top (each shard keeps twice as many candidates)"`
}

// SetDefaults fills unset fields.
func (c *WorkerConfig) SetDefaults() {
	if c.Shards == 0 {
		c.Shards = 8
	}
	if c.BatchSize == 0 {
		c.BatchSize = 256
	}
	if c.Block == 0 {
		c.Block = time.Second
	}
	if c.ClaimIdle == 0 {
		c.ClaimIdle = 30 * time.Second
	}
	if c.TopK == 0 {
		c.TopK = 100
	}
}

// Validate reports every problem, located by field.
func (c *WorkerConfig) Validate() error {
	var l fielderr.List
	if c.Shards < 1 || c.Shards > 1024 {
		l.Add("shards", "must be between 1 and 1024, got %d", c.Shards)
	}
	if c.BatchSize < 1 || c.BatchSize > 10000 {
		l.Add("batch_size", "must be between 1 and 10000, got %d", c.BatchSize)
	}
	if c.Block < 10*time.Millisecond || c.Block > time.Minute {
		l.Add("block", "must be between 10ms and 1m, got %v", c.Block)
	}
	if c.ClaimIdle < time.Second {
		l.Add("claim_idle", "must be at least 1s, got %v", c.ClaimIdle)
	}
	if c.TopK < 1 || c.TopK > 1000 {
		l.Add("top_k", "must be between 1 and 1000, got %d", c.TopK)
	}
	return l.Err()
}
