// Package daemon assembles ratemon from its parts and runs them: the NATS
// and Redis connections, ingestion, the workers, the HTTP server and the
// health checks. It is what `ratemon serve` runs, and what tests embed:
// Run never touches signals or the process; cancel its context to stop it.
//
// Shutdown goes in dependency order: stop fetching from NATS, finish and
// acknowledge the batches in hand, stop the workers after their current
// batch, then drain NATS, close Redis and stop the HTTP server, all bounded
// by Options.ShutdownTimeout.
package daemon
