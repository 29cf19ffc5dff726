#!/usr/bin/env bash
# Installs the anchors of the ring benchmark (scripts/bench-ring.sh, bench/anchors/anchors.sh) on a
# fresh Debian/Ubuntu machine: mimalloc, jemalloc and tcmalloc for LD_PRELOAD, Go for ring.go, gcc for
# ring.c (libc6-dev: its headers, normally pulled in by gcc). Idempotent; run as root (or it uses sudo). The .NET 10 SDK for ClusterHeap itself is not
# installed here.
set -euo pipefail
if [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
  echo "Usage: scripts/install-bench-deps.sh   (apt-get update + install of the benchmark anchors)"
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y \
  libmimalloc2.0 libjemalloc2 libtcmalloc-minimal4 golang-go gcc libc6-dev
