# Shared helpers for the test-ground scripts. Sourced, not executed.
# shellcheck shell=bash

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=../versions.env
source "$E2E_DIR/versions.env"

# Downloads and builds: survive fresh clones, shared by every checkout.
CACHE_DIR=${VIDEOCOUNTER_CACHE:-$HOME/.cache/videocounter}
# Runtime data and logs of the running services.
STATE_DIR=${VIDEOCOUNTER_STATE:-$CACHE_DIR/state}
BIN_DIR=$CACHE_DIR/bin
LOG_DIR=$STATE_DIR/logs
RUN_DIR=$STATE_DIR/run

# Fixed loopback ports, chosen away from common defaults.
KAFKA_PORT=${VIDEOCOUNTER_KAFKA_PORT:-19092}
KAFKA_CONTROLLER_PORT=${VIDEOCOUNTER_KAFKA_CONTROLLER_PORT:-19093}
ETCD_PORT=${VIDEOCOUNTER_ETCD_PORT:-12379}
ETCD_PEER_PORT=${VIDEOCOUNTER_ETCD_PEER_PORT:-12380}
APISERVER_PORT=${VIDEOCOUNTER_APISERVER_PORT:-16443}
KCM_PORT=${VIDEOCOUNTER_KCM_PORT:-20257}
SCHEDULER_PORT=${VIDEOCOUNTER_SCHEDULER_PORT:-20259}
KWOK_PORT=${VIDEOCOUNTER_KWOK_PORT:-20247}
# Real nodes (e2e/lib/node.sh): Kafka's listener for pods on the bridge
# address, and per node (node i adds i-1) kubelet's API and health ports.
KAFKA_BRIDGE_PORT=${VIDEOCOUNTER_KAFKA_BRIDGE_PORT:-19094}
KUBELET_PORT=${VIDEOCOUNTER_KUBELET_PORT:-20250}
KUBELET_HEALTHZ_PORT=${VIDEOCOUNTER_KUBELET_HEALTHZ_PORT:-20260}
# The cluster's Service range (a /24): .1 is the kubernetes Service.
SERVICE_NET=${VIDEOCOUNTER_SERVICE_NET:-10.0.0}

KUBECONFIG_PATH=$STATE_DIR/kube/admin.kubeconfig
ENV_FILE=$STATE_DIR/env.sh

mkdir -p "$CACHE_DIR" "$BIN_DIR" "$LOG_DIR" "$RUN_DIR"

say() { printf '[e2e] %s\n' "$*" >&2; }
die() { printf '[e2e] ERROR: %s\n' "$*" >&2; exit 1; }

# need TOOL HINT: fail with what to install when a tool is missing.
need() {
  command -v "$1" >/dev/null 2>&1 || die "'$1' not found on PATH. $2"
}

# port_free PORT NAME: fail clearly when something else listens on PORT.
port_free() {
  local port=$1 name=$2
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    die "port $port (for $name) is already in use on 127.0.0.1. Stop what holds it (ss -ltnp 'sport = :$port') or set VIDEOCOUNTER_*_PORT."
  fi
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# proc_alive PID: the process runs. A zombie with no thread left is dead
# (on some machines nothing reaps orphans promptly); one whose main thread
# exited while others still run (a JVM shutting down) is not yet.
proc_alive() {
  kill -0 "$1" 2>/dev/null || return 1
  local state threads
  state=$(awk '/^State:/ { print $2 }' "/proc/$1/status" 2>/dev/null)
  threads=$(ls "/proc/$1/task" 2>/dev/null | wc -l)
  ! { [ "$state" = Z ] && [ "$threads" -le 1 ]; }
}

# proc_identity PID: what tells this process from a later one given the same
# pid (the kernel's boot and the process's start time in clock ticks).
proc_identity() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  # Field 22 (start time) counted after the ") " that ends field 2, the command.
  echo "$(cat /proc/sys/kernel/random/boot_id) $(echo "${stat##*) }" | awk '{ print $20 }')"
}

# pid_alive NAME: the service NAME has a live process recorded in RUN_DIR,
# the very one start_bg started: a pid file that outlived its process (a
# machine restart, or another pid namespace such as a CI container on the
# same state directory) may name an unrelated process that got the same pid.
pid_alive() {
  local f=$RUN_DIR/$1.pid pid
  [ -f "$f" ] || return 1
  pid=$(cat "$f")
  proc_alive "$pid" && [ "$(proc_identity "$pid")" = "$(cat "$RUN_DIR/$1.identity" 2>/dev/null)" ]
}

# rotate_log NAME: keep one previous log once a service's log passes 64 MiB, so
# a long-lived ground cannot fill the disk (NAME.log.1 holds the one before).
rotate_log() {
  local log=$LOG_DIR/$1.log
  [ -f "$log" ] && [ "$(stat -c %s "$log")" -gt $((64 << 20)) ] && mv -f "$log" "$log.1"
  return 0
}

# start_bg NAME CMD...: start a service detached, logging to LOG_DIR/NAME.log.
start_bg() {
  local name=$1; shift
  setsid "$@" >>"$LOG_DIR/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN_DIR/$name.pid"
  proc_identity $! >"$RUN_DIR/$name.identity" || true
}

# stop_bg NAME [SIGNAL]: stop a service and wait until it is gone.
stop_bg() {
  local name=$1 sig=${2:-TERM} f=$RUN_DIR/$1.pid pid i
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  # Never signal a process that merely reuses the recorded pid.
  if pid_alive "$name"; then
    kill -"$sig" -- "-$pid" 2>/dev/null || kill -"$sig" "$pid" 2>/dev/null
    for i in $(seq 1 300); do
      proc_alive "$pid" || break
      sleep 0.1
    done
    if proc_alive "$pid"; then
      say "$name did not stop in 30s; killing it"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
    fi
  fi
  rm -f "$f" "$RUN_DIR/$name.identity"
}

# wait_for NAME SECONDS CMD...: poll CMD until it succeeds, or fail pointing at the log.
wait_for() {
  local name=$1 secs=$2 i; shift 2
  for i in $(seq 1 $((secs * 5))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    if [ -f "$RUN_DIR/$name.pid" ] && ! pid_alive "$name"; then
      tail -n 20 "$LOG_DIR/$name.log" >&2 || true
      die "$name exited during start-up; read $LOG_DIR/$name.log"
    fi
    sleep 0.2
  done
  tail -n 20 "$LOG_DIR/$name.log" >&2 || true
  die "$name did not become ready within ${secs}s; read $LOG_DIR/$name.log"
}

# stamp_ok FILE CONTENT: the cached build stamp FILE matches CONTENT.
stamp_ok() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }
