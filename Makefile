# videocounter: one entry point for building, testing and deploying.
#   make test     every test, against a real Kafka, kube-apiserver and real nodes (started as needed)
#   make bench    throughput benchmark of the worker against a bare consumer
#   make deploy   kind cluster + images + Kafka + chart + example (needs Docker)
#   make local    Kafka, two workers and the gateway as local processes; prints the dashboard URL

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

# Builds live outside the checkout so fresh clones reuse them (RocksDB and
# librdkafka take ~15 minutes to compile cold).
export CARGO_TARGET_DIR ?= $(HOME)/.cache/videocounter/target
# One Cargo profile everywhere: tests, benchmarks and images.
CARGO_PROFILE := --release
E2E := e2e/env
# The ground's exports (Kafka address, KUBECONFIG, nodes), from wherever VIDEOCOUNTER_CACHE/STATE put it.
WITH_GROUND := eval "$$($(E2E) env)" &&

.PHONY: all build test unit-test lint fmt clippy hakari ground-up ground-down ground-status bench chaos crds local
.PHONY: helm-lint images node-images kind-cluster kind-load deploy undeploy docs deploy-check

all: build

build:
	cargo build $(CARGO_PROFILE) --workspace --bins

## test: lint, unit tests, then integration and end-to-end tests against the test ground
# (the ground first: it provides helm for `helm-lint`; build before the tests:
# the gateway's browser test and the chart test run the binaries, and the
# real-node tests run the images made of them)
test: ground-up lint build node-images
	$(WITH_GROUND) cargo run $(CARGO_PROFILE) -q -p videocounter-e2e --bin prune-test-topics
	$(WITH_GROUND) cargo test $(CARGO_PROFILE) --workspace --no-fail-fast

## chaos: the long fault test (1M JSON records over 4 minutes, 20 SIGKILLs, a wipe, a
## SIGTERM, a broker restart) with both group protocols; `make test` runs a short
## form. CHAOS_SEED=<n> replays a run; CHAOS_RECORDS, CHAOS_SECONDS, CHAOS_KILLS,
## CHAOS_WORKERS and CHAOS_IDS override the figures.
chaos: ground-up build
	$(WITH_GROUND) cargo run $(CARGO_PROFILE) -q -p videocounter-e2e --bin prune-test-topics
	$(WITH_GROUND) CHAOS_PROFILE=long cargo test $(CARGO_PROFILE) -p videocounter-worker --test chaos -- --nocapture chaos_with

## bench: worker throughput against a bare consumer of the same topic (5M events),
## and the worker's peak RSS with 1M distinct ids; prints the figures (BENCH_ARGS to tune)
BENCH_ARGS ?=
bench: ground-up build
	$(WITH_GROUND) cargo run $(CARGO_PROFILE) -q -p videocounter-e2e --bin prune-test-topics
	$(WITH_GROUND) cargo run $(CARGO_PROFILE) -q -p videocounter-worker --example bench -- $(BENCH_ARGS)

unit-test:
	cargo test $(CARGO_PROFILE) --workspace --lib --bins

lint: fmt hakari clippy helm-lint

## hakari: the workspace-hack crate matches the dependency graph (one feature set for every command)
hakari:
	cargo hakari verify

fmt:
	cargo fmt --all -- --check

clippy:
	cargo clippy $(CARGO_PROFILE) --workspace --all-targets -- -D warnings

ground-up:
	$(E2E) up

## node-images: the worker, operator and gateway images, made without Docker
## from the release binaries (docker/local-images.sh), loaded into every node
node-images: build
	$(WITH_GROUND) docker/local-images.sh "$$VIDEOCOUNTER_NODE_IMAGES_DIR"
	$(WITH_GROUND) $(E2E) load-images "$$VIDEOCOUNTER_NODE_IMAGES_DIR"/*.tar

ground-down:
	$(E2E) down

ground-status:
	$(E2E) status

## local: Kafka, two workers and the gateway as local processes, generator on (Ctrl-C stops)
local:
	scripts/local.sh

## crds: regenerate the CRD from the operator's types, into crds/ and the chart's crds/
crds:
	cargo run $(CARGO_PROFILE) -q -p videocounter-operator -- crd > crds/videocounter.yaml.tmp
	mv crds/videocounter.yaml.tmp crds/videocounter.yaml
	cp crds/videocounter.yaml $(CHART)/crds/videocounter.yaml

## docs: regenerate README.md's configuration reference from the CRD
docs:
	VIDEOCOUNTER_UPDATE_DOCS=1 cargo test $(CARGO_PROFILE) -p videocounter-e2e --test packaging -- docs::

## helm-lint: the chart with default values and with every optional part on
helm-lint:
	$(HELM) lint --strict $(CHART)
	$(HELM) lint --strict $(CHART) --set watchNamespace=default,replicaCount=2 \
	  --set metrics.serviceMonitor.enabled=true,metrics.podMonitor.enabled=true \
	  --set prometheusRule.enabled=true,grafanaDashboard.enabled=true

# ---------------------------------------------------------------------------
# Deployment on kind: `kind create cluster && make deploy` (or just `make
# deploy`: it creates the cluster from kind-config.yaml if there is none).
# Needs a running Docker engine with buildx, kind 0.30+, kubectl and Helm 3;
# `make deploy-check` (the first step of deploy) says what is missing.

CHART := charts/videocounter-operator
# The pinned kubectl and helm the test ground builds (e2e/versions.env), when
# present, so deploy runs the versions the tests ran; else the ones on PATH.
GROUND_BIN := $(HOME)/.cache/videocounter/bin
HELM ?= $(if $(wildcard $(GROUND_BIN)/helm),$(GROUND_BIN)/helm,$(shell command -v helm 2>/dev/null || echo helm))
KUBECTL ?= $(if $(wildcard $(GROUND_BIN)/kubectl),$(GROUND_BIN)/kubectl,$(shell command -v kubectl 2>/dev/null || echo kubectl))
DOCKER ?= docker
KIND ?= kind
# `kind create cluster` names its cluster "kind".
KIND_CLUSTER ?= kind
KUBE_CONTEXT := kind-$(KIND_CLUSTER)
# Images are tagged with the names and version the chart, the operator and
# deploy/gateway.yaml use by default, so nothing needs overriding; kind loads
# them into its nodes and IfNotPresent never pulls them.
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
IMAGE_REGISTRY ?= ghcr.io/videocounter
IMAGE_TAG ?= $(VERSION)
IMAGES := worker operator gateway
OPERATOR_NAMESPACE ?= videocounter-system
RELEASE ?= videocounter

## deploy-check: every tool deploy needs, checked before anything is built
deploy-check:
	DOCKER='$(DOCKER)' KIND='$(KIND)' KUBECTL='$(KUBECTL)' HELM='$(HELM)' scripts/deploy-check.sh deploy

## images: build the worker, operator and gateway images (docker/Dockerfile)
# (no provenance attestation: a single-platform image that `docker save` exports
# whole, whichever image store Docker uses)
images:
	DOCKER='$(DOCKER)' scripts/deploy-check.sh images
	for image in $(IMAGES); do \
	  $(DOCKER) build --provenance=false -f docker/Dockerfile --target $$image -t $(IMAGE_REGISTRY)/$$image:$(IMAGE_TAG) . ; \
	done

## kind-cluster: create the kind cluster from kind-config.yaml unless it exists
kind-cluster: deploy-check
	if $(KIND) get clusters | grep -qx '$(KIND_CLUSTER)'; then \
	  echo "kind cluster $(KIND_CLUSTER) exists"; \
	else \
	  $(KIND) create cluster --name $(KIND_CLUSTER) --config kind-config.yaml --wait 120s; \
	fi

## kind-load: copy the images into the kind nodes, through an archive: `kind load
# docker-image` fails with Docker's containerd image store (kind issue 3795)
kind-load: deploy-check images kind-cluster
	archive=$$(mktemp --suffix .tar) && trap 'rm -f "$$archive"' EXIT && \
	for image in $(IMAGES); do \
	  $(DOCKER) save -o "$$archive" $(IMAGE_REGISTRY)/$$image:$(IMAGE_TAG) && \
	  $(KIND) load image-archive --name $(KIND_CLUSTER) "$$archive" || exit 1; \
	done

## deploy: cluster, images, Kafka, the operator chart, the example VideoCounter and the gateway
deploy: deploy-check kind-load
	$(KUBECTL) --context $(KUBE_CONTEXT) apply -f deploy/kafka.yaml
	$(KUBECTL) --context $(KUBE_CONTEXT) -n kafka rollout status statefulset/kafka --timeout 300s
	$(KUBECTL) --context $(KUBE_CONTEXT) create namespace $(OPERATOR_NAMESPACE) --dry-run=client -o yaml \
	  | $(KUBECTL) --context $(KUBE_CONTEXT) apply -f -
	$(KUBECTL) --context $(KUBE_CONTEXT) label namespace $(OPERATOR_NAMESPACE) --overwrite \
	  pod-security.kubernetes.io/enforce=restricted
	$(HELM) --kube-context $(KUBE_CONTEXT) upgrade --install $(RELEASE) $(CHART) \
	  --namespace $(OPERATOR_NAMESPACE) \
	  --set image.repository=$(IMAGE_REGISTRY)/operator,image.tag=$(IMAGE_TAG) \
	  --set workerImage.repository=$(IMAGE_REGISTRY)/worker,workerImage.tag=$(IMAGE_TAG) \
	  --wait --timeout 300s
	$(KUBECTL) --context $(KUBE_CONTEXT) apply -f examples/counter.yaml
	$(KUBECTL) --context $(KUBE_CONTEXT) apply -f deploy/gateway.yaml
	$(KUBECTL) --context $(KUBE_CONTEXT) wait videocounter/likes --for condition=Ready --timeout 300s
	$(KUBECTL) --context $(KUBE_CONTEXT) rollout status deployment/videocounter-gateway --timeout 120s
	@echo
	@echo "videocounter runs in kind cluster $(KIND_CLUSTER) (kubectl context $(KUBE_CONTEXT)):"
	@echo "  kubectl get videocounters        # the example, 'likes'"
	@echo "  dashboard and ingest API:        http://localhost:8090"
	@echo "  workers' API:                    http://localhost:8080/metrics"
	@echo "  Kafka from the host:             localhost:9094"
	@echo "(the localhost ports need a cluster created from kind-config.yaml; otherwise"
	@echo " kubectl port-forward svc/videocounter-gateway 8090)"

## undeploy: remove what deploy installed, in reverse order (the cluster stays:
## `kind delete cluster --name $(KIND_CLUSTER)` removes it)
undeploy:
	$(KUBECTL) --context $(KUBE_CONTEXT) delete --ignore-not-found -f deploy/gateway.yaml
	$(KUBECTL) --context $(KUBE_CONTEXT) delete --ignore-not-found --wait -f examples/counter.yaml
	$(HELM) --kube-context $(KUBE_CONTEXT) uninstall $(RELEASE) --namespace $(OPERATOR_NAMESPACE) --ignore-not-found --wait
	$(KUBECTL) --context $(KUBE_CONTEXT) delete --ignore-not-found namespace $(OPERATOR_NAMESPACE)
	$(KUBECTL) --context $(KUBE_CONTEXT) delete --ignore-not-found crd videocounters.videocounter.io
	$(KUBECTL) --context $(KUBE_CONTEXT) delete --ignore-not-found -f deploy/kafka.yaml
