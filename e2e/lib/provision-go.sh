# Builds the Go-based parts of the test ground from the Go module proxy:
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok,
# helm; for the real nodes kubelet, the volume provisioner and the pause image.
# Each build lands in $CACHE_DIR/tools/<name>-<version>/ with a stamp, so it
# runs once per version per machine. Sourced by e2e/env.
# shellcheck shell=bash

GO_TOOLS_DIR=$CACHE_DIR/tools

go_need() {
  need go "Install Go 1.24+ (https://go.dev/dl) or Debian's golang package; it builds the control plane from the Go module proxy."
}

# Wrapper module for k8s.io/kubernetes: its go.mod points staging modules at
# ./staging, so we require the published v0.x of each instead (kubernetes#79384).
# kubernetes_module SRC LOG CMD...: writes that module to SRC, importing the
# commands CMD (k8s.io/kubernetes/cmd/CMD), and resolves it.
kubernetes_module() {
  local src=$1 log=$2 v=$KUBERNETES_VERSION staging c; shift 2
  mkdir -p "$src"
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
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    for c in "$@"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$c"; done
    printf ')\n'
  } >"$src/tools.go"
  (cd "$src" && GOFLAGS=-mod=mod go mod tidy -e >"$log" 2>&1) || { tail "$log"; die "go mod tidy failed for kubernetes; read $log"; }
}

# kubernetes_build SRC OUT LOG CMD...: builds each command into OUT/bin with
# the version stamped in (else /version answers v0.0.0).
kubernetes_build() {
  local src=$1 out=$2 log=$3 v=$KUBERNETES_VERSION minor p c; shift 3
  minor=${v#v1.}; minor=${minor%%.*}
  local ld="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $p.gitVersion=$v -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  mkdir -p "$out/bin"
  for c in "$@"; do
    say "  go build $c"
    (cd "$src" && GOFLAGS=-mod=mod go build -trimpath -ldflags "$ld" -o "$out/bin/$c" k8s.io/kubernetes/cmd/$c >>"$log" 2>&1) \
      || { tail -n 30 "$log" >&2; die "building $c failed; read $log"; }
  done
}

build_kubernetes() {
  local v=$KUBERNETES_VERSION out=$GO_TOOLS_DIR/kubernetes-$KUBERNETES_VERSION
  local stamp=$out/.stamp want="kubernetes $v"
  stamp_ok "$stamp" "$want" && return 0
  go_need
  say "building kube-apiserver, kube-controller-manager, kube-scheduler, kubectl $v (first time only: 15-30 min on 2 cores)"
  local cmds="kube-apiserver kube-controller-manager kube-scheduler kubectl"
  # shellcheck disable=SC2086
  kubernetes_module "$CACHE_DIR/src/kubernetes-$v" "$LOG_DIR/build-kubernetes.log" $cmds
  # shellcheck disable=SC2086
  kubernetes_build "$CACHE_DIR/src/kubernetes-$v" "$out" "$LOG_DIR/build-kubernetes.log" $cmds
  echo "$want" >"$stamp"
}

# kubelet, for the real nodes: its own wrapper module (it needs modules the
# control plane does not, such as cadvisor and runc's libcontainer).
build_kubelet() {
  local v=$KUBERNETES_VERSION out=$GO_TOOLS_DIR/kubelet-$KUBERNETES_VERSION
  local stamp=$out/.stamp want="kubelet $v"
  stamp_ok "$stamp" "$want" && return 0
  go_need
  say "building kubelet $v (first time only: ~10 min on 2 cores)"
  kubernetes_module "$CACHE_DIR/src/kubelet-$v" "$LOG_DIR/build-kubelet.log" kubelet
  kubernetes_build "$CACHE_DIR/src/kubelet-$v" "$out" "$LOG_DIR/build-kubelet.log" kubelet
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

# The real nodes' volume provisioner (e2e/node/local-volumes), rebuilt when
# its source changes.
LOCAL_VOLUMES_ID=$(cat "$E2E_DIR/node/local-volumes/go.mod" "$E2E_DIR/node/local-volumes/go.sum" "$E2E_DIR/node/local-volumes/main.go" | sha256sum | cut -c1-12)
build_local_volumes() {
  local out=$GO_TOOLS_DIR/local-volumes-$LOCAL_VOLUMES_ID
  local stamp=$out/.stamp want="local-volumes $LOCAL_VOLUMES_ID"
  stamp_ok "$stamp" "$want" && return 0
  go_need
  say "building the node-local volume provisioner"
  mkdir -p "$out/bin"
  (cd "$E2E_DIR/node/local-volumes" && go build -trimpath -ldflags "-s -w" -o "$out/bin/local-volumes" .) >"$LOG_DIR/build-local-volumes.log" 2>&1 \
    || { tail -n 30 "$LOG_DIR/build-local-volumes.log" >&2; die "building the volume provisioner failed; read $LOG_DIR/build-local-volumes.log"; }
  echo "$want" >"$stamp"
}

# The images every node needs and no registry gives us: the pause image
# (Kubernetes' build/pause/linux/pause.c from the module source, linked
# statically), and a busybox image for the ground's network checks
# (Debian's busybox-static). Both as docker-archive tars, imported by each
# node's containerd at start.
build_node_images() {
  local out=$GO_TOOLS_DIR/pause-$PAUSE_VERSION
  local stamp=$out/.stamp want="pause $PAUSE_VERSION kubernetes $KUBERNETES_VERSION netcheck $(busybox 2>/dev/null | head -n1)"
  stamp_ok "$stamp" "$want" && return 0
  need gcc "Install gcc and libc6-dev (scripts/install-deps.sh): the pause image is compiled from source."
  need busybox "Install busybox-static (scripts/install-deps.sh): the network-check image is made of it."
  local kdir; kdir=$(GOFLAGS=-mod=mod go mod download -json k8s.io/kubernetes@"$KUBERNETES_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  local tag; tag=$(sed -n 's/^TAG ?= //p' "$kdir/build/pause/Makefile")
  [ "$tag" = "$PAUSE_VERSION" ] || say "note: Kubernetes $KUBERNETES_VERSION builds pause $tag; e2e/versions.env pins PAUSE_VERSION=$PAUSE_VERSION"
  say "building the pause image $PAUSE_VERSION from source"
  rm -rf "$out"; mkdir -p "$out/root/bin" "$out/netcheck/bin"
  gcc -Os -Wall -Werror -static -DVERSION="v$PAUSE_VERSION-videocounter" -o "$out/root/pause" "$kdir/build/pause/linux/pause.c" >"$LOG_DIR/build-pause.log" 2>&1 \
    || { cat "$LOG_DIR/build-pause.log" >&2; die "compiling pause.c failed (gcc -static needs libc6-dev); read $LOG_DIR/build-pause.log"; }
  strip "$out/root/pause"
  rmdir "$out/root/bin"
  printf '{"User":"65535:65535","Entrypoint":["/pause"]}' >"$out/pause.json"
  "$E2E_DIR/../docker/image-archive.sh" "$out/root" "$out/pause.json" "localhost/videocounter/pause:$PAUSE_VERSION" "$out/pause.tar" >>"$LOG_DIR/build-pause.log"
  cp "$(command -v busybox)" "$out/netcheck/bin/busybox"
  "$out/netcheck/bin/busybox" --install -s "$out/netcheck/bin"
  # The links busybox made point at its absolute path on this host: make them relative.
  find "$out/netcheck/bin" -type l -exec ln -sf busybox {} \;
  printf '{"User":"65534:65534","Env":["PATH=/bin"],"Entrypoint":["/bin/sleep"],"Cmd":["3600"]}' >"$out/netcheck.json"
  "$E2E_DIR/../docker/image-archive.sh" "$out/netcheck" "$out/netcheck.json" "localhost/videocounter/netcheck:busybox" "$out/netcheck.tar" >>"$LOG_DIR/build-pause.log"
  echo "$want" >"$stamp"
}

# Everything the real nodes need, built once per version.
provision_nodes() {
  build_kubernetes
  build_kubelet
  build_local_volumes
  build_node_images
  link_go_tools
}

# Links the pinned binaries into $BIN_DIR so scripts and tests find them on one path.
link_go_tools() {
  local d
  for d in kubernetes-$KUBERNETES_VERSION kubelet-$KUBERNETES_VERSION etcd-$ETCD_VERSION kwok-$KWOK_VERSION helm-$HELM_VERSION; do
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
