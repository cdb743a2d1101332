#!/usr/bin/env bash
# image-archive.sh ROOTFS CONFIG_JSON REF OUT_TAR: writes a container image
# without Docker, as a docker-archive tar (what `docker save` writes, and
# what `ctr images import` and `kind load image-archive` read): the file
# system ROOTFS as one layer, CONFIG_JSON as the image's runtime config (the
# `config` object of an OCI image config: User, Env, Entrypoint, ...), and
# REF (`localhost/videocounter/worker:0.1.0`) as its name.
#
# The layer is reproducible: sorted entries, owners and modes as in ROOTFS,
# every mtime 0. The same inputs give the same image id, so importing an
# unchanged image again is a no-op. Needs root when ROOTFS holds files of
# other users (the owners are stored as they are).
set -euo pipefail

rootfs=${1:?usage: image-archive.sh ROOTFS CONFIG_JSON REF OUT_TAR}
config=${2:?usage: image-archive.sh ROOTFS CONFIG_JSON REF OUT_TAR}
ref=${3:?usage: image-archive.sh ROOTFS CONFIG_JSON REF OUT_TAR}
out=${4:?usage: image-archive.sh ROOTFS CONFIG_JSON REF OUT_TAR}
[ -d "$rootfs" ] || { echo "image-archive.sh: $rootfs is not a directory" >&2; exit 2; }
[ -f "$config" ] || { echo "image-archive.sh: $config does not exist" >&2; exit 2; }
case "$ref" in */*:*) ;; *) echo "image-archive.sh: '$ref' is not a full reference like localhost/name:tag" >&2; exit 2 ;; esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

tar --sort=name --mtime=@0 --numeric-owner --format=gnu -C "$rootfs" -cf "$work/layer.tar" .
layer_sha=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
mkdir "$work/$layer_sha"
mv "$work/layer.tar" "$work/$layer_sha/layer.tar"

# The image config: the runtime config given (verbatim JSON), the layer,
# and a history line.
printf '{"architecture":"amd64","config":%s,"created":"1970-01-01T00:00:00Z","history":[{"created":"1970-01-01T00:00:00Z","created_by":"docker/image-archive.sh %s"}],"os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
  "$(tr -d '\n' <"$config")" "$ref" "$layer_sha" >"$work/config.json"
config_sha=$(sha256sum "$work/config.json" | cut -d' ' -f1)
mv "$work/config.json" "$work/$config_sha.json"
printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["%s/layer.tar"]}]' \
  "$config_sha" "$ref" "$layer_sha" >"$work/manifest.json"

mkdir -p "$(dirname "$out")"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=gnu \
  -C "$work" -cf "$out.tmp" manifest.json "$config_sha.json" "$layer_sha"
mv "$out.tmp" "$out"
echo "$ref sha256:$config_sha $(du -h "$out" | cut -f1)"
