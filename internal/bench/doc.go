// Package bench is `ratemon bench`: an end-to-end benchmark that publishes a
// generated load on NATS JetStream, lets one or more ratemon daemons ingest
// and evaluate it in Redis, and measures what came out: events per second
// from the first publish until every message is acknowledged and every
// notice evaluated, detection lag (event time to deny decision), Redis and
// daemon CPU and memory, and the correctness of every deny flag against the
// reference model (limiter.Model) fed with the same events.
//
// On the same Redis and the same key sequence it measures the references
// ratemon is meant to beat: the Origin's per-request approach (XADD, XTRIM
// MINID, XLEN; with approximate and with exact trimming, and the false
// denies of each against an exact per-request count) and raw pipelined
// XADD, the ceiling for one log entry per event.
//
// Every run uses fresh names (Redis key prefix, streams, subjects) and
// deletes what it wrote. Each figure is the median over the runs; the
// correctness counts are the worst run. docs/BENCHMARKS.md explains every
// figure.
package bench
