#!/usr/bin/env bash
# local-images.sh OUT_DIR [TARGET...]: builds the worker, operator and
# gateway images of docker/Dockerfile without Docker, from the release
# binaries `make build` made, as docker-archive tars in OUT_DIR
# (<target>.tar), named $LOCAL_IMAGE_REGISTRY/<target>:<version>
# (default localhost/videocounter/worker:<workspace version>).
#
# What each image holds is what `docker build --target <target>` would make:
#   - file system: docker/runtime-rootfs.sh (the distroless base rebuilt from
#     Debian packages, plus the binaries and libraries that target's build
#     stage stages, read from the Dockerfile);
#   - runtime config (user, environment, entrypoint, ports, working
#     directory): computed by BuildKit's own Dockerfile frontend from
#     docker/Dockerfile (go run ./docker/lint -image-config).
# e2e/tests/packaging/images.rs checks the result against both.
#
# `make node-images` runs this and loads the tars into every test-ground node.
# Needs root and Debian 12 (like docker/check-runtime.sh) and Go.
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:?usage: local-images.sh OUT_DIR [TARGET...]}
shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(worker operator gateway)
registry=${LOCAL_IMAGE_REGISTRY:-localhost/videocounter}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
command -v go >/dev/null || { echo "local-images.sh: needs Go (docker/lint computes the image config)" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"
# One BuildKit conversion for all targets: "<target> <config JSON>" lines.
go -C docker/lint run . -image-config ../Dockerfile "${targets[@]}" >"$work/configs" \
  || { echo "local-images.sh: docker/Dockerfile does not convert (go run ./docker/lint)" >&2; exit 1; }
for t in "${targets[@]}"; do
  grep "^$t " "$work/configs" | cut -d' ' -f2- >"$work/$t.json"
  docker/runtime-rootfs.sh "$work/$t-root" "$t"
  docker/image-archive.sh "$work/$t-root" "$work/$t.json" "$registry/$t:$version" "$out/$t.tar"
  rm -rf "$work/$t-root"
done
