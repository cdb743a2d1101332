# Builds the Go-based parts of the test ground from the Go module proxy:
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok, helm.
# Each build lands in $CACHE_DIR/tools/<name>-<version>/ with a stamp, so it
# runs once per version per machine. Sourced by e2e/env.
# shellcheck shell=bash

GO_TOOLS_DIR=$CACHE_DIR/tools

go_need() {
  need go "Install Go 1.24+ (https://go.dev/dl) or Debian's golang package; it builds the control plane from the Go module proxy."
}

# Wrapper module for k8s.io/kubernetes: its go.mod points staging modules at
# ./staging, so we require the published v0.x of each instead (kubernetes#79384).
build_kubernetes() {
  local v=$KUBERNETES_VERSION out=$GO_TOOLS_DIR/kubernetes-$KUBERNETES_VERSION
  local stamp=$out/.stamp want="kubernetes $v"
  stamp_ok "$stamp" "$want" && return 0
  go_need
  say "building kube-apiserver, kube-controller-manager, kube-scheduler, kubectl $v (first time only: 15-30 min on 2 cores)"
  local src=$CACHE_DIR/src/kubernetes-$v staging minor
  mkdir -p "$src" "$out/bin"
  (cd "$src" && GOFLAGS=-mod=mod go mod download k8s.io/kubernetes@"$v") || die "could not download k8s.io/kubernetes@$v from the Go module proxy"
  local kdir; kdir=$(cd "$src" && GOFLAGS=-mod=mod go mod download -json k8s.io/kubernetes@"$v" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  staging=$(awk '/=> \.\/staging/ {print $1}' "$kdir/go.mod")
  local sv=v0.${v#v1.}
  {
    echo "module videocounter.local/kubernetes"
    echo "go $(awk '/^go / {print $2}' "$kdir/go.mod")"
    echo "require k8s.io/kubernetes $v"
    for m in $staging; do echo "replace $m => $m $sv"; done
  } >"$src/go.mod"
  cat >"$src/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  (cd "$src" && GOFLAGS=-mod=mod go mod tidy -e >"$LOG_DIR/build-kubernetes.log" 2>&1) || { tail "$LOG_DIR/build-kubernetes.log"; die "go mod tidy failed for kubernetes; read $LOG_DIR/build-kubernetes.log"; }
  minor=${v#v1.}; minor=${minor%%.*}
  local ld="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $p.gitVersion=$v -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  for c in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    say "  go build $c"
    (cd "$src" && GOFLAGS=-mod=mod go build -trimpath -ldflags "$ld" -o "$out/bin/$c" k8s.io/kubernetes/cmd/$c >>"$LOG_DIR/build-kubernetes.log" 2>&1) \
      || { tail -n 30 "$LOG_DIR/build-kubernetes.log" >&2; die "building $c failed; read $LOG_DIR/build-kubernetes.log"; }
  done
  echo "$want" >"$stamp"
}

# etcd's server module has a main package that calls etcdmain.
build_etcd() {
  local v=$ETCD_VERSION out=$GO_TOOLS_DIR/etcd-$ETCD_VERSION
  local stamp=$out/.stamp want="etcd $v"
  stamp_ok "$stamp" "$want" && return 0
  go_need
  say "building etcd $v"
  local src=$CACHE_DIR/src/etcd-$v
  mkdir -p "$src" "$out/bin"
  printf 'module videocounter.local/etcd\n\ngo 1.24\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$v" >"$src/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' >"$src/tools.go"
  (cd "$src" && GOFLAGS=-mod=mod go mod tidy -e && GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "$out/bin/etcd" go.etcd.io/etcd/server/v3) >"$LOG_DIR/build-etcd.log" 2>&1 \
    || { tail -n 30 "$LOG_DIR/build-etcd.log" >&2; die "building etcd failed; read $LOG_DIR/build-etcd.log"; }
  echo "$want" >"$stamp"
}

build_kwok() {
  local v=$KWOK_VERSION out=$GO_TOOLS_DIR/kwok-$KWOK_VERSION
  local stamp=$out/.stamp want="kwok $v"
  stamp_ok "$stamp" "$want" && return 0
  go_need
  say "building kwok $v"
  rm -rf "$out/stages"; mkdir -p "$out/bin" "$out/stages"
  (GOBIN=$out/bin go install -trimpath -ldflags "-s -w" sigs.k8s.io/kwok/cmd/kwok@"$v") >"$LOG_DIR/build-kwok.log" 2>&1 \
    || { tail -n 30 "$LOG_DIR/build-kwok.log" >&2; die "building kwok failed; read $LOG_DIR/build-kwok.log"; }
  # kwok >= 0.8 ships no built-in stages: take the "fast" ones from its module source.
  local kdir; kdir=$(go mod download -json sigs.k8s.io/kwok@"$v" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  local s f
  for s in node/fast node/heartbeat-with-lease pod/fast volume/fast; do
    [ -d "$kdir/kustomize/stage/$s" ] || die "kwok $v has no stage folder kustomize/stage/$s"
    for f in "$kdir/kustomize/stage/$s"/*.yaml; do
      case "$(basename "$f")" in
        kustomization.yaml) ;;
        storage-class.yaml) cp "$f" "$out/stages/storage-class.yaml" ;;
        *) { cat "$f"; echo "---"; } >>"$out/stages/stages.yaml" ;;
      esac
    done
  done
  echo "$want" >"$stamp"
}

build_helm() {
  local v=$HELM_VERSION out=$GO_TOOLS_DIR/helm-$HELM_VERSION
  local stamp=$out/.stamp want="helm $v k8s $KUBERNETES_VERSION"
  stamp_ok "$stamp" "$want" && return 0
  go_need
  say "building helm $v"
  mkdir -p "$out/bin"
  local minor=${KUBERNETES_VERSION#v1.}; minor=${minor%%.*}
  # Without these, helm assumes Kubernetes 1.20 for template/lint.
  local ld="-s -w -X helm.sh/helm/v3/internal/version.version=$v"
  ld="$ld -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor"
  ld="$ld -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor"
  (GOBIN=$out/bin go install -trimpath -ldflags "$ld" helm.sh/helm/v3/cmd/helm@"$v") >"$LOG_DIR/build-helm.log" 2>&1 \
    || { tail -n 30 "$LOG_DIR/build-helm.log" >&2; die "building helm failed; read $LOG_DIR/build-helm.log"; }
  echo "$want" >"$stamp"
}

# Links the pinned binaries into $BIN_DIR so scripts and tests find them on one path.
link_go_tools() {
  local d
  for d in kubernetes-$KUBERNETES_VERSION etcd-$ETCD_VERSION kwok-$KWOK_VERSION helm-$HELM_VERSION; do
    [ -d "$GO_TOOLS_DIR/$d/bin" ] && ln -sf "$GO_TOOLS_DIR/$d/bin/"* "$BIN_DIR/"
  done
  return 0
}

provision_go_tools() {
  build_etcd
  build_kwok
  build_helm
  build_kubernetes
  link_go_tools
}
