# A Kubernetes control plane as local processes: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, and kwok playing the nodes.
# Sourced by e2e/env.
# shellcheck shell=bash

KUBE_DIR=$STATE_DIR/kube
PKI_DIR=$KUBE_DIR/pki
KWOK_DIR=$GO_TOOLS_DIR/kwok-$KWOK_VERSION

kubectl_() { "$BIN_DIR/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }

# Certificates, service-account keys, an admin token and the kubeconfig: made once per state dir.
kube_pki() {
  [ -f "$KUBECONFIG_PATH" ] && return 0
  need openssl "Install openssl (Debian: apt-get install openssl); it makes the control plane's certificates."
  mkdir -p "$PKI_DIR"
  (
    cd "$PKI_DIR"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 -subj "/CN=videocounter-test-ca" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr -subj "/CN=kube-apiserver" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,IP:%s,' "$SERVICE_NET.1" >san.ext
    printf 'DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\n' >>san.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out apiserver.crt -days 3650 -extfile san.ext 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    echo "$(openssl rand -hex 16),admin,admin,system:masters" >tokens.csv
  ) || die "making certificates in $PKI_DIR failed"
  local token; token=$(cut -d, -f1 "$PKI_DIR/tokens.csv")
  cat >"$KUBECONFIG_PATH" <<KCFG
apiVersion: v1
kind: Config
clusters:
- name: videocounter-test
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority: $PKI_DIR/ca.crt
users:
- name: admin
  user:
    token: $token
contexts:
- name: videocounter-test
  context: {cluster: videocounter-test, user: admin, namespace: default}
current-context: videocounter-test
KCFG
}

etcd_start() {
  pid_alive etcd && return 0
  port_free "$ETCD_PORT" etcd; port_free "$ETCD_PEER_PORT" "etcd peer"
  mkdir -p "$KUBE_DIR/etcd"
  say "starting etcd $ETCD_VERSION on 127.0.0.1:$ETCD_PORT"
  start_bg etcd "$BIN_DIR/etcd" --name test --data-dir "$KUBE_DIR/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "test=http://127.0.0.1:$ETCD_PEER_PORT" --unsafe-no-fsync --quota-backend-bytes 4294967296 \
    --log-level warn
  wait_for etcd 30 curl -sf "http://127.0.0.1:$ETCD_PORT/health"
}

apiserver_start() {
  local args=(
    --etcd-servers "http://127.0.0.1:$ETCD_PORT"
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$APISERVER_PORT"
    --cert-dir "$PKI_DIR" --tls-cert-file "$PKI_DIR/apiserver.crt" --tls-private-key-file "$PKI_DIR/apiserver.key"
    --client-ca-file "$PKI_DIR/ca.crt" --token-auth-file "$PKI_DIR/tokens.csv"
    --authorization-mode RBAC --allow-privileged=true
    --service-cluster-ip-range "$SERVICE_NET.0/24" --endpoint-reconciler-type none
    --service-account-issuer https://kubernetes.default.svc.cluster.local
    --service-account-key-file "$PKI_DIR/sa.pub" --service-account-signing-key-file "$PKI_DIR/sa.key"
    # Real nodes: call kubelets (logs, exec) at their address, not by a DNS
    # name; and let a namespace put its pods on them (node selector and
    # toleration from namespace annotations, see e2e/lib/node.sh).
    --kubelet-preferred-address-types InternalIP
    --enable-admission-plugins PodNodeSelector,PodTolerationRestriction
    --profiling=false --v 1
  )
  if pid_alive apiserver; then
    # Running with other flags (an older checkout started it): restart it.
    printf '%s\n' "${args[@]}" | cmp -s - "$RUN_DIR/apiserver.args" && return 0
    say "restarting kube-apiserver: its flags changed"
    stop_bg apiserver
  fi
  port_free "$APISERVER_PORT" kube-apiserver
  say "starting kube-apiserver $KUBERNETES_VERSION on https://127.0.0.1:$APISERVER_PORT"
  printf '%s\n' "${args[@]}" >"$RUN_DIR/apiserver.args"
  start_bg apiserver "$BIN_DIR/kube-apiserver" "${args[@]}"
  wait_for apiserver 90 kubectl_ get --raw /readyz
}

kcm_start() {
  pid_alive controller-manager && return 0
  port_free "$KCM_PORT" kube-controller-manager
  say "starting kube-controller-manager"
  start_bg controller-manager "$BIN_DIR/kube-controller-manager" \
    --kubeconfig "$KUBECONFIG_PATH" --leader-elect=false \
    --bind-address 127.0.0.1 --secure-port "$KCM_PORT" \
    --root-ca-file "$PKI_DIR/ca.crt" --service-account-private-key-file "$PKI_DIR/sa.key" \
    --controllers '*,-nodeipam,-service-lb-controller,-cloud-node-lifecycle' \
    --concurrent-statefulset-syncs 5 --concurrent-gc-syncs 20 --profiling=false --v 1
  wait_for controller-manager 60 curl -skf "https://127.0.0.1:$KCM_PORT/healthz"
}

scheduler_start() {
  pid_alive scheduler && return 0
  port_free "$SCHEDULER_PORT" kube-scheduler
  say "starting kube-scheduler"
  start_bg scheduler "$BIN_DIR/kube-scheduler" \
    --kubeconfig "$KUBECONFIG_PATH" --leader-elect=false \
    --bind-address 127.0.0.1 --secure-port "$SCHEDULER_PORT" --profiling=false --v 1
  wait_for scheduler 60 curl -skf "https://127.0.0.1:$SCHEDULER_PORT/healthz"
}

kwok_start() {
  pid_alive kwok && return 0
  port_free "$KWOK_PORT" kwok
  say "starting kwok $KWOK_VERSION (fake nodes)"
  # Node Leases are the heartbeat the node lifecycle controller watches: without
  # them every node turns NotReady ~50 s after its last status update and all its
  # pods are marked unready, which breaks anything that counts Ready pods.
  start_bg kwok "$BIN_DIR/kwok" --kubeconfig "$KUBECONFIG_PATH" \
    --config "$KWOK_DIR/stages/stages.yaml" \
    --manage-all-nodes=false --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
    --server-address "127.0.0.1:$KWOK_PORT" --cidr 10.244.0.1/16 --node-ip 10.200.0.1 \
    --node-lease-duration-seconds 40
  wait_for kwok 60 curl -sf "http://127.0.0.1:$KWOK_PORT/healthz"
}

# The default StorageClass and the fake nodes; applied on every `up` (idempotent).
kube_nodes() {
  kubectl_ apply -f "$KWOK_DIR/stages/storage-class.yaml" >/dev/null || die "could not create the kwok-volume StorageClass"
  kubectl_ apply -f "$E2E_DIR/kube/nodes.yaml" >/dev/null || die "could not create the fake nodes"
  wait_for kwok 60 kube_nodes_ready
}

kube_nodes_ready() {
  [ "$(kubectl_ get nodes -l type=kwok -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c True)" -ge 3 ]
}

kube_start() {
  kube_pki
  etcd_start
  apiserver_start
  kcm_start
  scheduler_start
  kwok_start
  kube_nodes
}

kube_stop() {
  local s
  for s in kwok scheduler controller-manager apiserver etcd; do stop_bg "$s"; done
}
