#!/usr/bin/env bash
# check-runtime.sh: checks, without Docker, that the runtime image holds what
# the binaries need. It rebuilds the image's file system in a directory
# (docker/runtime-rootfs.sh: the Debian packages gcr.io/distroless/cc-debian12
# is made of, taken from this Debian 12 machine), adds what
# docker/stage-binary.sh stages, then runs each binary in a chroot as the
# image's user (65532) with the image's environment (docker/Dockerfile's
# ENV), and no shell or other tool inside. docker/local-images.sh makes the
# images the test ground's nodes run from the same file system.
#
# Needs root (chroot) and a Debian 12 host with those packages installed.
# Usage: make build && docker/check-runtime.sh
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" -eq 0 ] || { echo "check-runtime.sh: needs root for chroot" >&2; exit 2; }

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT

# The image's file system (docker/runtime-rootfs.sh), with the binaries of
# every target that `make build` made (release profile), not rebuilt here.
docker/runtime-rootfs.sh "$root"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/videocounter/target}
export STAGE_ONLY=1
OUT=$root docker/stage-binary.sh videocounter-worker videocounter-worker
OUT=$root docker/stage-binary.sh videocounter-operator videocounter-operator
OUT=$root docker/stage-binary.sh videocounter-gateway videocounter-gateway videocounter-loadgen

# CHECK_RUNTIME_DROP=libsasl2.so.2 removes a staged library: the check must then fail.
[ -z "${CHECK_RUNTIME_DROP:-}" ] || rm "$root/usr/local/lib/videocounter/$CHECK_RUNTIME_DROP"
# The environment of the image: the ENV lines of the Dockerfile's runtime stage.
mapfile -t image_env < <(awk '/ AS runtime$/ { on = 1; next } /^FROM / { on = 0 } on && /^ENV / { print $2 }' docker/Dockerfile)
[ "${#image_env[@]}" -ge 2 ] || { echo "no ENV found in docker/Dockerfile's runtime stage" >&2; exit 1; }
chroot_bin=$(command -v chroot)
in_image() {
  env -i "${image_env[@]}" PATH=/usr/local/bin "$chroot_bin" --userspec=65532:65532 "$root" "$@"
}

for bin in videocounter-worker videocounter-operator videocounter-gateway videocounter-loadgen; do
  in_image "/usr/local/bin/$bin" --help >/dev/null
  echo "ok: $bin starts in the image (every shared library resolves)"
done
in_image /usr/local/bin/videocounter-operator crd | grep -q 'kind: CustomResourceDefinition'
echo "ok: videocounter-operator crd"

# With a broker, a worker creates its Kafka clients (librdkafka's SASL and
# TLS initialisation) and serves /metrics.
if [ -n "${VIDEOCOUNTER_KAFKA_BOOTSTRAP:-}" ]; then
  mkdir -p "$root/etc/videocounter" "$root/var/lib/videocounter"
  chown 65532:65532 "$root/var/lib/videocounter"
  cat >"$root/etc/videocounter/config.yaml" <<YAML
applicationId: runtime-check-$$
kafka:
  bootstrapServers: $VIDEOCOUNTER_KAFKA_BOOTSTRAP
topics:
  input: runtime-check-$$-in
windows:
  - size: 1m
    outputTopic: runtime-check-$$-out
YAML
  port=$((20000 + RANDOM % 10000))
  in_image /usr/local/bin/videocounter-worker --config /etc/videocounter/config.yaml \
    --data-dir /var/lib/videocounter --instance-id runtime-check-0 --http-listen "127.0.0.1:$port" \
    >"$root/tmp/worker.log" 2>&1 &
  pid=$!
  ok=""
  for _ in $(seq 1 50); do
    if curl -sf "http://127.0.0.1:$port/metrics" | grep -q '^# TYPE videocounter_ready'; then ok=1; break; fi
    sleep 0.2
  done
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  [ -n "$ok" ] || { cat "$root/tmp/worker.log" >&2; echo "the worker did not serve /metrics in the image" >&2; exit 1; }
  if grep -qi 'sasl_client_init\|cannot open shared object' "$root/tmp/worker.log"; then
    cat "$root/tmp/worker.log" >&2; exit 1
  fi
  echo "ok: the worker runs against $VIDEOCOUNTER_KAFKA_BOOTSTRAP in the image and serves /metrics; its log:"
  sed 's/^/    /' "$root/tmp/worker.log" | tail -n 8
fi
echo "staged libraries:"; ls "$root/usr/local/lib/videocounter"
