#!/usr/bin/env bash
# The cluster collector's pauses (README "Collection across nodes"; issue 11's target: p99 <= 10 ms concurrent and
# <= 100 ms stop the world, at 3 x 32 MiB live): `clusterheap stress graph` on three local silo processes
# (scripts/cluster.sh up 3), building linked structures whose pointers cross nodes and keeping about --live bytes
# reachable (the workload retires its oldest objects past that), with a forced cycle per round. Both modes, --repeat
# times each, interleaved; a fresh cluster per run. Cycles before the reachable set reached 90 % of --live are warm-up
# and not counted. Prints per run and per mode (medians over the runs, with their min-max spread): pause p50/p99/max,
# the live bytes each node marked (its median over the counted cycles), and where the pauses went — the coordinator's
# rounds of calls (stop/begin/terminate/finish, round trips included; concurrent: the cut round, which is no pause of
# the cluster's) and the slowest node's own parts (GcNodeParts; concurrent: its cut, the node's own pause 1).
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: scripts/bench-gc-cluster.sh [--modes "stw concurrent"] [--repeat R] [--duration D] [--live BYTES]
                                   [--size BYTES] [--per-round N] [--baseline DIR] [-h]

  --modes M        the silos' --gc-mode values to run (default "stw concurrent")
  --repeat R       runs per mode (default 3), interleaved
  --duration D     timed phase of each stress run (default 30s)
  --live BYTES     reachable bytes the workers keep, all nodes together (default 96MiB: 3 x 32 MiB)
  --size BYTES     object size, a scan object linked through six pointer words (default 4096)
  --per-round N    new objects per worker per round (default 500; 6 workers)
  --baseline DIR   also run another checkout's silos (DIR, built with -c Release) with this client, interleaved
                   with this tree's: a before/after in one run (DIR's silos report no pause parts if they predate them)
  -h, --help       this text

Uses its own run folder and ports if CLUSTERHEAP_RUN_DIR / CLUSTERHEAP_BASE_* are set (scripts/cluster.sh), and takes
the benchmark lock $CLUSTERHEAP_BENCH_LOCK (flock) around each timed run when it is set. Writes the per-run lines and
the summary to bench/results/gc-cluster-YYYYMMDD-HHMM.txt. Needs: bash, dotnet, jq, flock.
USAGE
}

modes="stw concurrent"
repeat=3
duration=30s
live=96MiB
size=4096
per_round=500
baseline=
while [ $# -gt 0 ]; do
  case $1 in
    --modes) [ $# -ge 2 ] || { echo "bench-gc-cluster: --modes needs a value" >&2; exit 2; }; modes=$2; shift 2 ;;
    --repeat) [ $# -ge 2 ] || { echo "bench-gc-cluster: --repeat needs a value" >&2; exit 2; }; repeat=$2; shift 2 ;;
    --duration) [ $# -ge 2 ] || { echo "bench-gc-cluster: --duration needs a value" >&2; exit 2; }; duration=$2; shift 2 ;;
    --live) [ $# -ge 2 ] || { echo "bench-gc-cluster: --live needs a value" >&2; exit 2; }; live=$2; shift 2 ;;
    --size) [ $# -ge 2 ] || { echo "bench-gc-cluster: --size needs a value" >&2; exit 2; }; size=$2; shift 2 ;;
    --per-round) [ $# -ge 2 ] || { echo "bench-gc-cluster: --per-round needs a value" >&2; exit 2; }; per_round=$2; shift 2 ;;
    --baseline) [ $# -ge 2 ] || { echo "bench-gc-cluster: --baseline needs a directory" >&2; exit 2; }; baseline=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench-gc-cluster: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
command -v jq >/dev/null || { echo "bench-gc-cluster: jq not on PATH (Debian: apt-get install jq)" >&2; exit 1; }
[[ $repeat =~ ^[1-9][0-9]*$ ]] || { echo "bench-gc-cluster: --repeat must be a positive integer, not '$repeat'" >&2; exit 2; }
for m in $modes; do
  case $m in stw|concurrent) ;; *) echo "bench-gc-cluster: --modes: '$m' is not stw or concurrent" >&2; exit 2 ;; esac
done

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
client=$repo/src/Client/bin/Release/net10.0/linux-x64/clusterheap
builds=(this)
if [ -n "$baseline" ]; then
  baseline=$(cd "$baseline" 2>/dev/null && pwd) || { echo "bench-gc-cluster: --baseline: no directory '$baseline'" >&2; exit 2; }
  [ -x "$baseline/scripts/cluster.sh" ] || { echo "bench-gc-cluster: --baseline $baseline has no scripts/cluster.sh" >&2; exit 2; }
  builds=(this baseline)
fi
run_dir=${CLUSTERHEAP_RUN_DIR:-$repo/.run/cluster}
export CLUSTERHEAP_RUN_DIR=$run_dir
mkdir -p "$run_dir" "$repo/bench/results"
out=$repo/bench/results/gc-cluster-$(date -u +%Y%m%d-%H%M).txt
current=
cleanup() { [ -z "$current" ] || "$current/scripts/cluster.sh" down >/dev/null 2>&1 || true; }
trap cleanup EXIT

# Builds first (cluster.sh up builds once, Release), so no build runs inside a timed phase.
dotnet build "$repo/src/Client/ClusterHeap.Client.csproj" -c Release -nologo -v q -clp:ErrorsOnly -clp:NoSummary >&2
lock=()
[ -n "${CLUSTERHEAP_BENCH_LOCK:-}" ] && lock=(flock "$CLUSTERHEAP_BENCH_LOCK")

one_run() { # build mode rep
  local build=$1 mode=$2 rep=$3 root=$repo json=$run_dir/graph.json
  [ "$build" = baseline ] && root=$baseline
  current=$root
  "$root/scripts/cluster.sh" up 3 -- --arena-size 8GiB --procs 2 --gc-mode "$mode" >/dev/null
  local connect
  read -r -a connect <<<"$("$root/scripts/cluster.sh" connect)"
  rm -f "$json"
  "${lock[@]}" "$client" "${connect[@]}" --connect-timeout 60s stress graph --duration "$duration" --size "$size" --slots "$per_round" --workers 6 \
    --live "$live" --json "$json" --no-progress >"$run_dir/graph-$build-$mode-$rep.log" 2>&1 \
    || { echo "bench-gc-cluster: stress graph failed ($build $mode rep $rep): see $run_dir/graph-$build-$mode-$rep.log" >&2; }
  "$root/scripts/cluster.sh" down >/dev/null 2>&1 || true
  current=
  [ -f "$json" ] || return 0
  jq -r --arg b "$build" --arg m "$mode" --arg r "$rep" '
    "build=\($b) mode=\($m) rep=\($r) passed=\(.passed) exact=\(.gc_exact|tostring|.[0:3]) cycles=\(.gc_cycles) warmup=\(.gc_warmup_cycles // 0)" +
    " p50=\(.gc_pause_p50_ms) p99=\(.gc_pause_p99_ms) max=\(.gc_pause_max_ms) live_mb=\(.gc_live_mb // "-")" +
    " sweep=\(.gc_sweep_ms // "-") stop=\(.gc_stop_ms // "-") begin=\(.gc_begin_ms // "-") cut=\(.gc_cut_ms // "-")" +
    " terminate=\(.gc_terminate_ms // "-") finish=\(.gc_finish_ms // "-") rounds=\(.gc_rounds // "-")" +
    " node_gate=\(.gc_node_gate_ms // "-") node_cut=\(.gc_node_cut_ms // "-") node_begin=\(.gc_node_begin_ms // "-") node_terminate=\(.gc_node_terminate_ms // "-")" +
    " node_finish=\(.gc_node_finish_ms // "-") node_paused=\(.gc_node_paused_ms // "-") node_sweep=\(.gc_node_sweep_ms // "-")" +
    " swept_in_pause_max=\(.gc_node_swept_in_pause_max // "-") per_node=\"\(.gc_live_mb_per_node // "-")\"" +
    " gates_p50=\(.gc_pause_gates_p50_ms // "-") gates_p99=\(.gc_pause_gates_p99_ms // "-") gates_max=\(.gc_pause_gates_max_ms // "-")" +
    " managed_gc=\(.gc_managed_gc_ms // "-") node_managed_gc=\(.gc_node_managed_gc_ms // "-")" +
    " stop_out=\(.gc_stop_out_ms // "-")" +
    " stop2_out=\(.gc_stop2_out_ms // "-") finish_out=\(.gc_finish_out_ms // "-") finish_back=\(.gc_finish_back_ms // "-")" +
    " slow_pause=\(.gc_slowest_pause_ms // "-") slow_gates=\(.gc_slowest_gates_ms // "-") slow_stop=\(.gc_slowest_stop_ms // "-")" +
    " slow_begin=\(.gc_slowest_begin_ms // "-") slow_cut=\(.gc_slowest_cut_ms // "-") slow_terminate=\(.gc_slowest_terminate_ms // "-")" +
    " slow_finish=\(.gc_slowest_finish_ms // "-") slow_rounds=\(.gc_slowest_rounds // "-")" +
    " slow_managed_gc=\(.gc_slowest_managed_gc_ms // "-") slow_managed_gcs=\(.gc_slowest_managed_gcs // "-")" +
    " slow_node_gate=\(.gc_slowest_node_gate_ms // "-") slow_node_cut=\(.gc_slowest_node_cut_ms // "-") slow_node_begin=\(.gc_slowest_node_begin_ms // "-")" +
    " slow_node_terminate=\(.gc_slowest_node_terminate_ms // "-") slow_node_finish=\(.gc_slowest_node_finish_ms // "-")" +
    " slow_node_paused=\(.gc_slowest_node_paused_ms // "-") slow_node_managed_gc=\(.gc_slowest_node_managed_gc_ms // "-")" +
    " slow_node_managed_gcs=\(.gc_slowest_node_managed_gcs // "-") slow_node_queued=\(.gc_slowest_node_queued_at_stop // "-")" +
    " slow_node_drained=\(.gc_slowest_node_drained // "-") slow_node_held=\(.gc_slowest_node_held // "-")" +
    " slow_stop_out=\(.gc_slowest_stop_out_ms // "-") slow_stop2_out=\(.gc_slowest_stop2_out_ms // "-")" +
    " slow_finish_out=\(.gc_slowest_finish_out_ms // "-") slow_finish_back=\(.gc_slowest_finish_back_ms // "-")" +
    " slow_per_node=\"\(.gc_slowest_per_node // "-")\""' "$json" | tee -a "$out"
}

echo "stress graph on 3 silo processes: --live $live, --size $size, --per-round $per_round x 6 workers, $duration per run," \
  "modes: $modes, $repeat run(s) each${baseline:+, baseline silos from $baseline}" | tee "$out"
for ((r = 1; r <= repeat; r++)); do
  for m in $modes; do
    order=("${builds[@]}")
    if [ ${#builds[@]} -eq 2 ] && [ $((r % 2)) -eq 0 ]; then order=(baseline this); fi
    for b in "${order[@]}"; do one_run "$b" "$m" "$r"; done
  done
done

# Summary: per build and mode, the median of each figure over the runs, with min-max.
summary() {
  awk '
    function field(name,   i, kv) { for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == name) return kv[2] } return "-" }
    function med(key,   n, a, i, j, t) {
      n = split(vals[key], a, " "); if (n == 0 || vals[key] == "") return "-"
      for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
      if (n == 1) return a[1]
      m = (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
      return sprintf("%s (%s-%s)", m, a[1], a[n])
    }
    {
      k = field("build") " " field("mode"); if (!(k in seen)) { seen[k] = 1; order[++nk] = k }
      runs[k]++; if (field("exact") != "yes" || field("passed") != "true") bad[k]++
      for (f = 1; f <= nf; f++) { v = field(names[f]); if (v != "-" && v != "") vals[k SUBSEP names[f]] = vals[k SUBSEP names[f]] " " v }
    }
    BEGIN { nf = split("cycles p50 p99 max live_mb sweep stop begin cut terminate finish rounds node_gate node_cut node_begin node_terminate node_finish node_paused swept_in_pause_max gates_p50 gates_p99 gates_max managed_gc node_managed_gc stop_out stop2_out finish_out finish_back slow_pause slow_gates slow_stop slow_begin slow_cut slow_terminate slow_finish slow_managed_gc slow_node_gate slow_node_cut slow_node_begin slow_node_terminate slow_node_finish slow_node_paused slow_node_managed_gc slow_node_queued slow_node_drained slow_node_held slow_stop_out slow_stop2_out slow_finish_out slow_finish_back", names, " ") }
    END {
      for (i = 1; i <= nk; i++) {
        k = order[i]
        printf "%s: %d run(s)%s\n", k, runs[k], (k in bad) ? ", " bad[k] " NOT exact or failed" : ", all exact"
        printf "  pause ms       p50 %s  p99 %s  max %s   (cycles per run %s, live %s MB)\n", med(k SUBSEP "p50"), med(k SUBSEP "p99"), med(k SUBSEP "max"), med(k SUBSEP "cycles"), med(k SUBSEP "live_mb")
        printf "  coordinator ms sweep %s (before the stop) | cut %s (no pause) | stop %s  begin %s  terminate %s  finish %s  rounds %s\n", med(k SUBSEP "sweep"), med(k SUBSEP "cut"), med(k SUBSEP "stop"), med(k SUBSEP "begin"), med(k SUBSEP "terminate"), med(k SUBSEP "finish"), med(k SUBSEP "rounds")
        printf "  slowest node   cut %s  gate %s  begin %s  terminate %s  finish %s  gate closed %s ms; spans swept in a pause, max %s\n", med(k SUBSEP "node_cut"), med(k SUBSEP "node_gate"), med(k SUBSEP "node_begin"), med(k SUBSEP "node_terminate"), med(k SUBSEP "node_finish"), med(k SUBSEP "node_paused"), med(k SUBSEP "swept_in_pause_max")
        printf "  to last gate   p50 %s  p99 %s  max %s ms; .NET gc in the pauses: coordinator %s, slowest node %s ms\n", med(k SUBSEP "gates_p50"), med(k SUBSEP "gates_p99"), med(k SUBSEP "gates_max"), med(k SUBSEP "managed_gc"), med(k SUBSEP "node_managed_gc")
        printf "    rounds       stop out %s | stop 2 out %s | finish out %s back %s ms (out: sent until it reached the last node; back: the last gate opened until the last reply came in)\n", med(k SUBSEP "stop_out"), med(k SUBSEP "stop2_out"), med(k SUBSEP "finish_out"), med(k SUBSEP "finish_back")
        printf "  slowest cycle  pause %s (to last gate %s) | cut %s  stop %s  begin %s  terminate %s  finish %s ms\n", med(k SUBSEP "slow_pause"), med(k SUBSEP "slow_gates"), med(k SUBSEP "slow_cut"), med(k SUBSEP "slow_stop"), med(k SUBSEP "slow_begin"), med(k SUBSEP "slow_terminate"), med(k SUBSEP "slow_finish")
        printf "    its rounds   stop out %s | stop 2 out %s | finish out %s back %s ms\n", med(k SUBSEP "slow_stop_out"), med(k SUBSEP "slow_stop2_out"), med(k SUBSEP "slow_finish_out"), med(k SUBSEP "slow_finish_back")
        printf "    its nodes    cut %s  gate %s  begin %s  terminate %s  finish %s  gate closed %s ms; .NET gc %s ms (coordinator %s); queued at stop %s, drained %s, held %s\n", med(k SUBSEP "slow_node_cut"), med(k SUBSEP "slow_node_gate"), med(k SUBSEP "slow_node_begin"), med(k SUBSEP "slow_node_terminate"), med(k SUBSEP "slow_node_finish"), med(k SUBSEP "slow_node_paused"), med(k SUBSEP "slow_node_managed_gc"), med(k SUBSEP "slow_managed_gc"), med(k SUBSEP "slow_node_queued"), med(k SUBSEP "slow_node_drained"), med(k SUBSEP "slow_node_held")
      }
    }' "$1"
}
echo "medians over the runs (min-max); parts are each run's median cycle, then its slowest counted cycle (p99 with ~20 counted):" | tee -a "$out"
grep '^build=' "$out" | summary /dev/stdin | tee -a "$out"
echo "wrote $out"
