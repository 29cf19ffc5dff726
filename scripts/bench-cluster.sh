#!/usr/bin/env bash
# The cluster benchmark (issue 10): larson through ClusterHeap's data path beside its two anchors,
# measured in the same run and interleaved in repetitions so drift on the machine spreads over all:
#   redis         redis-benchmark on the same churn: SET + GET + DEL of 504-byte values over 30 000
#                 keys, 6 connections, pipelines of 32; each rate, the lifecycle rate 1/(1/set+1/get+1/del)
#                 and ops_equiv = 2 x lifecycles (a malloc and a free per object, as stress counts them)
#   orleans-noop  bench/OrleansNoop: one silo process, one client process, a grain call that does
#                 nothing, one at a time and 64 in flight (the transport's own ceiling)
#   larson        clusterheap stress larson (6 workers, batch 32) against 1, 2 and 3 silo processes of
#                 scripts/cluster.sh and an embedded cluster of 3 silos, once per --in-flight value
#   baseline      with --baseline DIR: larson against 3 silo processes of another checkout's Release
#                 build (DIR/scripts/cluster.sh, DIR's client, one round in flight), for before/after
# Every repetition holds a lock file (flock; $CLUSTERHEAP_BENCH_LOCK or $TMPDIR/clusterheap-bench.lock) so no
# other ClusterHeap benchmark on the machine overlaps it.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: scripts/bench-cluster.sh [--repeat R] [--seconds S] [--in-flight "1 4"] [--silos "1 2 3"] [--no-embedded] [--no-build] [--baseline DIR]

  --repeat R        repetitions (default 3); the table shows the median and the range of R
  --seconds S       timed seconds of each larson run (default 10)
  --in-flight LIST  larson --in-flight values to run against each cluster (default "1 4")
  --silos LIST      silo-process cluster sizes (default "1 2 3")
  --no-embedded     skip the embedded cluster
  --no-build        use the existing Release builds
  --baseline DIR    also larson against 3 silos of DIR (another checkout, built with -c Release), as
                    larson-3-baseline-inflight1

Output: the table on stdout; bench/results/cluster-YYYYMMDD-HHMM.txt (every raw line, tagged rep=)
and bench/results/cluster-YYYYMMDD-HHMM.md (machine, date, command, table of medians).
Needs: dotnet, redis-server, redis-benchmark, redis-cli, jq, python3, flock.
EOF
}

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
cmdline="scripts/bench-cluster.sh${*:+ $*}"
repeat=3 seconds=10 inflight="1 4" silos="1 2 3" embedded=1 build=1 baseline=""
while [ $# -gt 0 ]; do
  case $1 in
    --repeat) repeat=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --in-flight) inflight=$2; shift 2 ;;
    --silos) silos=$2; shift 2 ;;
    --no-embedded) embedded=0; shift ;;
    --no-build) build=0; shift ;;
    --baseline) baseline=$(cd "$2" && pwd); shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "bench-cluster: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done
for tool in redis-server redis-benchmark redis-cli jq python3 flock; do
  command -v $tool >/dev/null || { echo "bench-cluster: $tool is missing (apt-get install -y redis-server redis-tools jq)" >&2; exit 2; }
done

CLIENT="$ROOT/src/Client/bin/Release/net10.0/linux-x64/clusterheap"
NOOP="$ROOT/bench/OrleansNoop/bin/Release/net10.0/linux-x64/orleans-noop"
stamp=$(date -u +%Y%m%d-%H%M)
RAW="$ROOT/bench/results/cluster-$stamp.txt"
TABLE="$ROOT/bench/results/cluster-$stamp.md"
WORK=$(mktemp -d /tmp/bench-cluster.XXXXXX)
mkdir -p "$ROOT/bench/results"

if ((build)); then
  for p in src/Silo src/Client bench/OrleansNoop; do
    dotnet build -c Release "$p" -nologo -v q -clp:ErrorsOnly -clp:NoSummary
  done
fi

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
  local p=$1
  while port_busy "$p"; do p=$((p + 1)); done
  echo "$p"
}

# Waits (bounded) until FILE contains TEXT; fails if PID exits first.
wait_for() { # FILE TEXT PID WHAT
  local deadline=$((SECONDS + 120))
  until grep -q "$2" "$1" 2>/dev/null; do
    kill -0 "$3" 2>/dev/null || { tail -20 "$1" >&2; echo "bench-cluster: $4 exited" >&2; exit 1; }
    ((SECONDS < deadline)) || { echo "bench-cluster: $4 not ready after 120 s" >&2; exit 1; }
    sleep 0.2
  done
}

REDIS_PID="" NOOP_PID=""
cleanup() {
  for n in $silos; do
    if [ -d "$WORK/cluster-$n" ]; then CLUSTERHEAP_RUN_DIR="$WORK/cluster-$n" scripts/cluster.sh down >/dev/null 2>&1 || true; fi
  done
  if [ -n "$baseline" ] && [ -d "$WORK/baseline" ]; then
    CLUSTERHEAP_RUN_DIR="$WORK/baseline" "$baseline/scripts/cluster.sh" down >/dev/null 2>&1 || true
  fi
  for pid in "$REDIS_PID" "$NOOP_PID"; do
    if [ -n "$pid" ] && kill "$pid" 2>/dev/null; then wait "$pid" 2>/dev/null || true; fi
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

# Anchors and clusters all stay up for the whole run (idle when not measured).
redis_port=$(free_port 16600)
redis-server --port "$redis_port" --save '' --appendonly no --bind 127.0.0.1 >"$WORK/redis.log" 2>&1 &
REDIS_PID=$!
wait_for "$WORK/redis.log" "Ready to accept" "$REDIS_PID" redis-server
noop_gw=$(free_port 30960)
noop_silo=$(free_port 11960)
"$NOOP" silo --silo-port "$noop_silo" --gateway-port "$noop_gw" >"$WORK/noop.log" 2>&1 &
NOOP_PID=$!
wait_for "$WORK/noop.log" "ready" "$NOOP_PID" "orleans-noop silo"
base=22100
declare -A CONNECT
for n in $silos; do
  CLUSTERHEAP_RUN_DIR="$WORK/cluster-$n" CLUSTERHEAP_BASE_SILO_PORT=$base CLUSTERHEAP_BASE_GATEWAY_PORT=$((base + 20000)) \
    scripts/cluster.sh up "$n" >/dev/null
  CONNECT[$n]=$(CLUSTERHEAP_RUN_DIR="$WORK/cluster-$n" scripts/cluster.sh connect)
  base=$((base + 10))
done
if [ -n "$baseline" ]; then
  CLUSTERHEAP_RUN_DIR="$WORK/baseline" CLUSTERHEAP_BASE_SILO_PORT=$base CLUSTERHEAP_BASE_GATEWAY_PORT=$((base + 20000)) \
    "$baseline/scripts/cluster.sh" up 3 >/dev/null
  CONNECT[baseline]=$(CLUSTERHEAP_RUN_DIR="$WORK/baseline" "$baseline/scripts/cluster.sh" connect)
fi

redis_rate() { # redis-benchmark ARGS... -> requests per second
  redis-benchmark -p "$redis_port" -c 6 -P 32 -n 400000 -r 30000 -d 504 -q "$@" 2>/dev/null |
    tr '\r' '\n' | grep -oE '[0-9.]+ requests per second' | tail -1 | cut -d' ' -f1
}

measure_redis() {
  local s g d
  s=$(redis_rate -t set)
  g=$(redis_rate -t get)
  d=$(redis_rate del 'key:__rand_int__')
  python3 -c "
s,g,d=$s,$g,$d
life=1/(1/s+1/g+1/d)
print(f'what=redis set={s:.0f} get={g:.0f} del={d:.0f} lifecycles={life:.0f} ops_equiv={2*life:.0f}')"
}

measure_noop() {
  "$NOOP" client --gateway-port "$noop_gw" --seconds 3 | sed 's/^/what=orleans-/'
}

measure_larson() { # TARGET IN-FLIGHT
  local target=$1 f=$2 json="$WORK/larson.json" conn client=$CLIENT depth="--in-flight $2"
  if [ "$target" = embedded ]; then conn="--embedded 3"; else conn=${CONNECT[$target]}; fi
  if [ "$target" = baseline ]; then
    target=3-baseline client="$baseline/src/Client/bin/Release/net10.0/linux-x64/clusterheap" depth=""
  fi
  rm -f "$json"
  # shellcheck disable=SC2086
  "$client" $conn stress larson --duration "$seconds" --workers 6 --batch 32 $depth --no-progress --json "$json" >"$WORK/larson.out" 2>&1 || true
  if [ -s "$json" ]; then
    jq -r --arg t "$target" --arg f "$f" \
      '"what=larson-\($t)-inflight\($f) ops_per_sec=\(.ops_per_sec|floor) p50us=\(.p50_us|floor) p99us=\(.p99_us|floor) cookie_failures=\(.cookie_failures) errors=\(.errors) verify_ok=\(.verify_ok)"' "$json"
  else
    echo "what=larson-$target-inflight$f failed=1 $(tail -1 "$WORK/larson.out")"
  fi
}

{
  echo "# scripts/bench-cluster.sh raw lines, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "# command: $cmdline"
} >"$RAW"
exec 9>"${CLUSTERHEAP_BENCH_LOCK:-${TMPDIR:-/tmp}/clusterheap-bench.lock}"
for rep in $(seq "$repeat"); do
  flock 9
  targets=()
  for n in $silos; do targets+=("$n"); done
  if ((embedded)); then targets+=(embedded); fi
  # Alternate the order each repetition: anchors first, then last.
  steps=(redis noop)
  for t in "${targets[@]}"; do for f in $inflight; do steps+=("larson:$t:$f"); done; done
  if [ -n "$baseline" ]; then steps+=("larson:baseline:1"); fi
  if ((rep % 2 == 0)); then mapfile -t steps < <(printf '%s\n' "${steps[@]}" | tac); fi
  for step in "${steps[@]}"; do
    case $step in
      redis) line=$(measure_redis) ;;
      noop) line=$(measure_noop) ;;
      larson:*) IFS=: read -r _ t f <<<"$step"; line=$(measure_larson "$t" "$f") ;;
    esac
    while IFS= read -r l; do echo "rep=$rep $l load=$(cut -d' ' -f1 /proc/loadavg)" | tee -a "$RAW"; done <<<"$line"
  done
  flock -u 9
done

python3 - "$RAW" "$TABLE" "$cmdline" <<'PY'
import re, statistics, sys, datetime, os
raw, table, cmd = sys.argv[1:4]
rows = {}
for line in open(raw):
    if line.startswith('#'): continue
    kv = dict(re.findall(r'(\w+)=(\S+)', line))
    what = kv['what']
    if 'failed' in kv: rows.setdefault(what, []).append(None); continue
    if what == 'redis': val = float(kv['ops_equiv']); extra = f"set {kv['set']}/s, get {kv['get']}/s, del {kv['del']}/s, {kv['lifecycles']} lifecycles/s"
    elif what.startswith('orleans-noop'): val = float(kv['rate']); extra = f"p50 {kv['p50us']} µs, p99 {kv['p99us']} µs"
    else: val = float(kv['ops_per_sec']); extra = f"p50 {kv['p50us']} µs, p99 {kv['p99us']} µs, cookie failures {kv['cookie_failures']}, errors {kv['errors']}, verify {kv['verify_ok']}"
    rows.setdefault(what, []).append((val, extra))
def med(xs): return statistics.median(xs) if xs else float('nan')
redis = med([v for v, _ in (r for r in rows.get('redis', []) if r)])
out = [f"# Cluster benchmark, {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC", "",
       f"Command: `{cmd}` on {os.cpu_count()} cores (shared with other work; anchors measured in the same run).", "",
       "| what | median | range (min–max) | × Redis ops_equiv | reps | last rep |", "|---|---:|---:|---:|---:|---|"]
for what, rs in rows.items():
    good = [r for r in rs if r]
    vals = [v for v, _ in good]
    ratio = f"{med(vals) / redis:.2f}" if what != 'redis' and not what.startswith('orleans') and redis == redis else ""
    unit = "calls/s" if what.startswith('orleans') else "ops/s"
    rng = f"{min(vals):.0f}–{max(vals):.0f}" if vals else "-"
    out.append(f"| {what} | {med(vals):.0f} {unit} | {rng} | {ratio} | {len(good)}/{len(rs)} | {good[-1][1] if good else 'failed'} |")
text = "\n".join(out) + "\n"
open(table, "w").write(text)
print(text)
PY
echo "raw lines: $RAW"
echo "table:     $TABLE"
