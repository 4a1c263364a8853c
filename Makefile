# RenderTrust — make run starts the server on the embedded default;
# make test runs every check CI runs (it starts a throwaway PostgreSQL).

GO        ?= go
BIN       := bin/rendertrust
PKGS      := ./...
BENCHTIME ?= 3s

.PHONY: build run test fmt-check vet test-race bench bench-cluster profile clean test-esdb test-python test-app frontend soak crash fuzz fuzz-short

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/rendertrust

run: build
	./$(BIN) serve --dev

test: fmt-check vet build test-race fuzz-short test-python test-app

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	CGO_ENABLED=0 $(GO) vet $(PKGS)

# The race detector needs cgo; the shipped binary does not.
test-race:
	CGO_ENABLED=1 .ci/with-postgres .ci/with-stripe-mock .ci/with-geth $(GO) test -race -count=1 -timeout 25m $(PKGS)

# The Python SDK (sdk/python) against the real binary: Debian's pytest,
# installed by .ci/pytest when missing.
test-python: build
	.ci/pytest -q -p no:cacheprovider sdk/python/tests

# The Creator app (frontend/): lint, types (app, Electron main and preload),
# unit tests, the committed bundle equals a fresh build from the lockfile, and
# the browser journeys in Debian's Chromium against the real server.
test-app: build
	cd frontend && ELECTRON_SKIP_BINARY_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
	cd frontend && npm run check && npm test && npm run build
	@git diff --quiet -- frontend/dist && test -z "$$(git status --porcelain -- frontend/dist)" || { \
	  echo "frontend/dist differs from a fresh 'npm ci && npm run build': run 'make frontend' and commit frontend/dist"; \
	  git status --short -- frontend/dist; exit 1; }
	.ci/with-chromium sh -c 'cd frontend && node e2e/journeys.mjs'

# Rebuilds the app's committed bundle (frontend/dist) from the lockfile.
frontend:
	cd frontend && ELECTRON_SKIP_BINARY_DOWNLOAD=1 npm ci --no-audit --no-fund && npm run build

# Benchmarks: every package's Go benchmarks and the API load tests
# (rendertrust loadtest on SQLite and PostgreSQL), with the machine they ran
# on, written to bench/results/<date>-<host>.txt, summarised as one table
# and compared with the previous results by benchstat. Throughput benchmarks
# run for BENCHTIME; whole-run ones once; load tests for LOADTEST_DURATION.
bench:
	@BENCHTIME=$(BENCHTIME) .ci/with-postgres .ci/with-geth bench/run

# bench-cluster: only the multi-process part of make bench, on PostgreSQL:
# one worker process with one, then three, api-only processes under the
# submission load (throughput, latency, submissions per CPU-second), and the
# failover campaign (ROLES_KILLS, default 20), into
# bench/results/<date>-<host>-cluster.txt.
bench-cluster:
	@.ci/with-postgres bench/run cluster

# profile: CPU, mutex and block profiles of the server under the submission
# load, on both SQL backends, into bench/results/profiles/.
profile:
	@.ci/with-postgres bench/profile

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
	CRASH_ITERATIONS=$(CRASH_ITERATIONS) CRASH_BIN=$(CURDIR)/$(BIN) .ci/with-postgres $(GO) test -count=1 -timeout 0 -v -run '^TestCrashCampaign$$' ./cmd/rendertrust/

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
