#!/usr/bin/env bash
# The cost of --metrics-port on larson's rate (README "Observability"): an A/B of
# `clusterheap stress larson` against `scripts/cluster.sh up 3`, each silo with metrics off (A) and on (B,
# --metrics-port, its endpoint scraped every second by curl, as a Prometheus with a 1 s interval would),
# in ABBA order, a fresh cluster per run. Each cluster first runs an unmeasured larson of --warmup seconds
# (growth grants, JIT tiering: on a loaded 2-core machine the silos' code takes long to reach tier 1, and
# the metrics-on silos have more of it), then the measured one. Prints one line per run and the medians:
# larson's rate, and the CPU time the three silo processes used per thousand operations (utime + stime
# from /proc, scrapes included), which other work on a shared machine disturbs far less than the rate.
#
#   scripts/bench-metrics.sh [--repeat 3] [--duration 20] [--warmup 10] [--scrape-interval 1] [--meters LIST]
#                            [--with-orleans]
#
# --meters LIST gives the metrics-on silos --metrics-meters LIST (e.g. ClusterHeap,Microsoft.Orleans to
# add Orleans' meter); by default they export the silo's default, ClusterHeap alone. --with-orleans adds a
# third mode, "orleans" (metrics on with ClusterHeap,Microsoft.Orleans), interleaved with the other two
# (off on orleans, then orleans on off, ...), and reports it against off too.
#
# Wrap it in flock with any other benchmark on the machine. Needs curl and jq.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
REPEAT=3
DURATION=20
WARMUP=10
SCRAPE_INTERVAL=1
METERS=""
MODES=(off on)
METRICS_BASE="${CLUSTERHEAP_BASE_METRICS_PORT:-19464}"
while (($#)); do
  case "$1" in
    --repeat) REPEAT=$2; shift ;;
    --duration) DURATION=$2; shift ;;
    --warmup) WARMUP=$2; shift ;;
    --scrape-interval) SCRAPE_INTERVAL=$2; shift ;;
    --meters) METERS=$2; shift ;;
    --with-orleans) MODES=(off on orleans) ;;
    *) echo "bench-metrics.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
  shift
done
export CLUSTERHEAP_RUN_DIR="${CLUSTERHEAP_RUN_DIR:-$ROOT/.run/bench-metrics}"
CLIENT="$ROOT/src/Client/bin/Release/net10.0/linux-x64/clusterheap"
OUT="$CLUSTERHEAP_RUN_DIR/results"
mkdir -p "$OUT"
SCRAPER=""

silo_cpu_ticks() { # user + system clock ticks of the cluster's silo processes
  local total=0 pid f
  for f in "$CLUSTERHEAP_RUN_DIR"/node-*.pid; do
    pid=$(cat "$f")
    read -r -a stat <"/proc/$pid/stat"
    total=$((total + stat[13] + stat[14]))
  done
  echo "$total"
}

cleanup() {
  [[ -z "$SCRAPER" ]] || kill "$SCRAPER" 2>/dev/null || true
  scripts/cluster.sh down >/dev/null 2>&1 || true
}
trap cleanup EXIT

scrape_forever() { # scrapes every node's endpoint every SCRAPE_INTERVAL seconds; counts failures
  local k
  while true; do
    for ((k = 0; k < 3; k++)); do
      curl -sf -o /dev/null "http://127.0.0.1:$((METRICS_BASE + k))/metrics" || echo "scrape of node-$((k + 1)) failed" >&2
    done
    sleep "$SCRAPE_INTERVAL"
  done
}

run() { # MODE REP
  local mode=$1 rep=$2 json="$OUT/larson-$1-$2.json" observe=() silo=(--arena-size 8GiB --procs 2)
  case "$mode" in
    on) observe=(--metrics "$METRICS_BASE"); [[ -z "$METERS" ]] || silo+=(--metrics-meters "$METERS") ;;
    orleans) observe=(--metrics "$METRICS_BASE"); silo+=(--metrics-meters "ClusterHeap,Microsoft.Orleans") ;;
  esac
  scripts/cluster.sh up 3 "${observe[@]}" -- "${silo[@]}" >"$OUT/up-$mode-$rep.log" 2>&1
  if [[ "$mode" != off ]]; then
    scrape_forever 2>>"$OUT/scrape-$rep.log" &
    SCRAPER=$!
  fi
  # shellcheck disable=SC2046 # the connect options are words
  if ((WARMUP > 0)); then
    "$CLIENT" $(scripts/cluster.sh connect) stress larson --duration "$WARMUP" </dev/null >"$OUT/warmup-$mode-$rep.out" 2>&1
  fi
  local ticks0 ticks1
  ticks0=$(silo_cpu_ticks)
  # shellcheck disable=SC2046
  "$CLIENT" $(scripts/cluster.sh connect) stress larson --duration "$DURATION" --json "$json" </dev/null >"$OUT/larson-$mode-$rep.out" 2>&1
  ticks1=$(silo_cpu_ticks)
  if [[ -n "$SCRAPER" ]]; then
    kill "$SCRAPER"
    wait "$SCRAPER" 2>/dev/null || true
    SCRAPER=""
  fi
  scripts/cluster.sh down >/dev/null 2>&1
  local ops cpu_ms
  ops=$(jq -r .ops "$json")
  cpu_ms=$(((ticks1 - ticks0) * 1000 / $(getconf CLK_TCK)))
  printf '%s rep=%s ops_per_sec=%s ops=%s silo_cpu_ms=%s cpu_us_per_kop=%s p50_us=%s p99_us=%s errors=%s cookie_failures=%s\n' "$mode" "$rep" \
    "$(jq -r .ops_per_sec "$json")" "$ops" "$cpu_ms" "$((cpu_ms * 1000000 / ops))" "$(jq -r .p50_us "$json")" "$(jq -r .p99_us "$json")" \
    "$(jq -r .errors "$json")" "$(jq -r .cookie_failures "$json")" | tee -a "$OUT/runs.txt"
}

: >"$OUT/runs.txt"
echo "# $(date -u +%Y-%m-%dT%H:%MZ) larson ${DURATION}s after ${WARMUP}s of warm-up, 3 silos, scrape every ${SCRAPE_INTERVAL}s when on, meters ${METERS:-ClusterHeap}, modes ${MODES[*]}, ABBA x $REPEAT"
for ((rep = 1; rep <= REPEAT; rep++)); do
  order=("${MODES[@]}")
  if ((rep % 2 == 0)); then
    order=()
    for ((i = ${#MODES[@]} - 1; i >= 0; i--)); do order+=("${MODES[i]}"); done
  fi
  for mode in "${order[@]}"; do run "$mode" "$rep"; done
done

median() { sort -n | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
off=$(sed -n 's/^off .*ops_per_sec=\([0-9.]*\).*/\1/p' "$OUT/runs.txt" | median)
coff=$(sed -n 's/^off .*cpu_us_per_kop=\([0-9]*\).*/\1/p' "$OUT/runs.txt" | median)
for mode in "${MODES[@]:1}"; do
  rate=$(sed -n "s/^$mode .*ops_per_sec=\\([0-9.]*\\).*/\\1/p" "$OUT/runs.txt" | median)
  cpu=$(sed -n "s/^$mode .*cpu_us_per_kop=\\([0-9]*\\).*/\\1/p" "$OUT/runs.txt" | median)
  echo "median ops/s: off $off, $mode $rate; $mode/off = $(awk -v a="$rate" -v b="$off" 'BEGIN { printf "%.3f", a / b }')"
  echo "median silo CPU per 1000 ops: off ${coff} us, $mode ${cpu} us; $mode/off = $(awk -v a="$cpu" -v b="$coff" 'BEGIN { printf "%.3f", a / b }')"
done
