# What the real nodes (node.sh) change on the machine, and how it is put
# back: preflight checks, the bridge and its addresses, the firewall chains,
# the sysctls kubelet rewrites, the nodes' cgroups, and the fixed host paths
# containerd, CNI and kubelet write to. Everything is keyed on the bridge
# name. Sourced by e2e/env after node.sh, which defines the names used here.
# shellcheck shell=bash

# Host settings kubelet changes on start (it sets what it needs for pods):
# saved before the first node starts, put back by nodes_stop.
NODE_SYSCTLS="vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys kernel.keys.root_maxbytes net.ipv4.ip_forward"
FW_CHAIN_IN=VC-$NODE_BRIDGE-IN
FW_CHAIN_FWD=VC-$NODE_BRIDGE-FWD
# Fixed paths containerd, CNI and kubelet use whatever they are told: shim
# sockets, CNI result caches, kubelet's device-plugin socket, container log
# links. Removed by nodes_stop if the first node start created them; else
# only our entries in them are.
NODE_HOST_DIRS="/run/containerd /var/lib/cni /var/lib/kubelet /var/log/containers"

# ---------------------------------------------------------------------------
# Checks before anything is changed: each failure says what is wrong and what to do.

node_preflight() {
  [ "$(id -u)" -eq 0 ] || die "real nodes need root (bridge, firewall, cgroups, mounts). Run as root, or \`e2e/env up kafka kube\` for a ground without nodes."
  [ "$NODE_COUNT" -ge 1 ] && [ "$NODE_COUNT" -le 3 ] || die "VIDEOCOUNTER_NODES=$NODE_COUNT: 1 to 3 nodes fit the node address plan"
  local deps="scripts/install-deps.sh installs it (Debian: apt-get install containerd runc containernetworking-plugins iptables iproute2 socat)"
  local t
  for t in containerd containerd-shim-runc-v2 runc ctr ip iptables socat; do need "$t" "$deps"; done
  for t in bridge host-local loopback; do
    [ -x "$CNI_BIN_DIR/$t" ] || die "CNI plugin $CNI_BIN_DIR/$t is missing. $deps"
  done
  grep -qw overlay /proc/filesystems || die "the kernel has no overlay file system (containerd's snapshotter needs it): modprobe overlay, or use a kernel with CONFIG_OVERLAY_FS"
  if [ ! -f /sys/fs/cgroup/cgroup.controllers ]; then
    for t in cpu cpuacct cpuset memory pids; do
      [ -d "/sys/fs/cgroup/$t" ] || die "cgroup v1 hierarchy /sys/fs/cgroup/$t is not mounted (kubelet needs cpu, cpuacct, cpuset, memory, pids)"
    done
  fi
  # Addresses and the bridge: ours from an earlier `up`, or free.
  if ip link show "$NODE_BRIDGE" >/dev/null 2>&1 && [ ! -f "$NODE_DIR/network" ]; then
    die "a network interface named $NODE_BRIDGE exists but this test ground ($STATE_DIR) did not create it: another test ground with nodes? Stop it there (e2e/env down) or set VIDEOCOUNTER_NODE_BRIDGE, VIDEOCOUNTER_NODE_NET and VIDEOCOUNTER_SERVICE_NET to free values."
  fi
  local ip dev
  for ip in "$HOST_IP" "$SERVICE_IP" $(for n in $(node_names); do node_ip "$n"; done); do
    dev=$(ip -o -4 addr show | awk -v ip="$ip" '{ split($4, a, "/"); if (a[1] == ip) print $2 }' | head -n1)
    if [ -n "$dev" ] && [ "$dev" != "$NODE_BRIDGE" ]; then
      die "address $ip is already on interface $dev: another test ground with nodes? Set VIDEOCOUNTER_NODE_NET / VIDEOCOUNTER_SERVICE_NET to free ranges."
    fi
  done
  if ip -o -4 route show | awk -v d="$NODE_BRIDGE" -v net="$NODE_NET.0/24" '$1 == net && $3 != d { found = 1 } END { exit !found }'; then
    die "$NODE_NET.0/24 is already routed through another interface (ip route): set VIDEOCOUNTER_NODE_NET to a free /24 prefix such as 10.78.0"
  fi
}

# port_free_any PORT NAME VARIABLE: nothing listens on PORT on any address;
# else fail naming what holds it and the variable that moves it.
port_free_any() {
  if ss -Htln "sport = :$1" | grep -q .; then
    die "port $1 (for $2) is already in use: $(ss -Htlnp "sport = :$1" | head -n1). Stop what holds it, or set $3 to a free port."
  fi
}

# ---------------------------------------------------------------------------
# Network: bridge, addresses, firewall chain.

node_network_up() {
  mkdir -p "$NODE_DIR"
  if ! ip link show "$NODE_BRIDGE" >/dev/null 2>&1; then
    say "creating bridge $NODE_BRIDGE ($HOST_IP/24: the host's address for pods)"
    ip link add "$NODE_BRIDGE" type bridge || die "cannot create bridge $NODE_BRIDGE: the kernel needs bridge support (modprobe bridge)"
    echo "$NODE_BRIDGE" >"$NODE_DIR/network"
    # Pods talk IPv4 only; no IPv6 link-local path to the host either.
    sysctl -qw "net.ipv6.conf.$NODE_BRIDGE.disable_ipv6=1" 2>/dev/null || true
  fi
  echo "$NODE_BRIDGE" >"$NODE_DIR/network"
  ip addr replace "$HOST_IP/24" dev "$NODE_BRIDGE"
  # The node addresses (kubelet listens there, the API server calls it there)
  # and the kubernetes Service address (the forwarder to the API server).
  local n
  for n in $(node_names); do ip addr replace "$(node_ip "$n")/32" dev "$NODE_BRIDGE"; done
  ip addr replace "$SERVICE_IP/32" dev "$NODE_BRIDGE"
  ip link set "$NODE_BRIDGE" up
  node_firewall_up
}

# The second guard behind the pods' missing default route: nothing is
# forwarded into or out of the bridge, and of the host pods reach only
# Kafka's listener on the bridge address and the API server forwarder (plus
# the answers to what the host opened, such as kubelet's probes).
node_firewall_up() {
  iptables -w -N "$FW_CHAIN_IN" 2>/dev/null || iptables -w -F "$FW_CHAIN_IN"
  iptables -w -N "$FW_CHAIN_FWD" 2>/dev/null || iptables -w -F "$FW_CHAIN_FWD"
  iptables -w -A "$FW_CHAIN_IN" -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
  iptables -w -A "$FW_CHAIN_IN" -d "$HOST_IP" -p tcp --dport "$KAFKA_BRIDGE_PORT" -j ACCEPT
  iptables -w -A "$FW_CHAIN_IN" -d "$SERVICE_IP" -p tcp --dport 443 -j ACCEPT
  iptables -w -A "$FW_CHAIN_IN" -j DROP
  iptables -w -A "$FW_CHAIN_FWD" -i "$NODE_BRIDGE" -o "$NODE_BRIDGE" -j ACCEPT
  iptables -w -A "$FW_CHAIN_FWD" -j DROP
  iptables -w -C INPUT -i "$NODE_BRIDGE" -j "$FW_CHAIN_IN" 2>/dev/null || iptables -w -I INPUT -i "$NODE_BRIDGE" -j "$FW_CHAIN_IN"
  iptables -w -C FORWARD -i "$NODE_BRIDGE" -j "$FW_CHAIN_FWD" 2>/dev/null || iptables -w -I FORWARD -i "$NODE_BRIDGE" -j "$FW_CHAIN_FWD"
  iptables -w -C FORWARD -o "$NODE_BRIDGE" -j "$FW_CHAIN_FWD" 2>/dev/null || iptables -w -I FORWARD -o "$NODE_BRIDGE" -j "$FW_CHAIN_FWD"
}

node_firewall_down() {
  command -v iptables >/dev/null || return 0
  while iptables -w -D INPUT -i "$NODE_BRIDGE" -j "$FW_CHAIN_IN" 2>/dev/null; do :; done
  while iptables -w -D FORWARD -i "$NODE_BRIDGE" -j "$FW_CHAIN_FWD" 2>/dev/null; do :; done
  while iptables -w -D FORWARD -o "$NODE_BRIDGE" -j "$FW_CHAIN_FWD" 2>/dev/null; do :; done
  local c
  for c in "$FW_CHAIN_IN" "$FW_CHAIN_FWD"; do
    iptables -w -F "$c" 2>/dev/null && iptables -w -X "$c" 2>/dev/null
  done
  return 0
}

node_network_down() {
  node_firewall_down
  if [ -f "$NODE_DIR/network" ] && ip link show "$NODE_BRIDGE" >/dev/null 2>&1; then
    ip link delete "$NODE_BRIDGE"
  fi
  rm -f "$NODE_DIR/network"
}

node_has_network() { ip -4 addr show dev "$NODE_BRIDGE" 2>/dev/null | grep -q "inet $HOST_IP/"; }

# ---------------------------------------------------------------------------
# Host settings and cgroups.

node_sysctls_save() {
  [ -f "$NODE_DIR/sysctls.saved" ] && return 0
  local k
  for k in $NODE_SYSCTLS; do
    [ -e "/proc/sys/${k//./\/}" ] && echo "$k=$(sysctl -n "$k")"
  done >"$NODE_DIR/sysctls.saved"
}

node_sysctls_restore() {
  [ -f "$NODE_DIR/sysctls.saved" ] || return 0
  local line
  while read -r line; do sysctl -qw "$line" >/dev/null || say "could not restore $line"; done <"$NODE_DIR/sysctls.saved"
  rm -f "$NODE_DIR/sysctls.saved"
}

# Every cgroup hierarchy (v1: one per controller; v2: the one tree).
cgroup_roots() {
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then echo /sys/fs/cgroup; return; fi
  local d
  for d in /sys/fs/cgroup/*; do [ -d "$d" ] && [ ! -L "$d" ] && echo "$d"; done
}

# kubelet wants its cgroupRoot to exist in every hierarchy it uses.
node_cgroup_make() {
  local name r; name=$(node_cgroup "$1")
  for r in $(cgroup_roots); do
    mkdir -p "$r/$name"
    if [ -f "$r/cpuset.cpus" ] && [ -f "$r/$name/cpuset.cpus" ]; then
      [ -n "$(cat "$r/$name/cpuset.cpus")" ] || cat "$r/cpuset.cpus" >"$r/$name/cpuset.cpus"
      [ -n "$(cat "$r/$name/cpuset.mems")" ] || cat "$r/cpuset.mems" >"$r/$name/cpuset.mems"
    fi
  done
  if [ -f /sys/fs/cgroup/cgroup.subtree_control ]; then
    local c
    for c in cpuset cpu io memory pids hugetlb; do echo "+$c" >"/sys/fs/cgroup/$name/cgroup.subtree_control" 2>/dev/null || true; done
  fi
}

# Kills whatever still runs in a node's cgroups (containers whose shim is
# gone), then removes the cgroups, deepest first.
node_cgroup_remove() {
  local name r pid; name=$(node_cgroup "$1")
  for r in $(cgroup_roots); do
    [ -d "$r/$name" ] || continue
    for pid in $(find "$r/$name" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u); do
      kill -KILL "$pid" 2>/dev/null || true
    done
  done
  sleep 0.2
  for r in $(cgroup_roots); do
    [ -d "$r/$name" ] && find "$r/$name" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  return 0
}

# Notes which of NODE_HOST_DIRS did not exist before our first start.
node_host_dirs_note() {
  [ -f "$NODE_DIR/host-dirs" ] && return 0
  local d
  for d in $NODE_HOST_DIRS; do [ -e "$d" ] || echo "$d"; done >"$NODE_DIR/host-dirs"
}

node_host_dirs_clean() {
  local n d id
  for n in $(node_names); do
    find /var/log/containers -maxdepth 1 -type l -lname "$(node_dir "$n")/*" -delete 2>/dev/null || true
    rm -f /var/lib/cni/results/"$NODE_BRIDGE-$n"-* 2>/dev/null
    for id in $(cat "$(node_dir "$n")/container-ids" 2>/dev/null); do rm -f /var/lib/cni/results/*-"$id"-* 2>/dev/null; done
    rm -f "$(node_dir "$n")/container-ids"
  done
  [ -f "$NODE_DIR/host-dirs" ] || return 0
  for d in $(cat "$NODE_DIR/host-dirs"); do rm -rf "$d"; done
  rm -f "$NODE_DIR/host-dirs"
}

