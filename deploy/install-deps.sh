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
  fonts-dejavu-core ffmpeg chromium chromium-headless-shell multicat iproute2 procps
)

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
