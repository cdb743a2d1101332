# videocounter: one entry point for building, testing and deploying.
#   make test     every test, against a real Kafka and kube-apiserver (started as needed)
#   make bench    throughput benchmark of the worker against a bare consumer
#   make deploy   kind cluster + images + Kafka + chart + example (needs Docker)

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

# Builds live outside the checkout so fresh clones reuse them (RocksDB and
# librdkafka take ~15 minutes to compile cold).
export CARGO_TARGET_DIR ?= $(HOME)/.cache/videocounter/target
# One Cargo profile everywhere: tests, benchmarks and images.
CARGO_PROFILE := --release
E2E := e2e/env
WITH_GROUND := source $$($(E2E) env >/dev/null; echo $${VIDEOCOUNTER_STATE:-$$HOME/.cache/videocounter/state}/env.sh) &&

.PHONY: all build test unit-test lint fmt clippy ground-up ground-down ground-status bench crds

all: build

build:
	cargo build $(CARGO_PROFILE) --workspace --bins

## test: lint, unit tests, then integration and end-to-end tests against the test ground
test: lint ground-up
	$(WITH_GROUND) cargo test $(CARGO_PROFILE) --workspace --no-fail-fast

unit-test:
	cargo test $(CARGO_PROFILE) --workspace --lib --bins

lint: fmt clippy

fmt:
	cargo fmt --all -- --check

clippy:
	cargo clippy $(CARGO_PROFILE) --workspace --all-targets -- -D warnings

ground-up:
	$(E2E) up

ground-down:
	$(E2E) down

ground-status:
	$(E2E) status
