#!/usr/bin/env bash
# Installs the Prometheus Operator CRDs that the chart's optional objects use
# (ServiceMonitor, PodMonitor, PrometheusRule) into the test ground, so that
# `kubectl apply --dry-run=server` validates them against their real schemas.
# They come from the prometheus-operator Go module at the version pinned in
# e2e/versions.env (Go module cache; downloaded once). Idempotent; prints the
# CRD names.
set -euo pipefail
# shellcheck source=../lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

need go "Install Go; the CRDs come from the Go module proxy."
module=github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION
dir=$(cd "$CACHE_DIR" && GOFLAGS=-mod=mod go mod download -json "$module" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
[ -n "$dir" ] && [ -d "$dir" ] || die "could not download $module from the Go module proxy"

files=()
for kind in servicemonitors podmonitors prometheusrules; do
  f=$dir/example/prometheus-operator-crd/monitoring.coreos.com_$kind.yaml
  [ -f "$f" ] || die "$f is missing from $module"
  files+=(-f "$f")
done
# Server-side: these CRDs are too big for the last-applied annotation.
"$BIN_DIR/kubectl" --kubeconfig "$KUBECONFIG_PATH" apply --server-side --force-conflicts \
  --field-manager videocounter-e2e "${files[@]}" >/dev/null
"$BIN_DIR/kubectl" --kubeconfig "$KUBECONFIG_PATH" wait --for condition=Established --timeout 60s \
  crd/servicemonitors.monitoring.coreos.com crd/podmonitors.monitoring.coreos.com \
  crd/prometheusrules.monitoring.coreos.com
