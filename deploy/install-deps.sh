#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks to build, test, demo and benchmark headend.
# Idempotent: packages already present are not reinstalled, and apt is only asked when
# something is missing. Run as root (or with sudo available).
set -euo pipefail

PACKAGES=(
  # build: FFmpeg 5.1 libraries for ffmpeg-next, bindgen's clang, protoc for tonic-prost-build
  pkg-config clang libclang-dev
  libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libswresample-dev libavfilter-dev
  libavdevice-dev
  protobuf-compiler libprotobuf-dev
  # runtime, tests and benchmarks: ffprobe/ffmpeg CLI, Chromium, multicat, iproute2
  fonts-dejavu-core ffmpeg chromium chromium-headless-shell multicat rclone iproute2 procps
  # chaos tests (cluster-tests/tests/chaos.rs): nft cuts a node's Raft links in its namespace
  nftables
)

# --- s3s-fs: the S3-compatible server the sync tests start (actors/tests/sync_s3.rs) ---
# From crates.io with cargo, once: skipped when s3s-fs is already on PATH. 0.14.1 is the
# newest release that builds with the project's Rust 1.95 (0.15 and later need 1.96); its
# binary needs the `binary` feature. It comes before the apt part because that part
# exits early when every package is present.
if ! command -v s3s-fs >/dev/null 2>&1; then
  echo "install-deps: installing s3s-fs (cargo install, a few minutes)"
  cargo install s3s-fs --version 0.14.1 --locked --features binary
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install-deps: done"
