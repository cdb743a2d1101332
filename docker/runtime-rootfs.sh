#!/usr/bin/env bash
# runtime-rootfs.sh ROOT [TARGET]: rebuilds, without Docker, the file system
# of docker/Dockerfile's runtime image in the empty directory ROOT: the
# Debian packages gcr.io/distroless/cc-debian12 is made of, taken from this
# Debian 12 machine, with distroless' users, /home/nonroot and /tmp. With
# TARGET (worker, operator or gateway), also what that target copies in:
# the binaries its build stage stages (docker/stage-binary.sh, read from the
# Dockerfile), with their libraries, from the release build.
#
# Used by docker/check-runtime.sh (runs the binaries in it) and
# docker/local-images.sh (makes images of it for the test ground's nodes).
# Needs root (the files keep their owners) and a Debian 12 host.
set -euo pipefail
cd "$(dirname "$0")/.."

root=${1:?usage: runtime-rootfs.sh ROOT [TARGET]}
target=${2:-}
[ "$(id -u)" -eq 0 ] || { echo "runtime-rootfs.sh: needs root (the image's files keep their owners)" >&2; exit 2; }
grep -q 'VERSION_ID="12"' /etc/os-release || { echo "runtime-rootfs.sh: needs Debian 12, like the image" >&2; exit 2; }
mkdir -p "$root"
[ -z "$(ls -A "$root")" ] || { echo "runtime-rootfs.sh: $root is not empty" >&2; exit 2; }
chmod 755 "$root"

# The packages of distroless cc-debian12 (static: base-files, netbase,
# tzdata, ca-certificates; base adds libc6, libssl3; cc adds libgcc-s1,
# libgomp1, libstdc++6). Debian 12 is merged-/usr: /lib and /lib64 point into /usr.
packages="base-files libc6 libssl3 libgcc-s1 libgomp1 libstdc++6 ca-certificates tzdata netbase"
for pkg in $packages; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' \
    || { echo "runtime-rootfs.sh: Debian package $pkg is not installed (apt-get install $pkg)" >&2; exit 1; }
done
mkdir -p "$root/usr/lib" "$root/usr/lib64" "$root/usr/bin" "$root/usr/sbin"
for d in lib lib64 bin sbin; do ln -s "usr/$d" "$root/$d"; done
for pkg in $packages; do
  dpkg -L "$pkg"
done | while read -r f; do
  if [ -f "$f" ] || [ -L "$f" ]; then echo "$f"; fi
done | tar -cf - --no-recursion -T - 2>/dev/null | tar -xf - --keep-directory-symlink -C "$root"
# Distroless ships the CA bundle alone (no hashed links, no /usr/lib/ssl),
# its own users and groups, a home for nonroot and a world-writable /tmp.
mkdir -p "$root/etc/ssl/certs"
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
cat >"$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
PASSWD
cat >"$root/etc/group" <<'GROUP'
root:x:0:
nobody:x:65534:
tty:x:5:
staff:x:50:
nonroot:x:65532:
GROUP
mkdir -p "$root/home/nonroot" "$root/tmp"
chown 65532:65532 "$root/home/nonroot"
chmod 700 "$root/home/nonroot"
chmod 1777 "$root/tmp"
[ ! -e "$root/bin/sh" ] || { echo "the emulated image has a shell; the check is broken" >&2; exit 1; }

[ -n "$target" ] || exit 0
# What TARGET copies from its build stage: `COPY --from=<stage> /out/ /`,
# and that stage runs `docker/stage-binary.sh PACKAGE BINARY...`.
stage=$(awk -v t="$target" '$1 == "FROM" && $NF == t { on = 1; next } $1 == "FROM" { on = 0 }
  on && $1 == "COPY" { for (i = 2; i <= NF; i++) if ($i ~ /^--from=/) { sub(/^--from=/, "", $i); print $i } }' docker/Dockerfile)
[ -n "$stage" ] || { echo "runtime-rootfs.sh: docker/Dockerfile has no target '$target' that copies from a build stage" >&2; exit 2; }
read -r -a stage_args < <(awk -v s="$stage" '$1 == "FROM" && $NF == s { on = 1; next } $1 == "FROM" { on = 0 }
  on { for (i = 1; i <= NF; i++) if ($i == "docker/stage-binary.sh") { out = ""; for (j = i + 1; j <= NF; j++) out = out " " $j; print out } }' docker/Dockerfile)
[ "${#stage_args[@]}" -ge 2 ] || { echo "runtime-rootfs.sh: stage $stage of docker/Dockerfile runs no docker/stage-binary.sh PACKAGE BINARY..." >&2; exit 2; }
# The binaries `make build` made (release profile), not rebuilt here: a
# per-package build would recompile shared dependencies with other features.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/videocounter/target}
STAGE_ONLY=1 OUT=$root docker/stage-binary.sh "${stage_args[@]}" >/dev/null
