#!/usr/bin/env bash
# Side-by-side ring benchmark (bench/WORKLOADS.md): ClusterHeap's local allocator against
# the anchors (glibc, mimalloc, jemalloc, tcmalloc through LD_PRELOAD, and the Go runtime), on the
# standard set of ring runs, repeated and interleaved so machine noise spreads evenly.
# Prints a markdown table of median ns/op; writes raw lines and the table under bench/results/.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: scripts/bench-ring.sh [--repeat R] [--ops-scale F] [--no-clusterheap] [--no-build] [--baseline DIR] [-h]

Runs every standard ring run of bench/WORKLOADS.md, plus ring-16 (-size 16: 16-byte noscan
objects share the tiny blocks' span class), R times. Within each repetition, each
run executes ClusterHeap (`clusterheap.dll bench local <args>`) and the anchors
(bench/anchors/anchors.sh: glibc, mimalloc, jemalloc, tcmalloc, go) back to back, alternating
which goes first, so drift on the machine spreads over all allocators.

  --repeat R        repetitions of the whole set (default 3); the table shows the median of R
  --ops-scale F     divide every run's -ops by F for a quick run (default 1 = full size)
  --no-clusterheap  skip ClusterHeap (no build, anchors only)
  --no-build        do not run `dotnet build -c Release src/Client` first (use the existing dll)
  --baseline DIR    also run another checkout's Release client (DIR, built with -c Release) as the
                    column baseline, interleaved with ClusterHeap's: a before/after in one run
  -h, --help        this text

Output: the table on stdout; bench/results/ring-YYYYMMDD-HHMM.txt (every raw line, tagged
rep=/run=) and bench/results/ring-YYYYMMDD-HHMM.md (machine, date, command line, tables).
Needs: bash, coreutils, awk, sed, gcc, dotnet; anchors from scripts/install-bench-deps.sh.
EOF
}

cmdline="scripts/bench-ring.sh${*:+ $*}"
repeat=3
scale=1
clusterheap=1
build=1
while [ $# -gt 0 ]; do
  case $1 in
    --repeat) [ $# -ge 2 ] || { echo "bench-ring: --repeat needs a value" >&2; exit 2; }; repeat=$2; shift 2 ;;
    --repeat=*) repeat=${1#*=}; shift ;;
    --ops-scale) [ $# -ge 2 ] || { echo "bench-ring: --ops-scale needs a value" >&2; exit 2; }; scale=$2; shift 2 ;;
    --ops-scale=*) scale=${1#*=}; shift ;;
    --no-clusterheap) clusterheap=0; shift ;;
    --no-build) build=0; shift ;;
    --baseline) [ $# -ge 2 ] || { echo "bench-ring: --baseline needs a directory" >&2; exit 2; }; baseline=$2; shift 2 ;;
    --baseline=*) baseline=${1#*=}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench-ring: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
[[ $repeat =~ ^[1-9][0-9]*$ ]] || { echo "bench-ring: --repeat must be a positive integer, got '$repeat'" >&2; exit 2; }
[[ $scale =~ ^([0-9]+\.?[0-9]*|\.[0-9]+)$ ]] && awk -v f="$scale" 'BEGIN{exit !(f > 0)}' \
  || { echo "bench-ring: --ops-scale must be a positive number, got '$scale'" >&2; exit 2; }

repo=$(cd "$(dirname "$0")/.." && pwd)
anchors=$repo/bench/anchors/anchors.sh
[ -f "$anchors" ] || { echo "bench-ring: $anchors not found" >&2; exit 1; }
dll=$repo/src/Client/bin/Release/net10.0/linux-x64/clusterheap.dll
baseline_dll=
if [ -n "$baseline" ]; then
  [ $clusterheap -eq 1 ] || { echo "bench-ring: --baseline needs ClusterHeap's own run (drop --no-clusterheap)" >&2; exit 2; }
  baseline_dll=$(cd "$baseline" 2>/dev/null && pwd)/src/Client/bin/Release/net10.0/linux-x64/clusterheap.dll
  [ -f "$baseline_dll" ] || { echo "bench-ring: --baseline $baseline: no Release client at $baseline_dll (run dotnet build -c Release src/Client there)" >&2; exit 2; }
fi

# The standard runs: name and ring arguments, -ops being the default 10 000 000 unless given. ring-16 is
# not in bench/WORKLOADS.md's standard set: it is here because 16-byte noscan objects share the tiny blocks' span class.
names=(ring-8 ring-16 ring-64 ring-1k ring-4k ring-mixed ring-large)
args=("-size 8" "-size 16" "-size 64" "-size 1024" "-size 4096" "-min 8 -max 1000 -random" "-min 32769 -max 1048576 -live 100 -random")
baseops=(10000000 10000000 10000000 10000000 10000000 10000000 200000)
allocs=(clusterheap glibc mimalloc jemalloc tcmalloc go)
[ -z "$baseline_dll" ] || allocs=(clusterheap baseline glibc mimalloc jemalloc tcmalloc go)
header=$(IFS='|'; echo "${allocs[*]}" | sed 's/|/ | /g')


ch_fail() {
  echo "bench-ring: ClusterHeap step failed: $1" >&2
  echo "bench-ring: (expected: dotnet $dll bench local <ring args> printing a line with ns/op=<float>;" >&2
  echo "bench-ring:  run with --no-clusterheap to measure the anchors alone)" >&2
  exit 1
}

# Runs ClusterHeap's ring; prints its raw output line containing ns/op=.
run_clusterheap() {
  local out rc=0 d=${CH_DLL:-$dll}
  out=$(dotnet "$d" bench local "$@" 2>&1) || rc=$?
  [ $rc -eq 0 ] || ch_fail "exit code $rc for 'bench local $*': $(printf '%s' "$out" | tail -n 3)"
  out=$(printf '%s\n' "$out" | grep -m1 -E 'ns/op=[0-9.eE+-]+' || true)
  [ -n "$out" ] || ch_fail "no ns/op=<float> in the output of 'bench local $*'"
  printf '%s\n' "$out"
}

if [ $clusterheap -eq 1 ]; then
  command -v dotnet >/dev/null || ch_fail "dotnet not on PATH"
  if [ $build -eq 1 ]; then
    echo "bench-ring: dotnet build -c Release src/Client" >&2
    (cd "$repo" && dotnet build -c Release src/Client -nologo -v quiet >&2) || ch_fail "dotnet build -c Release src/Client failed"
  fi
  [ -f "$dll" ] || ch_fail "$dll not found"
  run_clusterheap -size 64 -live 100 -ops 1000 >/dev/null  # smoke test before the long run
  [ -z "$baseline_dll" ] || CH_DLL=$baseline_dll run_clusterheap -size 64 -live 100 -ops 1000 >/dev/null
fi

stamp=$(date +%Y%m%d-%H%M)
results=$repo/bench/results
mkdir -p "$results"
base=$results/ring-$stamp
k=1; while [ -e "$base.txt" ] || [ -e "$base.md" ]; do k=$((k + 1)); base=$results/ring-$stamp-$k; done
log=$base.txt
md=$base.md

{
  echo "# bench-ring $stamp: $cmdline"
  echo "# machine: nproc=$(nproc) cpu=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')"
} >"$log"

# One raw result line per allocator, tagged: "rep=<r> run=<name> <line>".
for ((r = 1; r <= repeat; r++)); do
  for i in "${!names[@]}"; do
    ops=$(awk -v o="${baseops[$i]}" -v f="$scale" 'BEGIN{n=int(o/f); if (n<1) n=1; print n}')
    # shellcheck disable=SC2206
    a=(${args[$i]} -ops "$ops")
    echo "bench-ring: rep $r/$repeat ${names[$i]} ${a[*]}" >&2
    steps=(anchors)
    if [ $clusterheap -eq 1 ]; then
      if [ $(((r + i) % 2)) -eq 0 ]; then steps=(clusterheap anchors); else steps=(anchors clusterheap); fi
      if [ -n "$baseline_dll" ]; then
        if [ $(((r + i) % 2)) -eq 0 ]; then steps=(baseline "${steps[@]}"); else steps=("${steps[@]}" baseline); fi
      fi
    fi
    for s in "${steps[@]}"; do
      if [ "$s" = clusterheap ]; then
        line=$(run_clusterheap "${a[@]}")
        case $line in clusterheap*) ;; *) line="clusterheap: $line" ;; esac
        echo "rep=$r run=${names[$i]} $line" | tee -a "$log" >&2
      elif [ "$s" = baseline ]; then
        line=$(CH_DLL=$baseline_dll run_clusterheap "${a[@]}")
        line="baseline: ${line#clusterheap: }"
        echo "rep=$r run=${names[$i]} $line" | tee -a "$log" >&2
      else
        bash "$anchors" "${a[@]}" | sed -e 's/^tcmalloc_minimal /tcmalloc /' -e "s/^/rep=$r run=${names[$i]} /" | tee -a "$log" >&2
      fi
    done
  done
done

# Medians (and min / max, for the spread table) per run and allocator, from the log.
stats=$(awk -v allocs="${allocs[*]}" '
  /^#/ { next }
  {
    run = $2; sub(/^run=/, "", run); a = $3; sub(/:$/, "", a)
    if (!match($0, /ns\/op=[0-9.eE+-]+/)) next
    v = substr($0, RSTART + 6, RLENGTH - 6) + 0
    n[run, a]++; val[run, a, n[run, a]] = v
  }
  END {
    na = split(allocs, al, " ")
    for (k in n) {
      split(k, p, SUBSEP); c = n[k]
      for (i = 1; i <= c; i++) x[i] = val[p[1], p[2], i]
      for (i = 2; i <= c; i++) { t = x[i]; j = i - 1; while (j > 0 && x[j] > t) { x[j + 1] = x[j]; j-- } x[j + 1] = t }
      med = (c % 2) ? x[(c + 1) / 2] : (x[c / 2] + x[c / 2 + 1]) / 2
      printf "%s %s %.2f %.2f %.2f %d\n", p[1], p[2], med, x[1], x[c], c
    }
  }' "$log")

cell() {  # cell <run> <alloc> <field: 3 median, 4 min, 5 max>
  awk -v r="$1" -v a="$2" -v f="$3" '$1 == r && $2 == a { print $f; found = 1 } END { if (!found) print "-" }' <<<"$stats"
}

table() {
  local extra=""
  [ -z "$baseline_dll" ] || extra=" clusterheap/baseline |"
  echo "| run | $header | clusterheap/glibc |$extra"
  echo "|---|$(printf -- '---:|%.0s' "${allocs[@]}")---:|${extra:+---:|}"
  for n in "${names[@]}"; do
    row="| $n |"
    for a in "${allocs[@]}"; do row+=" $(cell "$n" "$a" 3) |"; done
    ch=$(cell "$n" clusterheap 3); gl=$(cell "$n" glibc 3)
    ratio=$(awk -v c="$ch" -v g="$gl" 'BEGIN { if (c == "-" || g == "-" || g + 0 == 0) print "-"; else printf "%.2f", c / g }')
    if [ -n "$baseline_dll" ]; then
      bl=$(cell "$n" baseline 3)
      ratio+=" | $(awk -v c="$ch" -v b="$bl" 'BEGIN { if (c == "-" || b == "-" || b + 0 == 0) print "-"; else printf "%.2f", c / b }')"
    fi
    echo "$row $ratio |"
  done
}

spread() {
  echo "| run | $header |"
  echo "|---|$(printf -- '---:|%.0s' "${allocs[@]}")"
  for n in "${names[@]}"; do
    row="| $n |"
    for a in "${allocs[@]}"; do
      lo=$(cell "$n" "$a" 4); hi=$(cell "$n" "$a" 5)
      row+=" $(awk -v l="$lo" -v h="$hi" 'BEGIN { if (l == "-") print "-"; else printf "%s–%s (%+.0f%%)", l, h, (l > 0 ? (h / l - 1) * 100 : 0) }') |"
    done
    echo "$row"
  done
}

tbl=$(table)
{
  echo "# Ring benchmark, $(date '+%Y-%m-%d %H:%M %Z')"
  echo
  echo "- command: \`$cmdline\`"
  echo "- machine: nproc=$(nproc), CPU: $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(uname -srm)"
  echo "- go: $(go version 2>/dev/null || echo 'not installed'); gcc: $(gcc -dumpfullversion 2>/dev/null || echo '?'); dotnet: $(dotnet --version 2>/dev/null || echo '?')"
  echo "- anchors: \`bench/anchors/anchors.sh\` (LD_PRELOAD), workloads: \`bench/WORKLOADS.md\` (its standard set, plus ring-16)"
  echo "- raw lines: \`$(basename "$log")\`"
  [ -z "$baseline_dll" ] || echo "- baseline: \`$baseline_dll\` ($(git -C "$baseline" log -1 --format='%h %s' 2>/dev/null | cut -c1-80))"
  echo
  echo "Median ns/op over $repeat repetition(s), lower is better (\`-\` = not run):"
  echo
  echo "$tbl"
  echo
  echo "Spread between repetitions, min–max ns/op (max / min − 1):"
  echo
  spread
} >"$md"

echo "$tbl"
echo "bench-ring: wrote $log and $md" >&2
