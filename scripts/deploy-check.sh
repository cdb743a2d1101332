#!/usr/bin/env bash
# Checks, before `make deploy` builds anything, that every tool it needs is
# there and working, and says in one go what is missing and how to get it.
#
#   scripts/deploy-check.sh           everything `make deploy` needs
#   scripts/deploy-check.sh images    only what `make images` needs (Docker)
#
# Environment: DOCKER, KIND, KUBECTL, HELM (the commands `make deploy` runs).
set -uo pipefail

DOCKER=${DOCKER:-docker}
KIND=${KIND:-kind}
KUBECTL=${KUBECTL:-kubectl}
HELM=${HELM:-helm}
WHAT=${1:-deploy}
KIND_MIN_MINOR=30

problems=()
notes=()
problem() { problems+=("$1"); }

first_line() { sed -e 's/^[[:space:]]*//' -e '/^$/d' | head -n 1; }

# Docker: the CLI, a running engine, and BuildKit through buildx (the
# Dockerfile uses RUN --mount, which the legacy builder cannot run).
if ! command -v "$DOCKER" >/dev/null 2>&1; then
  problem "docker: not found. Install Docker Engine (https://docs.docker.com/engine/install/) or Docker Desktop."
else
  if ! info=$("$DOCKER" info --format '{{.ServerVersion}}' 2>&1); then
    problem "docker: the Docker engine is not running or not reachable ($(printf '%s\n' "$info" | first_line)). Start it (sudo systemctl start docker, or open Docker Desktop) and check that 'docker info' works for this user."
  elif [ "$(printf '%s' "$info" | tr -d '[:space:]')" = "" ]; then
    problem "docker: 'docker info' printed no server version. Check that 'docker info' works for this user."
  else
    # kind issue 3795: `kind load docker-image` fails with Docker's containerd
    # image store. make deploy builds without attestations and loads images
    # with `docker save` + `kind load image-archive`, which works with both stores.
    if "$DOCKER" info --format '{{json .DriverStatus}}' 2>/dev/null | grep -q 'io.containerd.snapshotter'; then
      notes+=("docker uses the containerd image store: images are loaded into kind with 'docker save' and 'kind load image-archive' (see kind issue 3795).")
    fi
  fi
  if ! buildx=$("$DOCKER" buildx version 2>&1); then
    problem "docker buildx: not available ($(printf '%s\n' "$buildx" | first_line)). The Dockerfile needs BuildKit (RUN --mount): install the buildx plugin (Debian/Ubuntu: apt-get install docker-buildx-plugin from Docker's apt repository; Docker Desktop includes it)."
  fi
fi

if [ "$WHAT" = deploy ]; then
  # kind 0.30+ (the node image of kind-config.yaml).
  if ! command -v "$KIND" >/dev/null 2>&1; then
    problem "kind: not found. Install kind 0.${KIND_MIN_MINOR}+: go install sigs.k8s.io/kind@v0.${KIND_MIN_MINOR}.0, or see https://kind.sigs.k8s.io/docs/user/quick-start/#installation."
  else
    version=$("$KIND" version 2>&1 | first_line)
    minor=$(printf '%s' "$version" | sed -n 's/.*v0\.\([0-9][0-9]*\)\..*/\1/p')
    if [ -z "$minor" ] || [ "$minor" -lt "$KIND_MIN_MINOR" ]; then
      problem "kind: '$version' is too old or unknown; kind 0.${KIND_MIN_MINOR}+ is needed: go install sigs.k8s.io/kind@v0.${KIND_MIN_MINOR}.0."
    fi
  fi
  if ! kubectl_version=$("$KUBECTL" version --client 2>&1); then
    problem "kubectl: '$KUBECTL' does not run ($(printf '%s\n' "$kubectl_version" | first_line)). Run 'e2e/env provision' (builds the pinned kubectl into ~/.cache/videocounter/bin) or install kubectl (https://kubernetes.io/docs/tasks/tools/), or set KUBECTL=."
  fi
  if ! helm_version=$("$HELM" version --template '{{.Version}}' 2>&1); then
    problem "helm: '$HELM' does not run ($(printf '%s\n' "$helm_version" | first_line)). Run 'e2e/env provision' (builds the pinned helm into ~/.cache/videocounter/bin) or install Helm 3 (https://helm.sh/docs/intro/install/), or set HELM=."
  elif [[ $helm_version != v3.* ]]; then
    problem "helm: '$HELM' is $helm_version; the chart is installed with Helm 3. Run 'e2e/env provision' (pinned helm) or install Helm 3, or set HELM=."
  fi
fi

for note in "${notes[@]}"; do
  printf '[deploy-check] note: %s\n' "$note"
done
if [ ${#problems[@]} -gt 0 ]; then
  printf '[deploy-check] make %s cannot run on this machine yet:\n' "$WHAT" >&2
  for p in "${problems[@]}"; do
    printf '  - %s\n' "$p" >&2
  done
  exit 1
fi
if [ "$WHAT" = deploy ]; then
  printf '[deploy-check] ok: docker %s with buildx, %s, kubectl %s, helm %s\n' \
    "$(printf '%s' "$info" | tr -d '[:space:]')" "$version" \
    "$(printf '%s\n' "$kubectl_version" | sed -n 's/^Client Version: //p')" "$helm_version"
else
  printf '[deploy-check] ok: docker %s with buildx\n' "$(printf '%s' "$info" | tr -d '[:space:]')"
fi
