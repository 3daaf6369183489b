// Package capacity holds the measurements behind docs/SCALING.md: Redis
// memory per tracked limit key, per in-window event and per deny flag
// (tests that also fail when a change makes them grow past the documented
// bounds), and the throughput of one Redis shard and of JetStream
// publishing (benchmarks). Every figure comes from a private redis-server
// or an in-process NATS server, so nothing else running on the machine
// disturbs the INFO counters it reads.
//
// The package holds only tests:
//
//	go test -run TestRedisMemory -v ./internal/capacity/
//	go test -run '^$' -bench . -benchtime 5s ./internal/capacity/
package capacity
