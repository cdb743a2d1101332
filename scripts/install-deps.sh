#!/usr/bin/env bash
# Installs the Debian packages the build and the test ground need, if missing.
# Rust (rustup), Go, Java 17+ and Maven are expected on the machine already;
# this script says so clearly when one is absent.
set -euo pipefail

PACKAGES=(
  # rdkafka (bundled librdkafka via cmake) and rocksdb (C++ and bindgen)
  build-essential cmake pkg-config clang libclang-dev
  libcurl4-openssl-dev libssl-dev libsasl2-dev zlib1g-dev libzstd-dev
  # test ground: certificates, health probes, Kafka jars
  openssl curl maven
  # test ground's real nodes (e2e/lib/node.sh): container runtime, CNI
  # plugins, the firewall rules that keep pods in, the forwarder from the
  # kubernetes Service address to the API server, gcc -static for the pause
  # image (libc6-dev: its static libc) and busybox for the network-check image
  containerd runc containernetworking-plugins iptables iproute2 socat libc6-dev busybox-static
  # gateway dashboard browser test (Playwright drives Debian's Chromium)
  chromium
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[deps] installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

for tool in cargo go java mvn node npm; do
  command -v "$tool" >/dev/null 2>&1 || { echo "[deps] ERROR: '$tool' is not installed; see README.md, section Development" >&2; exit 1; }
done
# cargo-hakari checks the workspace-hack crate (`make lint`); installed once into ~/.cargo/bin.
CARGO_HAKARI_VERSION=0.9.39
if ! cargo hakari --version 2>/dev/null | grep -q "$CARGO_HAKARI_VERSION"; then
  echo "[deps] installing cargo-hakari $CARGO_HAKARI_VERSION"
  cargo install --locked --quiet cargo-hakari --version "$CARGO_HAKARI_VERSION"
fi
java -version 2>&1 | grep -Eq 'version "(1[7-9]|[2-9][0-9])' || { echo "[deps] ERROR: Java 17 or newer is needed for Kafka 4.x" >&2; exit 1; }
echo "[deps] ok"
