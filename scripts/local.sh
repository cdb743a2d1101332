#!/usr/bin/env bash
# `make local`: see videocounter work in one command, without Docker or Kubernetes.
# Starts the test ground's Kafka, two workers and the gateway as local processes,
# turns the traffic generator on, and prints the dashboard URL. Ctrl-C stops the
# workers and the gateway (Kafka keeps running: `e2e/env down` stops it).
#
# Settings (environment): LOCAL_WORKERS (2), GATEWAY_PORT (8090),
# WORKER_BASE_PORT (8081), LOCAL_DIR (~/.cache/videocounter/local), LOCAL_VIDEOS.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/videocounter/target}
WORKERS=${LOCAL_WORKERS:-2}
GATEWAY_PORT=${GATEWAY_PORT:-8090}
WORKER_BASE_PORT=${WORKER_BASE_PORT:-8081}
DIR=${LOCAL_DIR:-$HOME/.cache/videocounter/local}
VIDEOS=${LOCAL_VIDEOS:-cat-video:120,dog-video:60,surf-video:30,cooking-show:10}

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

say "building the binaries (release; the same build as make build, so nothing compiles twice)"
cargo build --release --workspace --bins
BIN=$CARGO_TARGET_DIR/release

mkdir -p "$DIR"
cat >"$DIR/worker.yaml" <<YAML
# Written by scripts/local.sh: the seed's topics and windows, on the test ground's Kafka.
applicationId: videocounter-local
kafka:
  bootstrapServers: $VIDEOCOUNTER_KAFKA_BOOTSTRAP
topics:
  input: video_clicks_ingestion
  inputFormat: raw
  partitions: 6
windows:
  - size: 1m
  - size: 5m
  - size: 10m
YAML

PIDS=()
stop_all() {
  trap - EXIT INT TERM
  if [ ${#PIDS[@]} -gt 0 ]; then
    say "stopping the gateway and the workers"
    kill -TERM "${PIDS[@]}" 2>/dev/null || true
    wait "${PIDS[@]}" 2>/dev/null || true
  fi
}
trap stop_all EXIT
trap 'exit 130' INT TERM

urls=()
for ((i = 0; i < WORKERS; i++)); do
  port=$((WORKER_BASE_PORT + i))
  "$BIN/videocounter-worker" --config "$DIR/worker.yaml" --instance-id "local-$i" \
    --data-dir "$DIR/worker-$i" --http-listen "127.0.0.1:$port" >"$DIR/worker-$i.log" 2>&1 &
  PIDS+=($!)
  urls+=("http://127.0.0.1:$port")
  say "worker local-$i: pid $!, http://127.0.0.1:$port, log $DIR/worker-$i.log"
done
for ((i = 0; i < WORKERS; i++)); do
  wait_http "${urls[$i]}/readyz" 180 "worker local-$i" "$DIR/worker-$i.log"
done

worker_urls=$(IFS=,; echo "${urls[*]}")
video_ids=$(echo "$VIDEOS" | tr ',' '\n' | cut -d: -f1 | paste -sd,)
"$BIN/videocounter-gateway" --worker-config "$DIR/worker.yaml" --worker-url "$worker_urls" \
  --listen "127.0.0.1:$GATEWAY_PORT" --generate-videos "$video_ids" >"$DIR/gateway.log" 2>&1 &
PIDS+=($!)
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
# Exits when any process dies (or on Ctrl-C); the trap stops the others.
wait -n "${PIDS[@]}" || true
say "a process exited; see the logs in $DIR"
