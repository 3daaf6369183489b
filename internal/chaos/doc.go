// Package chaos is ratemon's fault checker. It runs the daemons as real
// processes (the ratemon binary, `ratemon serve --config F`) against a
// redis-server process and a NATS JetStream server it controls, publishes
// a known trace of events while it injects one fault, clears the fault,
// waits until ratemon has drained, and judges the outcome against the
// reference model (limiter.Model) fed the same events:
//
//   - no event lost and none counted twice: every limit key's count, per
//     rule, equals the model's (internal/modelcheck, with the store's clock
//     frozen once the daemons have stopped);
//   - no flag the model would not set: every deny and shadow decision
//     published during the run ends no later than the model's flag for
//     that key, and no flag is left on a key the model does not flag;
//   - every flag the model sets is in Redis, with the model's end, within
//     the recovery lag after the fault clears.
//
// The faults, one scenario each: a daemon SIGKILLed and restarted several
// times in the middle of batches; two and three replicas with one
// SIGKILLed; Redis killed and restarted without its data (the daemons
// rebuild the windows from JetStream); Redis paused with SIGSTOP; NATS
// restarted on its file store; a slow Redis behind a latency proxy. Short
// mode (the Go test in CI) shortens the durations; long mode runs them in
// full, then the backlog scenario (an unpaced load whose messages outlive
// nats.ack_wait, so that JetStream redelivers copies) and a soak at 80% of
// the maximum rate with Redis memory and daemon RSS sampled.
// docs/RELIABILITY.md holds the measured results.
package chaos
