#!/usr/bin/env bash
# The cluster collector's pauses (README "Collection across nodes"): `clusterheap stress graph` on three local silo
# processes (scripts/cluster.sh up 3), building linked structures whose pointers cross nodes until each node holds
# about --live of reachable objects, with a forced cycle per round. Prints the cycles' pause p50/p99/max and the live
# bytes the last cycle marked, from the stress run's JSON report.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: scripts/bench-gc-cluster.sh [--mode stw|concurrent] [--duration D] [--size BYTES] [--per-round N] [-h]

  --mode M         the silos' --gc-mode (default stw; run it once per mode to compare)

  --duration D     timed phase of the stress run (default 30s)
  --size BYTES     object size, a scan object linked through six pointer words (default 4096)
  --per-round N    new objects per worker per round (default 1500; 6 workers)
  -h, --help       this text

Uses its own run folder and ports if CLUSTERHEAP_RUN_DIR / CLUSTERHEAP_BASE_* are set (scripts/cluster.sh), and takes
the benchmark lock $CLUSTERHEAP_BENCH_LOCK (flock) when it is set. Needs: bash, dotnet, jq, flock.
USAGE
}

mode=stw
duration=30s
size=4096
per_round=1500
while [ $# -gt 0 ]; do
  case $1 in
    --mode) [ $# -ge 2 ] || { echo "bench-gc-cluster: --mode needs a value" >&2; exit 2; }; mode=$2; shift 2 ;;
    --duration) [ $# -ge 2 ] || { echo "bench-gc-cluster: --duration needs a value" >&2; exit 2; }; duration=$2; shift 2 ;;
    --size) [ $# -ge 2 ] || { echo "bench-gc-cluster: --size needs a value" >&2; exit 2; }; size=$2; shift 2 ;;
    --per-round) [ $# -ge 2 ] || { echo "bench-gc-cluster: --per-round needs a value" >&2; exit 2; }; per_round=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench-gc-cluster: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
command -v jq >/dev/null || { echo "bench-gc-cluster: jq not on PATH (Debian: apt-get install jq)" >&2; exit 1; }

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
client=$repo/src/Client/bin/Release/net10.0/linux-x64/clusterheap
run_dir=${CLUSTERHEAP_RUN_DIR:-$repo/.run/cluster}
json=$run_dir/graph.json

cleanup() { scripts/cluster.sh down >/dev/null 2>&1 || true; }
trap cleanup EXIT
scripts/cluster.sh up 3 -- --arena-size 8GiB --procs 2 --gc-mode "$mode" >&2
read -r -a connect <<<"$(scripts/cluster.sh connect)"

lock=()
[ -n "${CLUSTERHEAP_BENCH_LOCK:-}" ] && lock=(flock "$CLUSTERHEAP_BENCH_LOCK")
"${lock[@]}" "$client" "${connect[@]}" stress graph --duration "$duration" --size "$size" --slots "$per_round" --workers 6 \
  --json "$json" >&2

jq -r '"stress graph, 3 silo processes, gc mode '"$mode"', \(.shape)\ncycles \(.gc_cycles)  pause p50 \(.gc_pause_p50_ms) ms  p99 \(.gc_pause_p99_ms) ms  max \(.gc_pause_max_ms) ms\nexact after the last cycle: \(.gc_exact); cookies checked \(.gc_checked), failures \(.cookie_failures); errors \(.errors)"' "$json"
"$client" "${connect[@]}" gc --log | tail -n 4
