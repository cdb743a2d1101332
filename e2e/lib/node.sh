# Real Kubernetes nodes on this machine: per node a containerd (runc, CNI
# bridge) and a kubelet registered to the test ground's kube-apiserver, so
# pods actually run. Shared by the nodes: a Linux bridge that holds the host's
# address for pods, the node addresses and the kubernetes Service address; a
# firewall chain that keeps pod traffic on that bridge; a forwarder from the
# kubernetes Service to the API server; and a provisioner of node-local
# volumes. What the nodes change on the machine itself (network, firewall,
# sysctls, cgroups, fixed host paths) is in node-host.sh; nodes_stop removes
# it all and checks that nothing is left.
# Sourced by e2e/env (before node-host.sh); needs root.
# shellcheck shell=bash

NODE_DIR=$STATE_DIR/node
# Debian's containernetworking-plugins
CNI_BIN_DIR=${VIDEOCOUNTER_CNI_BIN_DIR:-/usr/lib/cni}
NODE_COUNT=${VIDEOCOUNTER_NODES:-2}
NODE_BRIDGE=${VIDEOCOUNTER_NODE_BRIDGE:-vcbr0}
# A /24 of its own: .1 is the host's address for pods (Kafka's second
# listener), .2.. the nodes' addresses, pods get .16 and up (64 per node).
NODE_NET=${VIDEOCOUNTER_NODE_NET:-10.77.0}
HOST_IP=$NODE_NET.1
SERVICE_IP=$SERVICE_NET.1
NODE_TAINT_KEY=videocounter.io/node
NODE_LABEL=type=real
STORAGE_CLASS=node-local
PAUSE_IMAGE=localhost/videocounter/pause:$PAUSE_VERSION
NETCHECK_IMAGE=localhost/videocounter/netcheck:busybox
node_names() { local i; for i in $(seq 1 "$NODE_COUNT"); do echo "node-$i"; done; }
node_index() { echo "${1#node-}"; }
node_ip() { echo "$NODE_NET.$((1 + $(node_index "$1")))"; }
node_dir() { echo "$NODE_DIR/$1"; }
node_sock() { echo "$NODE_DIR/$1/containerd.sock"; }
node_cgroup() { echo "videocounter-$NODE_BRIDGE-$1"; }
node_kubelet_port() { echo $((KUBELET_PORT + $(node_index "$1") - 1)); }
node_healthz_port() { echo $((KUBELET_HEALTHZ_PORT + $(node_index "$1") - 1)); }
node_ctr() { local n=$1; shift; ctr --address "$(node_sock "$n")" --namespace k8s.io "$@"; }
# Pids of the shims a node's containerd started (their -address is its socket).
node_shim_pids() { pgrep -f -- "^[^ ]*containerd-shim[^ ]* .*-address $(node_sock "$1")( |\$)" || true; }

# What to do when a node part fails: the log to read, and how to clean up.
node_die() { die "$1; read $2 (then \`e2e/env down\` removes what was set up)"; }

# ---------------------------------------------------------------------------
# containerd, one per node.

containerd_config() {
  local n=$1 d; d=$(node_dir "$n")
  mkdir -p "$d/cni/net.d" "$d/cni/ipam" "$d/containerd/root" "$d/containerd/state" "$d/runc"
  local first=$((16 + ($(node_index "$n") - 1) * 64))
  cat >"$d/cni/net.d/10-bridge.conflist" <<CNI
{
  "cniVersion": "1.0.0",
  "name": "$NODE_BRIDGE-$n",
  "plugins": [{
    "type": "bridge",
    "bridge": "$NODE_BRIDGE",
    "isGateway": false,
    "isDefaultGateway": false,
    "ipMasq": false,
    "hairpinMode": true,
    "ipam": {
      "type": "host-local",
      "dataDir": "$d/cni/ipam",
      "ranges": [[{"subnet": "$NODE_NET.0/24", "rangeStart": "$NODE_NET.$first", "rangeEnd": "$NODE_NET.$((first + 63))"}]],
      "routes": [{"dst": "$SERVICE_NET.0/24", "gw": "$HOST_IP"}]
    }
  }]
}
CNI
  cat >"$d/containerd.toml" <<TOML
# containerd of test-ground node $n (e2e/lib/node.sh)
version = 2
root = "$d/containerd/root"
state = "$d/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "$d/containerd.sock"

[ttrpc]
  address = "$d/containerd.sock.ttrpc"

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "$d/containerd/opt"
  [plugins."io.containerd.grpc.v1.cri"]
    # Built from source at provisioning and imported at start: nothing is pulled.
    sandbox_image = "$PAUSE_IMAGE"
    # This VM lets nobody lower oom_score_adj; without this every sandbox
    # fails with "can't get final child's PID from pipe: EOF".
    restrict_oom_score_adj = true
    # Network namespaces under the state dir, not /run/netns.
    netns_mounts_under_state_dir = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    enable_selinux = false
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          SystemdCgroup = false
          Root = "$d/runc"
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "$CNI_BIN_DIR"
      conf_dir = "$d/cni/net.d"
TOML
}

containerd_start() {
  local n=$1 svc=containerd-$1
  pid_alive "$svc" && return 0
  containerd_config "$n"
  say "starting containerd of $n (log: $LOG_DIR/$svc.log)"
  start_bg "$svc" containerd --config "$(node_dir "$n")/containerd.toml"
  wait_for "$svc" 30 node_ctr "$n" version
  # The sandbox image every pod needs, and the image of the network checks.
  node_ctr "$n" images import "$GO_TOOLS_DIR/pause-$PAUSE_VERSION/pause.tar" >>"$LOG_DIR/$svc.log" 2>&1 \
    || node_die "could not import the pause image into $n's containerd" "$LOG_DIR/$svc.log"
  node_ctr "$n" images import "$GO_TOOLS_DIR/pause-$PAUSE_VERSION/netcheck.tar" >>"$LOG_DIR/$svc.log" 2>&1 \
    || node_die "could not import the netcheck image into $n's containerd" "$LOG_DIR/$svc.log"
}

# ---------------------------------------------------------------------------
# kubelet, one per node.

kubelet_config() {
  local n=$1 d; d=$(node_dir "$n")
  mkdir -p "$d/kubelet" "$d/pod-logs"
  cat >"$d/kubelet.yaml" <<YAML
# kubelet of test-ground node $n (e2e/lib/node.sh); each setting below was needed.
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $(node_ip "$n")
port: $(node_kubelet_port "$n")
healthzBindAddress: 127.0.0.1
healthzPort: $(node_healthz_port "$n")
readOnlyPort: 0
# Test ground only: the API server calls kubelets (logs, exec) without a
# client certificate.
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
cgroupDriver: cgroupfs
cgroupRoot: /$(node_cgroup "$n")
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://$(node_sock "$n")
# No DNS in pods: they talk to addresses.
resolvConf: ""
# Else kubelet adds KUBE-* chains to the host's firewall.
makeIPTablesUtilChains: false
podLogsDir: $d/pod-logs
registerWithTaints:
- {key: $NODE_TAINT_KEY, value: real, effect: NoSchedule}
# The images come from no registry: never garbage-collect them, and never
# evict pods because the shared disk of the machine fills.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
serializeImagePulls: false
shutdownGracePeriod: 0s
YAML
}

# Ready as the API server says, and this kubelet answering: the Node object
# keeps an earlier kubelet's Ready for a while after it is gone.
kubelet_ready() {
  port_open "$(node_healthz_port "$1")" \
    && [ "$(kubectl_ get node "$1" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

kubelet_start() {
  local n=$1 svc=kubelet-$1 d; d=$(node_dir "$1")
  pid_alive "$svc" && return 0
  port_free_any "$(node_kubelet_port "$n")" "kubelet of $n" "VIDEOCOUNTER_KUBELET_PORT (node i uses it + i-1)"
  port_free_any "$(node_healthz_port "$n")" "kubelet healthz of $n" "VIDEOCOUNTER_KUBELET_HEALTHZ_PORT (node i uses it + i-1)"
  kubelet_config "$n"
  node_cgroup_make "$n"
  say "starting kubelet $KUBERNETES_VERSION as $n on $(node_ip "$n"):$(node_kubelet_port "$n") (log: $LOG_DIR/$svc.log)"
  start_bg "$svc" "$BIN_DIR/kubelet" --config "$d/kubelet.yaml" --kubeconfig "$KUBECONFIG_PATH" \
    --hostname-override "$n" --node-ip "$(node_ip "$n")" --root-dir "$d/kubelet" --cert-dir "$d/kubelet/pki" \
    --node-labels "$NODE_LABEL,topology.kubernetes.io/zone=zone-$(node_index "$n")"
}

# ---------------------------------------------------------------------------
# Shared services: the kubernetes Service forwarder and the volume provisioner.

apiserver_proxy_start() {
  pid_alive apiserver-proxy && return 0
  if ss -Htln "src $SERVICE_IP:443" | grep -q .; then
    die "$SERVICE_IP:443 is already taken: $(ss -Htlnp "src $SERVICE_IP:443" | head -n1)"
  fi
  # Pods reach the API server at the kubernetes Service (in-cluster config);
  # no kube-proxy: this forwards that one address to the loopback port.
  start_bg apiserver-proxy socat "TCP-LISTEN:443,bind=$SERVICE_IP,fork,reuseaddr" "TCP:127.0.0.1:$APISERVER_PORT"
  wait_for apiserver-proxy 10 bash -c "exec 3<>/dev/tcp/$SERVICE_IP/443"
}

local_volumes_start() {
  kubectl_ apply -f "$E2E_DIR/node/storage-class.yaml" >/dev/null || die "could not create the $STORAGE_CLASS StorageClass"
  pid_alive local-volumes && return 0
  mkdir -p "$NODE_DIR/volumes"
  start_bg local-volumes "$GO_TOOLS_DIR/local-volumes-$LOCAL_VOLUMES_ID/bin/local-volumes" \
    --kubeconfig "$KUBECONFIG_PATH" --root "$NODE_DIR/volumes"
  sleep 0.5
  pid_alive local-volumes || node_die "the volume provisioner exited at start" "$LOG_DIR/local-volumes.log"
}

# ---------------------------------------------------------------------------
# Start and stop.

nodes_start() {
  node_preflight
  provision_nodes
  node_network_up
  if pid_alive kafka && ! grep -q "^listeners=.*BRIDGE://$HOST_IP:$KAFKA_BRIDGE_PORT" "$KAFKA_CONF"; then
    say "restarting Kafka: it needs its listener for pods on $HOST_IP:$KAFKA_BRIDGE_PORT"
    kafka_stop
  fi
  kafka_start
  pid_alive apiserver || die "the control plane is not running: e2e/env up kube first"
  node_sysctls_save
  node_host_dirs_note
  apiserver_proxy_start
  local_volumes_start
  local n
  for n in $(node_names); do containerd_start "$n"; done
  for n in $(node_names); do kubelet_start "$n"; done
  for n in $(node_names); do
    kubectl_ uncordon "$n" >/dev/null 2>&1 || true
    wait_for "kubelet-$n" 90 kubelet_ready "$n"
  done
  say "nodes ready: $(node_names | tr '\n' ' ')(pods: $NODE_NET.16+, host $HOST_IP, Kafka $HOST_IP:$KAFKA_BRIDGE_PORT)"
}

# Pods on the real nodes (or on node $1), as namespace/name.
node_pods() {
  local nodes; nodes=" ${1:-$(node_names | tr '\n' ' ')} "
  kubectl_ get pods -A --request-timeout 10s -o jsonpath='{range .items[*]}{.spec.nodeName} {.metadata.namespace}/{.metadata.name}{"\n"}{end}' 2>/dev/null \
    | awk -v nodes="$nodes" 'index(nodes, " " $1 " ") { print $2 }'
}

# Removes the pods from the nodes while kubelet runs, so it tears each one
# down through CNI (veth, address lease, mounts) as it would in a cluster.
nodes_drain() {
  pid_alive apiserver || return 0
  local n alive=0
  for n in $(node_names); do pid_alive "kubelet-$n" && alive=1; done
  [ "$alive" = 1 ] || return 0
  for n in $(node_names); do kubectl_ cordon "$n" >/dev/null 2>&1 || true; done
  local pods i; pods=$(node_pods)
  [ -n "$pods" ] || return 0
  say "deleting $(echo "$pods" | wc -l) pods from the nodes"
  echo "$pods" | while IFS=/ read -r ns name; do
    kubectl_ delete pod -n "$ns" "$name" --grace-period=1 --wait=false >/dev/null 2>&1 || true
  done
  for i in $(seq 1 120); do
    [ -z "$(node_pods)" ] && return 0
    sleep 0.5
  done
  say "pods still on the nodes after 60 s; cleaning up by hand"
}

# Kills leftover shims of a node's containerd, and whatever still runs in
# its cgroups.
node_kill_leftovers() {
  local pid
  for pid in $(node_shim_pids "$1"); do kill -KILL "$pid" 2>/dev/null || true; done
  node_cgroup_remove "$1"
}

# Unmounts everything under DIR, deepest first.
unmount_under() {
  local dir=$1 m
  for m in $(awk -v d="$dir/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || say "could not unmount $m"
  done
}

nodes_stop() {
  [ -d "$NODE_DIR" ] || return 0
  nodes_drain
  local n
  for n in $(node_names); do stop_bg "kubelet-$n"; done
  if pid_alive apiserver; then
    for n in $(node_names); do kubectl_ delete node "$n" --ignore-not-found --wait=false >/dev/null 2>&1 || true; done
  fi
  for n in $(node_names); do
    # Its containers, to find their entries in the CNI result cache later.
    pid_alive "containerd-$n" && node_ctr "$n" containers ls -q >>"$(node_dir "$n")/container-ids" 2>/dev/null
    stop_bg "containerd-$n"
    node_kill_leftovers "$n"
  done
  stop_bg local-volumes
  stop_bg apiserver-proxy
  unmount_under "$NODE_DIR"
  for n in $(node_names); do
    rm -rf "$(node_dir "$n")/cni/ipam" "$(node_dir "$n")/containerd/state" "$(node_dir "$n")/runc"
    node_cgroup_remove "$n"
  done
  node_host_dirs_clean
  node_network_down
  node_sysctls_restore
  local left; left=$(node_leftovers)
  [ -z "$left" ] || die "e2e/env down left these behind (remove them by hand, and tell us):
$left"
}

# Everything of the nodes that should be gone after nodes_stop, one per line.
node_leftovers() {
  local n s r
  for s in apiserver-proxy local-volumes $(for n in $(node_names); do echo "kubelet-$n containerd-$n"; done); do
    pid_alive "$s" && echo "process: $s (pid $(cat "$RUN_DIR/$s.pid"))"
  done
  for n in $(node_names); do
    node_shim_pids "$n" | sed "s|^|process: shim of $n, pid |"
    for r in $(cgroup_roots); do [ -d "$r/$(node_cgroup "$n")" ] && echo "cgroup: $r/$(node_cgroup "$n")"; done
  done
  awk -v d="$NODE_DIR/" 'index($5, d) == 1 { print "mount: " $5 }' /proc/self/mountinfo
  ip link show "$NODE_BRIDGE" >/dev/null 2>&1 && echo "interface: $NODE_BRIDGE"
  iptables -w -S 2>/dev/null | grep -F -- "VC-$NODE_BRIDGE-" | sed 's/^/firewall: /'
  find /var/log/containers -maxdepth 1 -type l -lname "$NODE_DIR/*" 2>/dev/null | sed 's/^/log link: /'
  ls -d /var/lib/cni/results/"$NODE_BRIDGE"-* 2>/dev/null | sed 's/^/CNI cache: /'
  [ -f "$NODE_DIR/host-dirs" ] && sed 's/^/host directory: /' "$NODE_DIR/host-dirs" | while read -r l; do [ -e "${l#host directory: }" ] && echo "$l"; done
  [ -f "$NODE_DIR/sysctls.saved" ] && echo "host settings not restored: $NODE_DIR/sysctls.saved"
  return 0
}

# ---------------------------------------------------------------------------
# Images and status.

# node_load_images TAR...: imports images into every running node.
node_load_images() {
  local n t loaded=0
  for n in $(node_names); do
    pid_alive "containerd-$n" || continue
    for t in "$@"; do
      node_ctr "$n" images import "$t" >>"$LOG_DIR/containerd-$n.log" 2>&1 \
        || node_die "importing $t into $n failed" "$LOG_DIR/containerd-$n.log"
    done
    loaded=$((loaded + 1))
  done
  [ "$loaded" -gt 0 ] || die "no node is running: e2e/env up node first"
  say "loaded $(printf '%s ' "${@##*/}")into $loaded node(s)"
}

rss_mib() { ps -o rss= -p "$1" 2>/dev/null | awk '{ s += $1 } END { printf "%d", s / 1024 }'; }

nodes_status() {
  [ -d "$NODE_DIR" ] || { echo "nodes:      none (e2e/env up node)"; return 0; }
  local n pid shims pods mem ready
  for n in $(node_names); do
    if ! pid_alive "kubelet-$n"; then printf '%-20s stopped\n' "$n"; continue; fi
    ready=$(kubectl_ get node "$n" --request-timeout 5s -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null || echo '?')
    shims=$(node_shim_pids "$n" | tr '\n' ',' | sed 's/,$//')
    pods=$(node_pods "$n" | wc -l)
    # Memory of the node's pods: their cgroup's usage (page cache included).
    mem=$(cat "/sys/fs/cgroup/memory/$(node_cgroup "$n")/memory.usage_in_bytes" 2>/dev/null || cat "/sys/fs/cgroup/$(node_cgroup "$n")/memory.current" 2>/dev/null || echo 0)
    printf '%-20s Ready=%-5s %s:%s  kubelet rss %4d MiB, containerd rss %3d MiB, %2d shims rss %3d MiB, %2d pods using %5d MiB\n' \
      "$n" "$ready" "$(node_ip "$n")" "$(node_kubelet_port "$n")" \
      "$(rss_mib "$(cat "$RUN_DIR/kubelet-$n.pid")")" "$(rss_mib "$(cat "$RUN_DIR/containerd-$n.pid" 2>/dev/null)")" \
      "$(echo "$shims" | tr ',' '\n' | grep -c .)" "$(rss_mib "${shims:-0}")" "$pods" $((mem / 1048576))
  done
  for s in apiserver-proxy local-volumes; do
    if pid_alive "$s"; then printf '%-20s running  pid %-8s rss %6d MiB\n' "$s" "$(cat "$RUN_DIR/$s.pid")" "$(rss_mib "$(cat "$RUN_DIR/$s.pid")")"; fi
  done
  echo "pods reach: $HOST_IP (Kafka $HOST_IP:$KAFKA_BRIDGE_PORT), the API server at $SERVICE_IP:443; StorageClass $STORAGE_CLASS"
}
