# RenderTrust — make run starts the server on the embedded default;
# make test runs every check CI runs (it starts a throwaway PostgreSQL).

GO        ?= go
BIN       := bin/rendertrust
PKGS      := ./...
BENCHTIME ?= 3s

.PHONY: build run test fmt-check vet test-race bench clean test-esdb soak crash fuzz fuzz-short

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/rendertrust

run: build
	./$(BIN) serve --dev

test: fmt-check vet build test-race fuzz-short

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	CGO_ENABLED=0 $(GO) vet $(PKGS)

# The race detector needs cgo; the shipped binary does not.
test-race:
	CGO_ENABLED=1 .ci/with-postgres .ci/with-stripe-mock .ci/with-geth $(GO) test -race -count=1 -timeout 15m $(PKGS)

# Benchmarks, printed as one table. Figures depend on the machine: the README
# says which one its table comes from. Throughput benchmarks run for
# BENCHTIME; whole-run benchmarks (1,000,000-event rebuilds, the API load
# test, gas) run once.
bench:
	@.ci/with-postgres .ci/with-geth sh -c '\
	  $(GO) test -run="^$$" -bench=. -benchtime=$(BENCHTIME) -timeout 60m ./eventstore/... ./anchor/merkle/; \
	  $(GO) test -run="^$$" -bench=. -benchtime=$(BENCHTIME) -timeout 60m ./projections/; \
	  $(GO) test -run="^$$" -bench=. -benchtime=1x -timeout 60m ./anchor/ ./cmd/rendertrust/ ./audit/...; \
	  $(GO) test -run="^$$" -bench=JobCycle -benchtime=2000x -timeout 60m ./commands/; \
	  $(GO) test -run="^$$" -bench=AccountLoad -benchtime=3s -timeout 60m ./commands/' | .ci/benchtable

clean:
	rm -rf bin

# The EventStoreDB contract suite against a real server (no server runs on the CI machine).
test-esdb:
	@test -n "$(EVENTSTORE_URL)" || { echo "set EVENTSTORE_URL to an esdb:// connection string"; exit 2; }
	EVENTSTORE_URL='$(EVENTSTORE_URL)' CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 15m \
		-run 'TestStore|TestForeignEventsGetNoPosition|TestPositionsAgree' ./eventstore/esdb/

# Campaigns (README "Testing"). soak: the concurrent model test for
# SOAK_OPS operations on each backend (make test runs a short round).
SOAK_OPS ?= 1000000
soak:
	SOAK_OPS=$(SOAK_OPS) CGO_ENABLED=1 .ci/with-postgres $(GO) test -count=1 -timeout 0 -v -run '^TestConcurrentModel$$' ./commands/

# crash: SIGKILL the built server under load CRASH_ITERATIONS times on each
# backend (make test runs 20).
CRASH_ITERATIONS ?= 1000
crash: build
	CRASH_ITERATIONS=$(CRASH_ITERATIONS) CRASH_BIN=$(CURDIR)/$(BIN) .ci/with-postgres $(GO) test -count=1 -timeout 0 -v -run '^TestCrashCampaign$$' ./cmd/rendertrust/ | grep -v 'level=INFO'

# Fuzz targets (package:FuzzName). fuzz-short runs each for FUZZ_SHORT
# (make test), fuzz for FUZZTIME; seed corpora are in testdata/fuzz/.
FUZZ_TARGETS := ./eventstore:FuzzDecodeStored ./anchor/proof:FuzzVerifyInclusion ./audit/bundle:FuzzVerify \
	./payments:FuzzWebhookDeliver ./http:FuzzBindJSON ./domain:FuzzPayloadURI ./domain:FuzzPayloadInline \
	./projections:FuzzDecodeCursor
FUZZ_SHORT ?= 2s
FUZZTIME   ?= 5m
fuzz-short:
	@set -e; for t in $(FUZZ_TARGETS); do \
	  $(GO) test -run='^$$' -fuzz="^$${t#*:}$$" -fuzztime=$(FUZZ_SHORT) $${t%%:*} >/dev/null || { echo "fuzz $$t failed"; $(GO) test -run="^$${t#*:}$$" $${t%%:*}; exit 1; }; \
	  echo "fuzz $$t: ok ($(FUZZ_SHORT))"; done
fuzz:
	$(MAKE) fuzz-short FUZZ_SHORT=$(FUZZTIME)
