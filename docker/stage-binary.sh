#!/usr/bin/env bash
# stage-binary.sh PACKAGE BINARY...: builds the binaries of one workspace
# package with the release profile and stages them, with the shared libraries
# they need beyond the C runtime, under $OUT (default /out):
#
#   $OUT/usr/local/bin/<binary>
#   $OUT/usr/local/lib/videocounter/<libraries>   (LD_LIBRARY_PATH in the image)
#
# Used by docker/Dockerfile; docker/check-runtime.sh runs it locally too.
set -euo pipefail

package=${1:?usage: stage-binary.sh PACKAGE BINARY...}
shift
[ $# -gt 0 ] || { echo "stage-binary.sh: name at least one binary of $package" >&2; exit 2; }
out=${OUT:-/out}
target=${CARGO_TARGET_DIR:-target}

# STAGE_ONLY=1 stages binaries already built (docker/check-runtime.sh: a
# per-package build would recompile shared dependencies with other features).
if [ -z "${STAGE_ONLY:-}" ]; then
  bin_args=()
  for b in "$@"; do bin_args+=(--bin "$b"); done
  cargo build --release --locked -p "$package" "${bin_args[@]}"
fi

mkdir -p "$out/usr/local/bin" "$out/usr/local/lib/videocounter"
for b in "$@"; do
  cp "$target/release/$b" "$out/usr/local/bin/"
  # The release profile keeps line tables (debug = "line-tables-only"): most of
  # a 480 MB worker binary. The image keeps the symbols (named backtraces)
  # and drops the DWARF: the worker is then ~21 MB. The code is unchanged.
  objcopy --strip-debug "$out/usr/local/bin/$b"
  # Every resolved library except glibc, libgcc and libstdc++, which the
  # distroless cc image provides in the versions of the same Debian release.
  ldd "$out/usr/local/bin/$b" \
    | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' \
    | { grep -Ev '/(libc|libm|libgcc_s|libstdc\+\+|libpthread|libdl|librt|libresolv)\.so' || true; } \
    | xargs -r cp -L -t "$out/usr/local/lib/videocounter/"
  if ldd "$out/usr/local/bin/$b" | grep -q 'not found'; then
    ldd "$out/usr/local/bin/$b" >&2
    echo "stage-binary.sh: $b links a library that is not installed" >&2
    exit 1
  fi
done
ls -l "$out/usr/local/bin" "$out/usr/local/lib/videocounter"
