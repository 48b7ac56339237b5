# Atelier's commands. The two that matter:
#   make serve   set up, build the embedded models and serve them on :8500
#   make test    set up, build the models and run every test
# Both install what they need (see scripts/setup.sh) and are safe to rerun.

SHELL := /bin/bash
TFENV := . scripts/tfenv.sh &&
PY := .venv/bin/python
GO_PACKAGES := ./...
export CI ?=

.PHONY: all setup models retrain build serve demo screenshots dashboard-cost test test-cgo-free test-go test-race test-cluster test-python lint proto proto-check bench bench-streams bench-reload bench-security bench-v2 bench-overhead bench-gc-memory bench-cpu-options bench-int8 soak clean fuzz

all: build

setup:
	@scripts/setup.sh

# The embedded models are committed (docs/MODELS.md). `make models` retrains only a
# model whose training code, settings or data changed; under CI=true it trains
# nothing and fails instead, naming the model and the command to run.
models: setup
	@echo "==> embedded models (savedmodels/)"
	@cd savedmodels && TF_CPP_MIN_LOG_LEVEL=2 ../$(PY) -m atelier_train.build $(if $(filter true,$(CI)),--check)

# Rebuild all three embedded models from scratch and check them against their gates
# (about an hour on 2 cores); commit savedmodels/ afterwards. CI does not run it.
retrain: setup
	@echo "==> retraining the embedded models from scratch"
	@cd savedmodels && TF_CPP_MIN_LOG_LEVEL=2 ../$(PY) -m atelier_train.build --retrain

build: setup
	@echo "==> go build (bin/)"
	@$(TFENV) go build -o bin/ ./server/cmd/atelierd ./client/cmd/atelier

serve: models build
	@echo "==> serving on $${ATELIER_LISTEN:-:8500} (Ctrl-C to stop)"
	@./bin/atelierd --model-dir savedmodels --metrics-listen "$${ATELIER_METRICS_LISTEN:-:9500}"

demo: models build
	@scripts/demo.sh

# The dashboard's screenshots in docs/images/, taken by its browser tests.
screenshots: models
	@$(TFENV) ATELIER_SCREENSHOTS=$(CURDIR)/docs/images go test -count=1 -run 'TestDashboardInBrowser|TestPageShowsProblems' -v ./client/dashboard/

# What the dashboard costs with three cameras at 10 frames/s (bench/dashboard-cost.txt).
dashboard-cost: models build
	@bench/dashboard.sh

test: models build lint proto-check test-cgo-free test-go test-race test-cluster test-python fuzz
	@echo "==> all tests passed"

test-go:
	@echo "==> go test"
	@$(TFENV) go vet $(GO_PACKAGES) && go test -count=1 -timeout 30m $$(go list $(GO_PACKAGES) | grep -v /deploy/clustertest$$)

# The data race detector over the packages whose goroutines the unit, client and
# dashboard tests drive (the core, the server on fakes, the clients against real
# servers); the binaries' own end-to-end tests stay in test-go.
test-race:
	@echo "==> go test -race"
	@$(TFENV) go test -race -count=1 -timeout 10m ./internal/... ./server ./client/...

# Three replicas on 127.0.0.2-4 behind an in-test DNS server, the Go client, the CLI
# and the Python client under load while replicas drain, die and come back, and
# haproxy L7 against L4. The "measured:" lines are the numbers in docs/DEPLOY.md.
test-cluster: models build
	@echo "==> test-cluster (deploy/clustertest)"
	@$(TFENV) go test -count=1 -v -timeout 5m ./deploy/clustertest/

test-cgo-free:
	@echo "==> cgo-free: every package but internal/tf builds and unit-tests without TensorFlow (live test files, go:build cgo, left out)"
	@scripts/check-cgo-free.sh

test-python:
	@echo "==> pytest"
	@$(TFENV) cd savedmodels && ../$(PY) -m pytest -q tests
	@$(TFENV) $(PY) -m pytest -q -s client/python/tests

lint:
	@echo "==> lint: buf lint, gofmt"
	@$(TFENV) buf lint
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }

proto: setup
	@echo "==> generating Go and Python stubs"
	@$(TFENV) buf generate
	@scripts/gen-python.sh

proto-check: setup
	@echo "==> generated code is current"
	@scripts/check-generated.sh

# Every fuzz target for FUZZTIME each (default 15s; make fuzz FUZZTIME=5m for longer).
fuzz:
	@echo "==> fuzz"
	@scripts/fuzz.sh

bench: setup build
	@bench/run.sh
	@bench/security.sh
	@bench/v2.sh

# The cost of TLS and of token checks, side by side (part of make bench).
bench-security: models build
	@bench/security.sh

# The Open Inference Protocol's ModelInfer beside native Classify (docs/INFERENCE.md).
bench-v2: models build
	@bench/v2.sh

bench-overhead: models
	@bench/overhead.sh

bench-gc-memory: models
	@bench/gcmemory.sh

# TensorFlow's CPU settings (threads, XLA, oneDNN) against batch size (docs/BENCHMARKS.md).
bench-cpu-options: models
	@bench/cpu-options.sh

# int8 for the embedded classifier, measured, not shipped: its own INC venv under
# .build/int8, accuracy against the bf16 gate, speed beside fp32 and bf16
# (docs/BENCHMARKS.md; INT8_CAPI=1 adds the C API check). Not part of make bench.
bench-int8: setup
	@bench/int8/run.sh

bench-streams: models
	@bench/streams/run.sh

bench-reload: models
	@bench/reload/run.sh

soak: models build
	@bench/soak.sh

clean:
	rm -rf bin .build
