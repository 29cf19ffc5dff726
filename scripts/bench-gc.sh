#!/usr/bin/env bash
# binary-trees side by side: ClusterHeap's collected node heap (`clusterheap bench binarytrees`) against Go's own
# program of the same shape (bench/anchors/binarytrees.go, GOMAXPROCS=1), interleaved and repeated so machine noise
# spreads over both. Prints a markdown table of medians; writes raw lines and the table under bench/results/.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: scripts/bench-gc.sh [--repeat R] [--depths "16 18"] [--modes "concurrent stw"] [--baseline DLL] [--no-build] [-h]

For each depth and each of R repetitions, runs ClusterHeap in each collector mode (`clusterheap.dll bench binarytrees
-depth D -mode M`) and Go (bench/anchors/binarytrees.go, built once with `go build`) back to back, rotating which goes
first. All print one line with checksum=, ms=, heapsys=, numgc=, pause_p50_us=, pause_max_us=, gccpu=; the checksums
must agree.
Each run is also timed with /usr/bin/time for its CPU seconds (user + sys, the whole process). With
$CLUSTERHEAP_BENCH_LOCK set, each run holds that lock file (flock), so no other benchmark overlaps it.

  --repeat R       repetitions (default 3); the table shows medians of R
  --depths "A B"   depths to run (default "16 18")
  --modes "A B"    ClusterHeap's collector modes (default "concurrent stw"; also "assist": concurrent, marking on the
                   mutator's thread only, no mark worker)
  --baseline DLL   also run another build's clusterheap.dll (e.g. main's, for a before/after in one run) in each
                   mode, as clusterheap-<mode>-base, interleaved with the others
  --no-build       use the existing Release build of src/Client
  -h, --help       this text

Output: the table on stdout; bench/results/binarytrees-YYYYMMDD-HHMM.txt (raw lines tagged rep=/depth=) and .md.
The raw lines keep every field the programs print (ClusterHeap's pause_jit= is the methods compiled inside pauses).
Needs: bash, awk, dotnet, go (Debian: apt-get install golang-go), /usr/bin/time; flock with $CLUSTERHEAP_BENCH_LOCK.
EOF
}

cmdline="scripts/bench-gc.sh${*:+ $*}"
repeat=3
depths="16 18"
modes="concurrent stw"
build=1
baseline=
while [ $# -gt 0 ]; do
  case $1 in
    --repeat) [ $# -ge 2 ] || { echo "bench-gc: --repeat needs a value" >&2; exit 2; }; repeat=$2; shift 2 ;;
    --depths) [ $# -ge 2 ] || { echo "bench-gc: --depths needs a value" >&2; exit 2; }; depths=$2; shift 2 ;;
    --modes) [ $# -ge 2 ] || { echo "bench-gc: --modes needs a value" >&2; exit 2; }; modes=$2; shift 2 ;;
    --baseline) [ $# -ge 2 ] || { echo "bench-gc: --baseline needs a clusterheap.dll" >&2; exit 2; }; baseline=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench-gc: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
[[ $repeat =~ ^[1-9][0-9]*$ ]] || { echo "bench-gc: --repeat must be a positive integer, got '$repeat'" >&2; exit 2; }
for d in $depths; do
  if ! [[ $d =~ ^[0-9]+$ ]] || [ "$d" -lt 4 ]; then echo "bench-gc: depths must be integers >= 4, got '$d'" >&2; exit 2; fi
done
for m in $modes; do
  case $m in stw|concurrent|assist) ;; *) echo "bench-gc: modes are stw, concurrent, assist; got '$m'" >&2; exit 2 ;; esac
done
command -v go >/dev/null || { echo "bench-gc: go not on PATH (Debian: apt-get install golang-go)" >&2; exit 1; }
command -v dotnet >/dev/null || { echo "bench-gc: dotnet not on PATH" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "bench-gc: /usr/bin/time not found (Debian: apt-get install time)" >&2; exit 1; }

repo=$(cd "$(dirname "$0")/.." && pwd)
dll=$repo/src/Client/bin/Release/net10.0/linux-x64/clusterheap.dll
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$repo/bench/anchors/binarytrees.go" "$work/"
(cd "$work" && GO111MODULE=off go build -o binarytrees binarytrees.go) || { echo "bench-gc: go build failed" >&2; exit 1; }
if [ $build -eq 1 ]; then
  echo "bench-gc: dotnet build -c Release src/Client" >&2
  (cd "$repo" && dotnet build -c Release src/Client -nologo -v quiet >&2) || { echo "bench-gc: build failed" >&2; exit 1; }
fi
[ -f "$dll" ] || { echo "bench-gc: $dll not found" >&2; exit 1; }
[ -z "$baseline" ] || [ -f "$baseline" ] || { echo "bench-gc: --baseline $baseline not found" >&2; exit 1; }

lock=()
[ -n "${CLUSTERHEAP_BENCH_LOCK:-}" ] && lock=(flock "$CLUSTERHEAP_BENCH_LOCK")

stamp=$(date +%Y%m%d-%H%M)
results=$repo/bench/results
mkdir -p "$results"
base=$results/binarytrees-$stamp
k=1; while [ -e "$base.txt" ] || [ -e "$base.md" ]; do k=$((k + 1)); base=$results/binarytrees-$stamp-$k; done
log=$base.txt
md=$base.md
{
  echo "# bench-gc $stamp: $cmdline"
  echo "# machine: nproc=$(nproc) cpu=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //') load=$(cut -d' ' -f1-3 /proc/loadavg)"
} >"$log"

# run <impl> <depth>: one raw line, impl= then the program's own plus cpu_s= from /usr/bin/time. impl: go,
# clusterheap-<mode>, or clusterheap-<mode>-base (the --baseline build).
run() {
  local out cpu mode bin=$dll
  if [ "$1" != go ]; then
    mode=${1#clusterheap-}
    if [ "${mode%-base}" != "$mode" ]; then mode=${mode%-base}; bin=$baseline; fi
    out=$("${lock[@]}" /usr/bin/time -f 'cpu_s=%U+%S' -o "$work/time" dotnet "$bin" bench binarytrees -depth "$2" -mode "$mode") || { echo "bench-gc: $1 failed at depth $2: $out" >&2; exit 1; }
  else
    out=$("${lock[@]}" /usr/bin/time -f 'cpu_s=%U+%S' -o "$work/time" "$work/binarytrees" -depth "$2") || { echo "bench-gc: go failed at depth $2" >&2; exit 1; }
  fi
  cpu=$(awk -F'[=+]' '/cpu_s=/{printf "%.2f", $2 + $3}' "$work/time")
  printf 'impl=%s %s cpu_s=%s\n' "$1" "$(printf '%s\n' "$out" | grep -m1 'binarytrees')" "$cpu"
}

impls=()
for m in $modes; do impls+=("clusterheap-$m"); [ -z "$baseline" ] || impls+=("clusterheap-$m-base"); done
impls+=(go)

i=0
for ((r = 1; r <= repeat; r++)); do
  for d in $depths; do
    k=$(((r + i) % ${#impls[@]}))
    order=("${impls[@]:k}" "${impls[@]:0:k}")
    i=$((i + 1))
    for impl in "${order[@]}"; do
      echo "bench-gc: rep $r/$repeat depth $d $impl" >&2
      echo "rep=$r depth=$d $(run "$impl" "$d")" | tee -a "$log" >&2
    done
  done
done

# Checksums must agree between the two programs at every depth.
bad=$(awk '/^#/{next} { d=$2; for (f = 1; f <= NF; f++) if ($f ~ /^checksum=/) c = $f; if (d in seen && seen[d] != c) print d; seen[d] = c }' "$log" | sort -u)
[ -z "$bad" ] || { echo "bench-gc: checksums differ at depth(s): $bad (see $log)" >&2; exit 1; }

median() {  # median <impl> <depth> <field>
  awk -v i="$1" -v d="depth=$2" -v f="$3" '
    /^#/ { next }
    $2 == d && $3 == "impl=" i { for (k = 1; k <= NF; k++) if (index($k, f "=") == 1) { v[++n] = substr($k, length(f) + 2) + 0 } }
    END {
      if (n == 0) { print "-"; exit }
      for (a = 2; a <= n; a++) { t = v[a]; b = a - 1; while (b > 0 && v[b] > t) { v[b + 1] = v[b]; b-- } v[b + 1] = t }
      m = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
      if (f == "heapsys") printf "%.1f", m / 1048576; else if (f == "gccpu") printf "%.0f%%", m * 100; else printf "%g", m
    }' "$log"
}

spread() {  # spread <impl> <depth> <field>: " (min–max)" over the repetitions, or nothing for one
  awk -v i="$1" -v d="depth=$2" -v f="$3" '
    /^#/ { next }
    $2 == d && $3 == "impl=" i { for (k = 1; k <= NF; k++) if (index($k, f "=") == 1) { v = substr($k, length(f) + 2) + 0; if (n++ == 0 || v < lo) lo = v; if (n == 1 || v > hi) hi = v } }
    END { if (n > 1) printf " (%g–%g)", lo, hi }' "$log"
}

table() {
  echo "| depth | program | ms | cpu s | HeapSys MiB | cycles | pause p50 µs | pause max µs | GC CPU |"
  echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|"
  for d in $depths; do
    for impl in "${impls[@]}"; do
      echo "| $d | $impl | $(median "$impl" "$d" ms) | $(median "$impl" "$d" cpu_s) | $(median "$impl" "$d" heapsys) | $(median "$impl" "$d" numgc) | $(median "$impl" "$d" pause_p50_us)$(spread "$impl" "$d" pause_p50_us) | $(median "$impl" "$d" pause_max_us)$(spread "$impl" "$d" pause_max_us) | $(median "$impl" "$d" gccpu) |"
    done
    for m in $modes; do
      for v in "$m" ${baseline:+"$m-base"}; do
        ms=$(awk -v c="$(median "clusterheap-$v" "$d" ms)" -v g="$(median go "$d" ms)" 'BEGIN{if (c == "-" || g == "-" || g + 0 == 0) print "-"; else printf "%.2f", c / g}')
        cpu=$(awk -v c="$(median "clusterheap-$v" "$d" cpu_s)" -v g="$(median go "$d" cpu_s)" 'BEGIN{if (c == "-" || g == "-" || g + 0 == 0) print "-"; else printf "%.2f", c / g}')
        hs=$(awk -v c="$(median "clusterheap-$v" "$d" heapsys)" -v g="$(median go "$d" heapsys)" 'BEGIN{if (c == "-" || g == "-" || g + 0 == 0) print "-"; else printf "%.2f", c / g}')
        echo "| $d | clusterheap-$v / go | $ms× | $cpu× | $hs× | | | | |"
      done
    done
  done
}

tbl=$(table)
{
  echo "# binary-trees: ClusterHeap's collector against Go, $(date '+%Y-%m-%d %H:%M %Z')"
  echo
  echo "- command: \`$cmdline\`"
  echo "- machine: nproc=$(nproc), CPU: $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(uname -srm); load average at the start: $(sed -n 2p "$log" | sed 's/.*load=//')"
  echo "- go: $(go version) (GOMAXPROCS=1, set by the program); dotnet: $(dotnet --version)"
  echo "- raw lines: \`$(basename "$log")\`; checksums agree at every depth"
  [ -z "$baseline" ] || echo "- baseline (clusterheap-<mode>-base): \`$baseline\`"
  echo
  echo "Medians of $repeat repetition(s); pause columns: median (min–max). ms: the program's own timer around the work; cpu s: user + sys of the whole"
  echo "process (/usr/bin/time; .NET's includes runtime start-up and JIT). GC CPU: each runtime's GCCPUFraction (Go: over"
  echo "GOMAXPROCS = 1; ClusterHeap: over wall time × processors). Modes: stw stops the world for each whole cycle;"
  echo "concurrent marks beside the mutator on a dedicated mark worker thread (a second core, which Go's GOMAXPROCS=1 run"
  echo "does not use), pauses = its two stop-the-world phases; assist marks concurrently on the mutator's own thread only."
  echo
  echo "$tbl"
} >"$md"
echo "$tbl"
echo "bench-gc: wrote $log and $md" >&2
