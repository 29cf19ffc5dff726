#!/usr/bin/env bash
# Where a scraped silo's time goes (README "The cost"): for each MODE, a fresh `scripts/cluster.sh up 3`
# (off: no metrics; clusterheap: --metrics-port with the ClusterHeap meter; orleans: with
# ClusterHeap,Microsoft.Orleans), every silo scraped each second when on, a larson warm-up, then a larson
# run during which `perf record -g` samples node-1 for 10 s. The silos run with DOTNET_PerfMapEnabled=1 and
# DOTNET_EnableWriteXorExecute=0 so that perf names JIT-compiled methods. Prints per mode: node-1's samples,
# the share of the runtime's tiered-compilation thread, of the scrape (OpenTelemetry's collect, inclusive),
# of ReadStats (the world-stopped MemStats read) and of OpenTelemetry's recording of synchronous instruments.
#
#   scripts/profile-metrics.sh [--warmup 8] [--modes off,clusterheap,orleans] [--out DIR]
#
# Needs perf (apt-get install -y linux-perf), curl and jq. Takes the benchmark lock
# ($CLUSTERHEAP_BENCH_LOCK) around each profiled run when it is set.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
WARMUP=8
MODES=off,clusterheap,orleans
OUT=""
while (($#)); do
  case "$1" in
    --warmup) WARMUP=$2; shift ;;
    --modes) MODES=$2; shift ;;
    --out) OUT=$2; shift ;;
    *) echo "profile-metrics.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
  shift
done
command -v perf >/dev/null || { echo "profile-metrics.sh: perf not found (apt-get install -y linux-perf)" >&2; exit 1; }
export CLUSTERHEAP_RUN_DIR="${CLUSTERHEAP_RUN_DIR:-$ROOT/.run/profile-metrics}"
OUT="${OUT:-$CLUSTERHEAP_RUN_DIR/profiles}"
mkdir -p "$OUT"
CLIENT="$ROOT/src/Client/bin/Release/net10.0/linux-x64/clusterheap"
METRICS_BASE="${CLUSTERHEAP_BASE_METRICS_PORT:-19464}"
SCRAPER=""
LARSON=""

cleanup() {
  [[ -z "$SCRAPER" ]] || pkill -P "$SCRAPER" -x curl 2>/dev/null || true
  [[ -z "$LARSON" ]] || kill "$LARSON" 2>/dev/null || true
  scripts/cluster.sh down >/dev/null 2>&1 || true
}
trap cleanup EXIT

share() { # sum|max PERF-DATA REPORT-ARGS... PATTERN: the report lines matching PATTERN, their percentages summed
  # (self shares) or the largest (inclusive shares, where callers contain their callees)
  local how=$1 data=$2 pattern=${*: -1}
  perf report -i "$data" --stdio -g none "${@:3:$#-3}" 2>/dev/null | grep -E "$pattern" |
    awk -v how="$how" '{ v = $1 + 0; if (how == "max") { if (v > s) s = v } else s += v } END { printf "%.2f%%", s }'
}

profile() { # MODE
  local mode=$1 observe=() silo=(--arena-size 8GiB --procs 2) data="$OUT/$1.perf.data"
  case "$mode" in
    off) ;;
    clusterheap) observe=(--metrics "$METRICS_BASE"); silo+=(--metrics-meters ClusterHeap) ;;
    orleans) observe=(--metrics "$METRICS_BASE"); silo+=(--metrics-meters "ClusterHeap,Microsoft.Orleans") ;;
    *) echo "profile-metrics.sh: unknown mode '$mode' (off, clusterheap, orleans)" >&2; exit 2 ;;
  esac
  DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0 \
    scripts/cluster.sh up 3 "${observe[@]}" -- "${silo[@]}" >"$OUT/$mode.up.log" 2>&1
  if [[ "$mode" != off ]]; then
    # One curl per silo, a scrape a second on a kept-alive connection (as bench-metrics.sh and Prometheus scrape).
    (for ((k = 0; k < 3; k++)); do
      stdbuf -oL curl -s --rate 60/m -o /dev/null -w "node-$((k + 1)) %{http_code}\n" "http://127.0.0.1:$((METRICS_BASE + k))/metrics?scrape=[1-1000000]" &
    done
    wait) >>"$OUT/$mode.scrape.log" 2>&1 &
    SCRAPER=$!
  fi
  local connect pid
  connect=$(scripts/cluster.sh connect)
  # shellcheck disable=SC2086 # the connect options are words
  "$CLIENT" $connect stress larson --duration "$WARMUP" </dev/null >"$OUT/$mode.warmup.out" 2>&1
  pid=$(cat "$CLUSTERHEAP_RUN_DIR/node-1.pid")
  # shellcheck disable=SC2086
  "$CLIENT" $connect stress larson --duration 14 --json "$OUT/$mode.json" </dev/null >"$OUT/$mode.larson.out" 2>&1 &
  LARSON=$!
  # The profile starts once the measured run has connected (its first progress line), and lasts 10 s of its 14.
  until grep -q '^progress' "$OUT/$mode.larson.out" 2>/dev/null || ! kill -0 "$LARSON" 2>/dev/null; do sleep 0.2; done
  perf record -F 499 -g -p "$pid" -o "$data" -- sleep 10 >"$OUT/$mode.perf.log" 2>&1
  wait "$LARSON"
  LARSON=""
  if [[ -n "$SCRAPER" ]]; then
    pkill -P "$SCRAPER" -x curl || true
    wait "$SCRAPER" 2>/dev/null || true
    SCRAPER=""
  fi
  scripts/cluster.sh down >/dev/null 2>&1
  local samples
  samples=$(perf report -i "$data" --stdio -g none --no-children --sort comm -n 2>/dev/null | awk '/%/ { s += $2 } END { print s }')
  printf '%s node-1 samples=%s tiered_compilation=%s scrape=%s read_stats=%s otel_recording=%s larson_ops_per_sec=%s\n' "$mode" "$samples" \
    "$(share sum "$data" --no-children --sort comm 'Tiered Com')" \
    "$(share max "$data" --children --sort sym 'PrometheusCollectionManager::')" \
    "$(share max "$data" --children --sort sym 'HeapNodeService::ReadStats')" \
    "$(share sum "$data" --no-children --sort sym 'AggregatorStore::Update|MetricPoint::Update|Instrument`1.*::RecordMeasurement')" \
    "$(jq -r .ops_per_sec "$OUT/$mode.json")" | tee -a "$OUT/profiles.txt"
}

echo "# $(date -u +%Y-%m-%dT%H:%MZ) node-1 of scripts/cluster.sh up 3, perf 10 s during larson after ${WARMUP}s of warm-up; load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/profiles.txt"
IFS=, read -r -a modes <<<"$MODES"
for mode in "${modes[@]}"; do
  if [[ -n "${CLUSTERHEAP_BENCH_LOCK:-}" ]]; then
    exec 9>"$CLUSTERHEAP_BENCH_LOCK"
    flock 9
    profile "$mode"
    flock -u 9
  else
    profile "$mode"
  fi
done
