#!/usr/bin/env bash
# CPU time per object of a larson run, by role (README "Scale on paper"): starts N silo processes
# (scripts/cluster.sh), runs a 3 s warm-up larson, then one measured larson (6 workers, batch 32) under
# `flock` on the benchmark lock file ($CLUSTERHEAP_BENCH_LOCK or $TMPDIR/clusterheap-bench.lock), reading every silo's utime+stime (/proc/PID/stat) before and after and the
# client's through /usr/bin/time. Prints the raw figures and the CPU microseconds per object (a malloc and
# its free), counting the untimed fill and teardown objects too (so the costs are slight overestimates).
#
#   scripts/cpu-per-object.sh N IN-FLIGHT SECONDS        e.g. scripts/cpu-per-object.sh 3 4 10
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
[ $# -eq 3 ] || { sed -n '2,8p' "$0" >&2; exit 2; }
N=$1 F=$2 S=$3
export CLUSTERHEAP_RUN_DIR="${CLUSTERHEAP_RUN_DIR:-$(mktemp -d /tmp/cpu-per-object.XXXXXX)}"
CLIENT="$ROOT/src/Client/bin/Release/net10.0/linux-x64/clusterheap"
trap 'scripts/cluster.sh down >/dev/null 2>&1 || true' EXIT
scripts/cluster.sh up "$N" >/dev/null
read -r -a CONN <<<"$(scripts/cluster.sh connect)"
"$CLIENT" "${CONN[@]}" stress larson --duration 3 --workers 6 --batch 32 --in-flight "$F" --no-progress >/dev/null
silo_ticks() {
  local t=0 f p
  for f in "$CLUSTERHEAP_RUN_DIR"/node-*.pid; do
    read -r p <"$f"
    t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  echo "$t"
}
json=$(mktemp /tmp/cpu-per-object.XXXXXX.json)
exec 9>"${CLUSTERHEAP_BENCH_LOCK:-${TMPDIR:-/tmp}/clusterheap-bench.lock}"
flock 9
before=$(silo_ticks)
client_s=$( { /usr/bin/time -f '%U %S' "$CLIENT" "${CONN[@]}" stress larson --duration "$S" --workers 6 --batch 32 \
  --in-flight "$F" --no-progress --json "$json" >/dev/null; } 2>&1 | tail -1 | awk '{print $1 + $2}')
after=$(silo_ticks)
flock -u 9
hz=$(getconf CLK_TCK)
objects=$(jq '.mallocs + 5000 * .workers' "$json")   # timed mallocs + the fill (5000 slots per worker)
jq -c '{ops_per_sec, mallocs, p50_us, p99_us, central_calls, cookie_failures, verify_ok}' "$json"
python3 -c "
silo = ($after - $before) / $hz; client = $client_s; n = $objects
print(f'silos={$N} in_flight={$F} silo_cpu_s={silo:.2f} client_cpu_s={client:.2f} objects={n} silo_us_per_object={silo / n * 1e6:.2f} client_us_per_object={client / n * 1e6:.2f}')"
rm -f "$json"
