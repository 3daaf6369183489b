// Package pipeline moves request events from NATS JetStream into the Redis
// window store and turns them into flags.
//
//	NATS JetStream  stream RATEMON_EVENTS  ratemon.events.<service>
//	  │ durable pull consumer, shared by all daemon replicas
//	  ▼
//	Ingest ── decode ── match rules ──▶ append.lua per limit key   (window logs)
//	  │                                 XADD work notice, shard N  (work streams)
//	  │ ack on NATS only after Redis accepted the batch
//	  ▼
//	Worker (consumer group per shard: XREADGROUP / XACK / XAUTOCLAIM)
//	  │ evaluate.lua once per limit key per read batch
//	  ├──▶ deny / shadow flags (Redis, TTL = Retry-After)
//	  └──▶ decisions on ratemon.decisions
//
// Ingest and Worker are independent components with the lifecycle
// New(Options) / Run(ctx); internal/daemon runs them side by side.
package pipeline
