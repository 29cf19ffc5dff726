#!/usr/bin/env bash
# What the cluster collector's per-call hooks (src/Grains/Gc/GcGateFilter.cs: the gate, rooting every malloc for its
# client, dropping the roots of every free) cost larson, measured in one run, interleaved:
#   base     another commit (default main), built from `git archive` of it: the before of an A/B
#   hooks    this checkout (its working tree)
#   nohooks  this checkout built with -p:ClusterHeapBenchNoGcHooks=true: the filter takes no hook but the lease
#            calls' (no gate, no rooting); a build for this benchmark only, never shipped
# Each measurement is a fresh cluster of 3 silo processes (scripts/cluster.sh up 3 of that build), larson with that
# build's client (6 workers, batch 32, one round in flight) for --warmup seconds, then --seconds timed. The order of the
# variants alternates each repetition; every repetition holds the bench lock ($CLUSTERHEAP_BENCH_LOCK or
# $TMPDIR/clusterheap-bench.lock). With --profile, then perf on node-1 and on the client of a cluster of this build.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: scripts/bench-gc-hooks.sh [--repeat R] [--seconds S] [--warmup W] [--baseline REF] [--variants "base hooks nohooks"] [--profile]

  --repeat R      repetitions (default 3); medians and ranges of R
  --seconds S     timed seconds of each larson (default 8)
  --warmup W      larson seconds before the timed one, on the same cluster (default 4)
  --baseline REF  the commit of the base variant (default main)
  --variants V    which variants to run (default "base hooks nohooks")
  --profile       afterwards: perf record -F 499 -g for 8 s on node-1 and on the client during larson on this build

Output: bench/results/gc-hooks-YYYYMMDD-HHMM.txt (raw lines, medians, profile). Builds of base and nohooks are kept
in .run/bench-gc-hooks/ by commit. Needs dotnet, jq, python3, flock (perf for --profile).
USAGE
}

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
cmdline="scripts/bench-gc-hooks.sh${*:+ $*}"
repeat=3 seconds=8 warmup=4 baseline=main variants="base hooks nohooks" profile=0
while [ $# -gt 0 ]; do
  case $1 in
    --repeat) repeat=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --baseline) baseline=$2; shift 2 ;;
    --variants) variants=$2; shift 2 ;;
    --profile) profile=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "bench-gc-hooks: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done
for tool in jq python3 flock; do
  command -v $tool >/dev/null || { echo "bench-gc-hooks: $tool is missing" >&2; exit 2; }
done
((profile == 0)) || command -v perf >/dev/null || { echo "bench-gc-hooks: perf is missing (apt-get install -y linux-perf)" >&2; exit 2; }

CACHE="$ROOT/.run/bench-gc-hooks"
WORK=$(mktemp -d /tmp/bench-gc-hooks.XXXXXX)
mkdir -p "$CACHE" "$ROOT/bench/results"
stamp=$(date -u +%Y%m%d-%H%M)
RAW="$ROOT/bench/results/gc-hooks-$stamp.txt"

build() { # DIR
  for p in src/Silo src/Client; do
    (cd "$1" && dotnet build -c Release "$p" -nologo -v q -clp:ErrorsOnly -clp:NoSummary)
  done
}

# A source tree of COMMIT in DIR (kept: built once per commit).
tree_of() { # COMMIT DIR
  if [ ! -f "$2/.complete" ]; then
    rm -rf "$2"
    mkdir -p "$2"
    git archive "$1" | tar -x -C "$2"
    touch "$2/.complete"
  fi
}

declare -A DIR
work_tree=$(git stash create 2>/dev/null || true)
work_tree=${work_tree:-HEAD}
base_commit=$(git rev-parse --short "$baseline")
head_commit=$(git rev-parse --short HEAD)
for v in $variants; do
  case $v in
    base) DIR[base]="$CACHE/base-$base_commit"; tree_of "$baseline" "${DIR[base]}"; build "${DIR[base]}" ;;
    hooks) DIR[hooks]="$ROOT"; build "$ROOT" ;;
    nohooks)
      DIR[nohooks]="$CACHE/nohooks-$(git rev-parse --short "$work_tree")"
      tree_of "$work_tree" "${DIR[nohooks]}"
      # Every build in that tree (cluster.sh's own too) takes the property: MSBuild reads Directory.Build.rsp.
      echo "-p:ClusterHeapBenchNoGcHooks=true" >"${DIR[nohooks]}/Directory.Build.rsp"
      build "${DIR[nohooks]}" ;;
    *) echo "bench-gc-hooks: unknown variant $v (base, hooks, nohooks)" >&2; exit 2 ;;
  esac
done

runs=0
cleanup() { # every cluster this script started (one run folder each), then the work folder
  local run
  for run in "$WORK"/run-*; do
    if [ -d "$run" ]; then CLUSTERHEAP_RUN_DIR="$run" scripts/cluster.sh down >/dev/null 2>&1 || true; fi
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

client_of() { echo "$1/src/Client/bin/Release/net10.0/linux-x64/clusterheap"; }

up() { # VARIANT-DIR: a fresh cluster of 3 silos of that build in a run folder of its own; sets RUN and CONNECT
  runs=$((runs + 1))
  RUN="$WORK/run-$runs"
  CLUSTERHEAP_RUN_DIR="$RUN" "$1/scripts/cluster.sh" up 3 >"$WORK/up.log" 2>&1
  CONNECT=$(CLUSTERHEAP_RUN_DIR="$RUN" "$1/scripts/cluster.sh" connect)
}

down() { CLUSTERHEAP_RUN_DIR="$RUN" scripts/cluster.sh down >/dev/null 2>&1 || true; }

silo_ticks() { # CPU ticks (user + system) of the cluster's three silos so far
  local k t=0 f
  for k in 1 2 3; do
    read -r -a f <"/proc/$(cat "$RUN/node-$k.pid")/stat"
    t=$((t + f[13] + f[14]))
  done
  echo "$t"
}

measure() { # VARIANT: one line of figures
  local dir=${DIR[$1]} client json="$WORK/larson.json"
  client=$(client_of "$dir")
  up "$dir"
  # shellcheck disable=SC2086
  "$client" $CONNECT stress larson --duration "$warmup" --workers 6 --batch 32 --no-progress >"$WORK/warmup.out" 2>&1 || true
  rm -f "$json"
  local t0 t1
  t0=$(silo_ticks)
  # shellcheck disable=SC2086
  "$client" $CONNECT stress larson --duration "$seconds" --workers 6 --batch 32 --no-progress --json "$json" >"$WORK/larson.out" 2>&1 || true
  t1=$(silo_ticks)
  down
  if [ -s "$json" ]; then
    # Silo CPU per 1000 ops (the three silos, user + system, over the timed run): less at the mercy of a busy machine
    # than the rate, since time spent waiting for a core is not counted.
    jq -r --arg v "$1" --argjson ticks $((t1 - t0)) --argjson hz "$(getconf CLK_TCK)" \
      '"variant=\($v) ops_per_sec=\(.ops_per_sec|floor) silo_cpu_us_per_kop=\(($ticks / $hz * 1e9 / .ops)|floor) p50us=\(.p50_us|floor) p99us=\(.p99_us|floor) cookie_failures=\(.cookie_failures) errors=\(.errors) verify_ok=\(.verify_ok)"' "$json"
  else
    echo "variant=$1 failed=1 $(tail -1 "$WORK/larson.out")"
  fi
}

{
  echo "# scripts/bench-gc-hooks.sh, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "# command: $cmdline"
  echo "# base = $baseline ($base_commit); hooks = this checkout ($head_commit + working tree); nohooks = the same built without the hooks"
  echo "# each line: a fresh cluster of 3 silo processes, larson 6 workers, batch 32, 1 round in flight, ${warmup} s warm-up then ${seconds} s timed"
} | tee "$RAW"
exec 9>"${CLUSTERHEAP_BENCH_LOCK:-${TMPDIR:-/tmp}/clusterheap-bench.lock}"
read -r -a order <<<"$variants"
for rep in $(seq "$repeat"); do
  flock 9
  steps=("${order[@]}")
  if ((rep % 2 == 0)); then mapfile -t steps < <(printf '%s\n' "${order[@]}" | tac); fi
  for v in "${steps[@]}"; do
    measure "$v" >"$WORK/line"
    echo "rep=$rep $(cat "$WORK/line") load=$(cut -d' ' -f1 /proc/loadavg)" | tee -a "$RAW"
  done
  flock -u 9
done

python3 - "$RAW" <<'PY' | tee -a "$RAW"
import re, statistics, sys
def table(key, title, cost):
    rows = {}
    for line in open(sys.argv[1]):
        if line.startswith('#'): continue
        kv = dict(re.findall(r'(\w+)=(\S+)', line))
        if key in kv: rows.setdefault(kv['variant'], []).append(float(kv[key]))
    med = {v: statistics.median(r) for v, r in rows.items()}
    print(f'# {title}, median (range):')
    for v, r in rows.items():
        rel = f", {med[v] / med['nohooks']:.3f}x nohooks" if 'nohooks' in med else ''
        print(f'#   {v:8} {med[v]:>11,.0f} ({min(r):,.0f}-{max(r):,.0f}), n={len(r)}{rel}'.replace(',', ' '))
    if 'nohooks' in med:
        for v in med:
            if v != 'nohooks': print(f'# the hooks ({v}): {cost(med[v] / med["nohooks"]):+.1f} % {title}')
table('ops_per_sec', 'larson ops/s', lambda r: 100 * (r - 1))
table('silo_cpu_us_per_kop', 'silo CPU us per 1000 ops', lambda r: 100 * (r - 1))
PY

if ((profile)); then
  flock 9
  dir=${DIR[hooks]:-$ROOT}
  client=$(client_of "$dir")
  DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0 up "$dir"
  # shellcheck disable=SC2086
  "$client" $CONNECT stress larson --duration "$warmup" --workers 6 --batch 32 --no-progress >"$WORK/warmup.out" 2>&1 || true
  # shellcheck disable=SC2086
  DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0 "$client" $CONNECT stress larson --duration $((seconds + 4)) --workers 6 --batch 32 \
    --json "$WORK/profile.json" >"$WORK/profile.out" 2>&1 &
  larson=$!
  until grep -q '^progress' "$WORK/profile.out" 2>/dev/null || ! kill -0 "$larson" 2>/dev/null; do sleep 0.2; done
  node=$(cat "$RUN/node-1.pid")
  perf record -F 499 -g -p "$node" -o "$WORK/node.perf" -- sleep "$seconds" >"$WORK/perf-node.log" 2>&1 &
  perf record -F 499 -g -p "$larson" -o "$WORK/client.perf" -- sleep "$seconds" >"$WORK/perf-client.log" 2>&1
  wait "$larson" || true
  wait
  down
  flock -u 9
  hooks='GcGateFilter|ClientRoots|RootIndex|RootSet|GcGate|GcCaller|System.Threading.Lock|RequestContext|ClientRootLease'
  set +o pipefail   # head stops reading perf's report early
  {
    echo "# profile: perf record -F 499 -g, ${seconds} s of larson on this build's 3 silos after ${warmup} s of warm-up; larson $(jq -r '.ops_per_sec|floor' "$WORK/profile.json") ops/s"
    echo "# node-1, self time by symbol (top 20):"
    perf report -i "$WORK/node.perf" --stdio -g none --no-children --sort sym 2>/dev/null | grep '%' | head -20 | cut -c1-200
    echo "# node-1, the hooks' symbols (self):"
    perf report -i "$WORK/node.perf" --stdio -g none --no-children --sort sym 2>/dev/null | grep '%' | grep -E "$hooks" | cut -c1-200
    echo "# node-1, the hooks with what they call (children), top 8:"
    perf report -i "$WORK/node.perf" --stdio -g none --children --sort sym 2>/dev/null | grep '%' | grep -E 'GcGateFilter|ClientRoots' | head -8 | cut -c1-200
    echo "# client, the old hooks' symbols (self; none expected):"
    perf report -i "$WORK/client.perf" --stdio -g none --no-children --sort sym 2>/dev/null | grep '%' | grep -E "$hooks" | cut -c1-200 || echo "    (none)"
    echo "# client, self time by symbol (top 12):"
    perf report -i "$WORK/client.perf" --stdio -g none --no-children --sort sym 2>/dev/null | grep '%' | head -12 | cut -c1-200
  } | tee -a "$RAW"
fi
echo "bench-gc-hooks: $RAW" >&2
