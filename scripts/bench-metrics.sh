#!/usr/bin/env bash
# The cost of --metrics-port on larson's rate (README "Observability"): an A/B of
# `clusterheap stress larson` against `scripts/cluster.sh up 3`, each silo with metrics off (A) and on (B,
# --metrics-port, its endpoint scraped every second, as a Prometheus with a 1 s interval would: one long-lived
# curl per silo on a kept-alive connection, `--rate`, so the scraper forks nothing per scrape), in ABBA order,
# a fresh cluster per run. Each cluster first runs an unmeasured larson of --warmup seconds
# (growth grants, JIT tiering: on a loaded 2-core machine the silos' code takes long to reach tier 1, and
# the metrics-on silos have more of it), then the measured one. Prints one line per run, then per mode the
# median and range of larson's rate and of the CPU time the three silo processes used per thousand operations
# (utime + stime from /proc, scrapes included; other work on a shared machine disturbs it far less than the
# rate), and the median and range of the paired ratios (each repetition's on run over its off run, which ran
# next to each other, so slow drifts of the machine cancel).
#
#   scripts/bench-metrics.sh [--repeat 3] [--duration 20] [--warmup 10] [--scrape-interval 1] [--meters LIST]
#                            [--with-orleans]
#
# --meters LIST gives the metrics-on silos --metrics-meters LIST (e.g. ClusterHeap,Microsoft.Orleans to
# add Orleans' meter); by default they export the silo's default, ClusterHeap alone. --with-orleans adds a
# third mode, "orleans" (metrics on with ClusterHeap,Microsoft.Orleans), interleaved with the other two
# (off on orleans, then orleans on off, ...), and reports it against off too.
#
# With $CLUSTERHEAP_BENCH_LOCK set, each repetition (its runs of every mode) holds that lock file (flock), so no
# other benchmark that takes it runs meanwhile; without it, wrap the script in flock yourself. Needs curl (7.84 or
# later, for --rate), jq and flock.
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

stop_scraper() { # stops the scraper's curls (children of its subshell); their awks then print their counts and end
  if [[ -n "$SCRAPER" ]]; then
    pkill -P "$SCRAPER" -x curl 2>/dev/null || true
    wait "$SCRAPER" 2>/dev/null || true
    SCRAPER=""
  fi
}

cleanup() {
  stop_scraper
  scripts/cluster.sh down >/dev/null 2>&1 || true
}
trap cleanup EXIT

scrape_forever() { # one curl per node, a scrape every SCRAPE_INTERVAL seconds on one kept-alive connection; logs
  # each failure and, when its curl is stopped, how many scrapes of the node answered 200
  local k per_minute
  per_minute=$(awk -v s="$SCRAPE_INTERVAL" 'BEGIN { printf "%d", 60 / s }')
  for ((k = 0; k < 3; k++)); do
    stdbuf -oL curl -s --rate "$per_minute/m" -o /dev/null -w "node-$((k + 1)) %{http_code}\n" \
      "http://127.0.0.1:$((METRICS_BASE + k))/metrics?scrape=[1-1000000]" |
      awk -v node="node-$((k + 1))" '$2 == 200 { ok++; next } { print "scrape of " node " failed: HTTP " $2; fflush() }
        END { print node ": " ok + 0 " scrapes answered" }' >&2 &
  done
  wait
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
  stop_scraper
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
  [[ -z "${CLUSTERHEAP_BENCH_LOCK:-}" ]] || { exec 9>"$CLUSTERHEAP_BENCH_LOCK"; flock 9; }
  for mode in "${order[@]}"; do run "$mode" "$rep"; done
  [[ -z "${CLUSTERHEAP_BENCH_LOCK:-}" ]] || flock -u 9
done

median() { sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
range() { sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%s-%s", lo, hi }'; }
field() { sed -n "s/^$1 .*$2=\\([0-9.]*\\).*/\\1/p" "$OUT/runs.txt"; } # MODE KEY: that field of every run of MODE, in run order
paired() { # MODE KEY: per repetition, MODE's value over off's
  paste <(sed -n "s/^$1 rep=\\([0-9]*\\) .*$2=\\([0-9.]*\\).*/\\1 \\2/p" "$OUT/runs.txt" | sort -n) \
    <(sed -n "s/^off rep=\\([0-9]*\\) .*$2=\\([0-9.]*\\).*/\\1 \\2/p" "$OUT/runs.txt" | sort -n) |
    awk '$1 == $3 { printf "%.3f\n", $2 / $4 }'
}
off=$(field off ops_per_sec | median)
coff=$(field off cpu_us_per_kop | median)
echo "off: ops/s median $off (range $(field off ops_per_sec | range)); silo CPU per 1000 ops median ${coff} us (range $(field off cpu_us_per_kop | range))"
for mode in "${MODES[@]:1}"; do
  rate=$(field "$mode" ops_per_sec | median)
  cpu=$(field "$mode" cpu_us_per_kop | median)
  echo "$mode: ops/s median $rate (range $(field "$mode" ops_per_sec | range)); silo CPU per 1000 ops median ${cpu} us (range $(field "$mode" cpu_us_per_kop | range))"
  echo "median ops/s: off $off, $mode $rate; $mode/off = $(awk -v a="$rate" -v b="$off" 'BEGIN { printf "%.3f", a / b }')"
  echo "median silo CPU per 1000 ops: off ${coff} us, $mode ${cpu} us; $mode/off = $(awk -v a="$cpu" -v b="$coff" 'BEGIN { printf "%.3f", a / b }')"
  echo "paired $mode/off ops/s, per repetition: $(paired "$mode" ops_per_sec | xargs); median $(paired "$mode" ops_per_sec | median), range $(paired "$mode" ops_per_sec | range)"
  echo "paired $mode/off silo CPU per 1000 ops: $(paired "$mode" cpu_us_per_kop | xargs); median $(paired "$mode" cpu_us_per_kop | median), range $(paired "$mode" cpu_us_per_kop | range)"
done
