#!/usr/bin/env bash
# Keeps the shared build cache from filling the disk: when the file system that holds
# CARGO_TARGET_DIR has less than HEADEND_MIN_FREE_GIB (default 12) GiB free, it drops
# incremental compilation state and this workspace's own stale artifacts (every past
# hash of every headend test binary). Third-party crates stay, so the next build only
# recompiles headend. Idempotent; safe to run before every build.
set -euo pipefail
target="${CARGO_TARGET_DIR:?CARGO_TARGET_DIR is not set}"
min_gib="${HEADEND_MIN_FREE_GIB:-12}"
mkdir -p "$target"
free_gib() { df -Pk "$target" | awk 'NR==2 { print int($4 / 1048576) }'; }
before=$(free_gib)
if [ "$before" -ge "$min_gib" ]; then
    exit 0
fi
echo "target-space: ${before} GiB free under $target (< ${min_gib} GiB); pruning the build cache" >&2
rm -rf "$target"/debug/incremental "$target"/release/incremental
for p in headend-node headend-actors headend-cluster-tests headend-bench headend-proto; do
    cargo clean -q -p "$p" 2>/dev/null || true
done
after=$(free_gib)
echo "target-space: ${after} GiB free after pruning" >&2
if [ "$after" -lt 3 ]; then
    echo "target-space: under 3 GiB free on the disk that holds $target; encode jobs need 2 GiB (node.encode.min_free_bytes); fix: free disk space" >&2
    exit 1
fi
