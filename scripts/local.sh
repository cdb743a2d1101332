#!/usr/bin/env bash
# `make local`: see videocounter work in one command, without Docker or Kubernetes.
# Starts the test ground's Kafka, two workers and the gateway as local processes,
# turns the traffic generator on, and prints the dashboard URL. Ctrl-C stops the
# workers and the gateway (Kafka keeps running: `e2e/env down` stops it).
#
# Settings (environment): LOCAL_WORKERS (2), GATEWAY_PORT (8090),
# WORKER_BASE_PORT (8081), LOCAL_DIR (~/.cache/videocounter/local), LOCAL_VIDEOS,
# LOCAL_BIN (a folder with the built binaries: skips the build), LOCAL_APP_ID
# (videocounter-local), LOCAL_TOPIC_PREFIX (none: the seed's video_clicks_ingestion
# and video_aggregations_1/5/10; a prefix gives a run topics of its own).
#
# Exit status: 0 when stopped with Ctrl-C (or SIGTERM); 1 when a worker or the
# gateway exits by itself (its name, status and last log lines are printed).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/videocounter/target}
WORKERS=${LOCAL_WORKERS:-2}
GATEWAY_PORT=${GATEWAY_PORT:-8090}
WORKER_BASE_PORT=${WORKER_BASE_PORT:-8081}
DIR=${LOCAL_DIR:-$HOME/.cache/videocounter/local}
VIDEOS=${LOCAL_VIDEOS:-cat-video:120,dog-video:60,surf-video:30,cooking-show:10}
APP_ID=${LOCAL_APP_ID:-videocounter-local}
PREFIX=${LOCAL_TOPIC_PREFIX:-}

say() { printf '\033[1m[local]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[local] %s\033[0m\n' "$*" >&2; exit 1; }

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_http() { # url seconds what log
  local deadline=$((SECONDS + $2))
  until curl -fsS -o /dev/null "$1" 2>/dev/null; do
    if [ $SECONDS -ge "$deadline" ]; then
      tail -n 30 "$4" >&2 || true
      die "$3 did not answer $1 within $2 s (log: $4)"
    fi
    sleep 0.5
  done
}

for ((i = 0; i < WORKERS; i++)); do
  port_free $((WORKER_BASE_PORT + i)) || die "port $((WORKER_BASE_PORT + i)) is in use (set WORKER_BASE_PORT)"
done
port_free "$GATEWAY_PORT" || die "port $GATEWAY_PORT is in use (set GATEWAY_PORT)"

say "starting Kafka (test ground)"
e2e/env up kafka >/dev/null
# shellcheck disable=SC1091
source "$(e2e/env env >/dev/null; echo "${VIDEOCOUNTER_STATE:-$HOME/.cache/videocounter/state}")/env.sh"

if [ -n "${LOCAL_BIN:-}" ]; then
  BIN=$LOCAL_BIN
else
  say "building the binaries (release; the same build as make build, so nothing compiles twice)"
  cargo build --release --workspace --bins
  BIN=$CARGO_TARGET_DIR/release
fi

mkdir -p "$DIR"
cat >"$DIR/worker.yaml" <<YAML
# Written by scripts/local.sh: the seed's topics and windows, on the test ground's Kafka.
applicationId: $APP_ID
kafka:
  bootstrapServers: $VIDEOCOUNTER_KAFKA_BOOTSTRAP
topics:
  input: ${PREFIX}video_clicks_ingestion
  inputFormat: raw
  partitions: 6
windows:
  - size: 1m
    outputTopic: ${PREFIX}video_aggregations_1
  - size: 5m
    outputTopic: ${PREFIX}video_aggregations_5
  - size: 10m
    outputTopic: ${PREFIX}video_aggregations_10
YAML

# Each process in a session of its own: Ctrl-C reaches only this script, which
# stops them in order, instead of racing them to the terminal's SIGINT.
PIDS=()
declare -A NAMES LOGS
STOP_TIMEOUT=30
stop_all() {
  trap - EXIT INT TERM
  if [ ${#PIDS[@]} -gt 0 ]; then
    say "stopping the gateway and the workers"
    kill -TERM "${PIDS[@]}" 2>/dev/null || true
    local deadline=$((SECONDS + STOP_TIMEOUT)) pid
    for pid in "${PIDS[@]}"; do
      while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
      if kill -0 "$pid" 2>/dev/null; then
        say "${NAMES[$pid]} did not stop within $STOP_TIMEOUT s of SIGTERM; killing it (log ${LOGS[$pid]})"
        kill -KILL "$pid" 2>/dev/null || true
      fi
    done
    wait "${PIDS[@]}" 2>/dev/null || true
  fi
}
on_signal() {
  echo
  stop_all
  say "stopped (Kafka keeps running; e2e/env down stops it)"
  exit 0
}
trap stop_all EXIT
trap on_signal INT TERM

start() { # name log command...
  local name=$1 log=$2; shift 2
  setsid "$@" >"$log" 2>&1 </dev/null &
  PIDS+=($!)
  NAMES[$!]=$name
  LOGS[$!]=$log
}

urls=()
for ((i = 0; i < WORKERS; i++)); do
  port=$((WORKER_BASE_PORT + i))
  start "worker local-$i" "$DIR/worker-$i.log" "$BIN/videocounter-worker" --config "$DIR/worker.yaml" \
    --instance-id "local-$i" --data-dir "$DIR/worker-$i" --http-listen "127.0.0.1:$port"
  urls+=("http://127.0.0.1:$port")
  say "worker local-$i: pid ${PIDS[-1]}, http://127.0.0.1:$port, log $DIR/worker-$i.log"
done
for ((i = 0; i < WORKERS; i++)); do
  wait_http "${urls[$i]}/readyz" 180 "worker local-$i" "$DIR/worker-$i.log"
done

worker_urls=$(IFS=,; echo "${urls[*]}")
video_ids=$(echo "$VIDEOS" | tr ',' '\n' | cut -d: -f1 | paste -sd,)
start "the gateway" "$DIR/gateway.log" "$BIN/videocounter-gateway" --worker-config "$DIR/worker.yaml" \
  --worker-url "$worker_urls" --listen "127.0.0.1:$GATEWAY_PORT" --generate-videos "$video_ids"
say "gateway: pid ${PIDS[-1]}, log $DIR/gateway.log"
wait_http "http://127.0.0.1:$GATEWAY_PORT/healthz" 60 "the gateway" "$DIR/gateway.log"

# Each video at its own rate (likes per minute), then start generating.
rates=$(echo "$VIDEOS" | tr ',' '\n' | awk -F: 'NF==2 {printf "%s\"%s\": %s", (n++ ? ", " : ""), $1, $2}')
curl -fsS -X PUT -H 'content-type: application/json' \
  -d "{\"mode\": \"per_video\", \"rates\": {$rates}}" "http://127.0.0.1:$GATEWAY_PORT/generator" >/dev/null
curl -fsS -X POST "http://127.0.0.1:$GATEWAY_PORT/generator/start" >/dev/null

cat <<EOF

  videocounter runs locally: Kafka $VIDEOCOUNTER_KAFKA_BOOTSTRAP, $WORKERS workers, generator on.

    Dashboard   http://127.0.0.1:$GATEWAY_PORT/
    Like        curl -X POST http://127.0.0.1:$GATEWAY_PORT/videos/cat-video/likes
    Counts      curl http://127.0.0.1:$GATEWAY_PORT/videos/cat-video/counts
    Logs        $DIR/{worker-*,gateway}.log

  Ctrl-C stops the workers and the gateway (Kafka keeps running; e2e/env down stops it).

EOF
# Returns when a process exits by itself (Ctrl-C runs on_signal instead).
# Polled rather than `wait -n`: a process that died before this line is no
# longer a job, and `wait -n` would then wait for the others forever.
exited=
while [ -z "$exited" ]; do
  for pid in "${PIDS[@]}"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      exited=$pid
      break
    fi
  done
  if [ -z "$exited" ]; then
    sleep 0.5 &
    wait $! || true
  fi
done
status=0
wait "$exited" 2>/dev/null || status=$?
name=${NAMES[$exited]:-a process}
log=${LOGS[$exited]:-$DIR}
if [ "$status" -gt 128 ]; then
  how="was killed by signal $((status - 128))"
else
  how="exited with status $status"
fi
printf '\033[1;31m[local] %s (pid %s) %s; the last lines of %s:\033[0m\n' "$name" "$exited" "$how" "$log" >&2
tail -n 20 "$log" >&2 || true
exit 1
