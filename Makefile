# ratemon: make build | run | test | lint | bench | bench-e2e | chaos | fuzz | clean
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)
# Every target builds with the toolchain go.mod names (its toolchain line:
# the Go release with the standard-library fixes govulncheck asks for),
# which the go command fetches through the module proxy when the installed
# Go is older. The official go.env says GOTOOLCHAIN=local, which would
# ignore that line; GOTOOLCHAIN=local make ... still forces the installed Go.
export GOTOOLCHAIN ?= auto

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
CONFIG  ?= configs/ratemon.yaml
GO      ?= go
# The whole suite must stay under 15 minutes; a hung test fails at 12.
TEST_TIMEOUT ?= 12m
FUZZTIME ?= 30s

.PHONY: build run test vet fmt-check lint vulncheck bench bench-e2e chaos fuzz clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ratemon ./cmd/ratemon

# Runs the daemon for real. --dev starts an in-process NATS and a local
# redis-server when none answers at the configured addresses.
run: build
	./bin/ratemon serve --dev --config $(CONFIG)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

# Unit, integration and model tests against real Redis (RATEMON_TEST_REDIS,
# default 127.0.0.1:6379) and in-process NATS JetStream servers.
test: fmt-check vet
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...

# golangci-lint with the linters of .golangci.yml (errorlint, revive,
# sloglint, testifylint, promlinter, godot, depguard...), and govulncheck.
lint: fmt-check vet vulncheck
	$(GO) run github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0 run ./...

# govulncheck, offline: its database is built from a pinned version of the
# golang.org/x/vulndb module, which the module proxy serves (vuln.go.dev
# itself may be out of reach). Bump VULNDB_VERSION for newer reports, or
# use the live database with VULNDB=https://vuln.go.dev.
GOVULNCHECK    := golang.org/x/vuln/cmd/govulncheck@v1.9.0
VULNDB_VERSION := v0.0.0-20261105234957-e22db6528018
VULNDB_INDEX   := bin/vulndb-$(VULNDB_VERSION)
VULNDB         ?= file://$(CURDIR)/$(VULNDB_INDEX)

vulncheck: $(if $(findstring $(VULNDB_INDEX),$(VULNDB)),$(VULNDB_INDEX))
	$(GO) run $(GOVULNCHECK) -db $(VULNDB) ./...

$(VULNDB_INDEX):
	src=$$($(GO) mod download -json golang.org/x/vulndb@$(VULNDB_VERSION) | grep '"Dir"' | cut -d'"' -f4) && \
	test -d "$$src/data/osv" && rm -rf $@.tmp && \
	$(GO) run golang.org/x/vulndb/cmd/indexdb@$(VULNDB_VERSION) -vulns "$$src/data/osv" -out $@.tmp && \
	mv $@.tmp $@

# Go benchmarks of the hot paths (decode, match, key build, evaluation...).
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./...

# End-to-end benchmark (docs/BENCHMARKS.md): the issue's uniform and Zipf
# loads over 10,000 keys, median of 3 runs each, against the Redis and NATS
# of the config defaults (127.0.0.1:6379, 127.0.0.1:4222). Add flags with
# BENCH_FLAGS, e.g. BENCH_FLAGS=--start for private servers, or --json.
BENCH_FLAGS ?=
bench-e2e: build
	./bin/ratemon bench --keys 10000 --dist uniform $(BENCH_FLAGS)
	./bin/ratemon bench --keys 10000 --dist zipf --zipf-s 1.1 $(BENCH_FLAGS)

# Fault checker (docs/RELIABILITY.md): daemons as real processes on a
# private redis-server and NATS, one fault per scenario, every count and
# flag compared with the reference model. CHAOS_MODE=short (the CI form,
# about 1.5 min; `make test` runs it as go test ./internal/chaos/) or long
# (full fault durations, the backlog scenario and the 10-minute soak at 80%
# of the measured maximum rate, about 20 min). Add flags with CHAOS_FLAGS,
# e.g. CHAOS_FLAGS='--scenario redis-pause --keep'.
CHAOS_MODE  ?= short
CHAOS_FLAGS ?=
chaos: build
	./bin/ratemon chaos --mode $(CHAOS_MODE) $(CHAOS_FLAGS)

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime $(FUZZTIME) ./pipeline/event/
	$(GO) test -run '^$$' -fuzz FuzzLoadConfig -fuzztime $(FUZZTIME) ./internal/config/
	$(GO) test -run '^$$' -fuzz FuzzEscape -fuzztime $(FUZZTIME) ./internal/keyspace/

clean:
	rm -rf bin .ratemon-dev

# The README's stock-history API, enforced inline, against a running
# ratemon (make run in another terminal): 200s turn into 429s and back.
.PHONY: example test-examples
example:
	$(GO) run ./examples/stockapi

# The examples against a real daemon: the Go API, and the Node and Python
# clients of the README's "Other languages" (needs node 18+, npm, python3).
test-examples:
	cd examples/node && npm ci --no-audit --no-fund
	$(GO) test -race -count=1 -tags examples ./examples/...
