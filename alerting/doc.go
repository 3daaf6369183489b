// Package alerting raises alerts when limit keys near or exceed their
// rules' limits, and tells the sinks (log, webhook, Slack, Alertmanager,
// NATS) about every transition exactly the way an on-call engineer wants:
// once, grouped, and resolved when it is over.
//
// The stages, with who runs them:
//
//	workers ─Observe─▶ bounded queue ─▶ track: observe.lua per (rule, key) ─┐
//	resolve (every replica, every check_interval): check.lua on due alerts ─┤ notifications
//	                                                                         ▼
//	                                               Redis stream outbox (hand-off)
//	                                                                         │ one replica holds the lease
//	                                                                         ▼
//	                     notifier: claim.lua (dedup) → group (rule, state) → per-sink stage
//	                     (bounded queue → rate limit → retries with backoff) → Sink.Send
//
// The state of each alert lives in one Redis hash under the limit key's hash
// tag; observe.lua and check.lua change it atomically, so whichever replica
// runs them, a transition is decided once. docs/ALERTING.md explains the
// lifecycle, the delivery guarantee and the formats.
package alerting
