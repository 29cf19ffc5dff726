#!/usr/bin/env bash
# A local ClusterHeap cluster of silo processes on 127.0.0.1 (README "Running a cluster").
#
#   scripts/cluster.sh up N [--redis] [--metrics PORT] [--dashboard PORT] [-- SILO-OPTIONS...]
#   scripts/cluster.sh status | connect | kill NODE | stop NODE | down
#
# up      builds once (Release), starts N silos (node-1..node-N) and waits until each has written
#         its ready file. Development clustering with node-1 as primary, or with --redis a
#         redis-server of its own on a free port and a fresh cluster id. Options after `--` go to
#         every silo (e.g. -- --arena-size 4GiB --procs 2). --metrics PORT gives node-K a Prometheus
#         scrape endpoint on PORT+K-1 (--metrics-port), --dashboard PORT the Orleans dashboard on PORT+K-1.
# status  one line per node: name, state, pid, silo and gateway ports, arena slot.
# connect the client options that reach this cluster (for scripts: `clusterheap $(cluster.sh connect) …`).
# kill    SIGKILL one node (by number or name): the others declare it dead within a few seconds.
# stop    SIGTERM one node and wait: it hands its leases and slot back, then leaves.
# down    SIGTERM every process this script started, waits for each (bounded), then SIGKILL.
#
# Everything lives in one run folder, $CLUSTERHEAP_RUN_DIR or .run/cluster/ (gitignored):
# node-K.log, node-K.pid, node-K.ready (written by the silo), redis.*, cluster.env.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN_DIR="${CLUSTERHEAP_RUN_DIR:-$ROOT/.run/cluster}"
CONFIG=Release
BIN_DIR="$ROOT/src/Silo/bin/$CONFIG/net10.0/linux-x64"
SILO="$BIN_DIR/clusterheap-silo"
CLIENT="$ROOT/src/Client/bin/$CONFIG/net10.0/linux-x64/clusterheap"
READY_TIMEOUT="${CLUSTERHEAP_READY_TIMEOUT:-120}" # seconds, per wait
STOP_TIMEOUT="${CLUSTERHEAP_STOP_TIMEOUT:-40}"    # seconds a node gets after SIGTERM
BASE_SILO_PORT="${CLUSTERHEAP_BASE_SILO_PORT:-11111}"
BASE_GATEWAY_PORT="${CLUSTERHEAP_BASE_GATEWAY_PORT:-30000}"
BASE_REDIS_PORT="${CLUSTERHEAP_BASE_REDIS_PORT:-16379}"

usage() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
}

die() {
  echo "cluster.sh: $*" >&2
  exit 1
}

# True when something listens on 127.0.0.1:$1.
port_busy() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# The first port from $1 up that nothing listens on and that is not in the taken list ($2...).
free_port() {
  local port=$1
  shift
  while port_busy "$port" || [[ " $* " == *" $port "* ]]; do
    port=$((port + 1))
  done
  echo "$port"
}

alive() {
  [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null
}

pid_of() {
  cat "$RUN_DIR/$1.pid" 2>/dev/null || true
}

ready_value() { # FILE KEY
  sed -n "s/^$2=//p" "$1" 2>/dev/null || true
}

now() {
  date +%s
}

nodes() {
  local f
  for f in "$RUN_DIR"/node-*.pid; do
    [[ -e "$f" ]] || continue
    basename "$f" .pid
  done | sort -t- -k2 -n
}

# Waits (bounded) until every named node has its ready file; fails early if one exits.
wait_ready() {
  local deadline node pending
  deadline=$(($(now) + READY_TIMEOUT))
  while :; do
    pending=()
    for node in "$@"; do
      [[ -s "$RUN_DIR/$node.ready" ]] && continue
      if ! alive "$(pid_of "$node")"; then
        echo "cluster.sh: $node exited before it was ready; last lines of $RUN_DIR/$node.log:" >&2
        tail -n 30 "$RUN_DIR/$node.log" >&2 || true
        return 1
      fi
      pending+=("$node")
    done
    ((${#pending[@]} == 0)) && return 0
    if (($(now) >= deadline)); then
      echo "cluster.sh: not ready after ${READY_TIMEOUT}s: ${pending[*]} (logs in $RUN_DIR)" >&2
      return 1
    fi
    sleep 0.2
  done
}

start_redis() {
  command -v redis-server >/dev/null || die "--redis needs redis-server (apt-get install redis-server)"
  local port deadline
  port=$(free_port "$BASE_REDIS_PORT")
  nohup redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
    --dir "$RUN_DIR" </dev/null >"$RUN_DIR/redis.log" 2>&1 &
  echo $! >"$RUN_DIR/redis.pid"
  deadline=$(($(now) + 30))
  until port_busy "$port"; do
    alive "$(pid_of redis)" || { tail -n 20 "$RUN_DIR/redis.log" >&2; die "redis-server exited"; }
    (($(now) < deadline)) || die "redis-server not listening on $port after 30s"
    sleep 0.1
  done
  echo "$port"
}

start_node() { # K SILO_PORT GATEWAY_PORT CLUSTERING-ARGS... -- EXTRA...
  local k=$1 silo_port=$2 gateway_port=$3 node="node-$1"
  shift 3
  rm -f "$RUN_DIR/$node.ready"
  nohup "$SILO" --name "$node" --silo-port "$silo_port" --gateway-port "$gateway_port" \
    --advertise 127.0.0.1 --listen 127.0.0.1 --ready-file "$RUN_DIR/$node.ready" "$@" \
    </dev/null >"$RUN_DIR/$node.log" 2>&1 &
  echo $! >"$RUN_DIR/$node.pid"
  echo "$silo_port $gateway_port" >"$RUN_DIR/$node.ports"
  echo "  started $node (pid $!, silo port $silo_port, gateway port $gateway_port, k=$k)"
}

cmd_up() {
  local n="${1:-}" redis=0 extra=() metrics_base="" dashboard_base=""
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "up needs a node count: up N [--redis] [-- SILO-OPTIONS]"
  shift
  while (($#)); do
    case "$1" in
      --redis) redis=1 ;;
      --metrics) [[ "${2:-}" =~ ^[0-9]+$ ]] || die "--metrics needs a port"; metrics_base=$2; shift ;;
      --dashboard) [[ "${2:-}" =~ ^[0-9]+$ ]] || die "--dashboard needs a port"; dashboard_base=$2; shift ;;
      --) shift; extra=("$@"); break ;;
      *) die "up: unknown option '$1'" ;;
    esac
    shift
  done

  mkdir -p "$RUN_DIR"
  local running
  running=$(nodes | while read -r node; do alive "$(pid_of "$node")" && echo "$node"; done || true)
  [[ -z "$running" ]] || die "a cluster is already up in $RUN_DIR ($(echo "$running" | xargs)); run: $0 down"
  rm -f "$RUN_DIR"/node-* "$RUN_DIR"/redis.* "$RUN_DIR/cluster.env"

  echo "== building silo and client ($CONFIG)"
  dotnet build "$ROOT/src/Silo/ClusterHeap.Silo.csproj" -c "$CONFIG" -nologo -v q -clp:ErrorsOnly -clp:NoSummary
  dotnet build "$ROOT/src/Client/ClusterHeap.Client.csproj" -c "$CONFIG" -nologo -v q -clp:ErrorsOnly -clp:NoSummary

  local cluster_id clustering=() connect taken=() silo_ports=() gateway_ports=() k
  cluster_id="clusterheap-$(date +%Y%m%d-%H%M%S)-$$"
  for ((k = 1; k <= n; k++)); do
    silo_ports+=("$(free_port "$((BASE_SILO_PORT + k - 1))" "${taken[@]}")")
    taken+=("${silo_ports[-1]}")
    gateway_ports+=("$(free_port "$((BASE_GATEWAY_PORT + k - 1))" "${taken[@]}")")
    taken+=("${gateway_ports[-1]}")
  done

  if ((redis)); then
    local redis_port
    redis_port=$(start_redis)
    echo "== redis-server on 127.0.0.1:$redis_port (pid $(pid_of redis)), cluster id $cluster_id"
    clustering=(--redis "127.0.0.1:$redis_port")
    connect="--redis=127.0.0.1:$redis_port --cluster-id=$cluster_id"
  else
    clustering=(--primary "127.0.0.1:${silo_ports[0]}")
    connect="--gateway=$(printf '127.0.0.1:%s,' "${gateway_ports[@]}" | sed 's/,$//') --cluster-id=$cluster_id"
  fi
  {
    echo "NODES=$n"
    echo "CLUSTER_ID=$cluster_id"
    echo "CONNECT=\"$connect\""
  } >"$RUN_DIR/cluster.env"

  observe() { # K: this node's --metrics-port / --dashboard-port, when asked for
    [[ -z "$metrics_base" ]] || printf -- '--metrics-port\n%s\n' "$((metrics_base + $1 - 1))"
    [[ -z "$dashboard_base" ]] || printf -- '--dashboard-port\n%s\n' "$((dashboard_base + $1 - 1))"
  }
  echo "== starting $n silos (logs in $RUN_DIR)"
  # The primary (node-1) must be up before the others join it; with Redis they start together.
  local obs
  mapfile -t obs < <(observe 1)
  start_node 1 "${silo_ports[0]}" "${gateway_ports[0]}" "${clustering[@]}" --cluster-id "$cluster_id" "${obs[@]}" "${extra[@]}"
  if ((!redis)); then
    wait_ready node-1 || { cmd_down >/dev/null 2>&1 || true; die "node-1 did not start"; }
  fi
  local all=(node-1)
  for ((k = 2; k <= n; k++)); do
    mapfile -t obs < <(observe "$k")
    start_node "$k" "${silo_ports[k - 1]}" "${gateway_ports[k - 1]}" "${clustering[@]}" --cluster-id "$cluster_id" "${obs[@]}" "${extra[@]}"
    all+=("node-$k")
  done
  wait_ready "${all[@]}" || { cmd_down >/dev/null 2>&1 || true; die "the cluster did not come up"; }

  echo "== $n silos active"
  cmd_status
  echo
  echo "Connect with:"
  echo "  $CLIENT $connect shell"
  echo "  $CLIENT $connect stress larson --duration 20"
  echo "Stop with: $0 down"
}

cmd_status() {
  [[ -d "$RUN_DIR" ]] || die "no cluster in $RUN_DIR"
  local node pid state ports slot
  printf '%-8s %-8s %-8s %-9s %-12s %s\n' NODE STATE PID SILO_PORT GATEWAY_PORT SLOT
  while read -r node; do
    [[ -n "$node" ]] || continue
    pid=$(pid_of "$node")
    read -r -a ports <"$RUN_DIR/$node.ports"
    slot=$(ready_value "$RUN_DIR/$node.ready" slot)
    if [[ -e "$RUN_DIR/$node.killed" ]]; then
      state=killed
    elif [[ -e "$RUN_DIR/$node.stopped" ]]; then
      state=stopped
    elif alive "$pid"; then
      [[ -n "$slot" ]] && state=active || state=starting
    else
      state=exited
    fi
    printf '%-8s %-8s %-8s %-9s %-12s %s\n' "$node" "$state" "$pid" "${ports[0]}" "${ports[1]}" "${slot:--}"
  done < <(nodes)
  if [[ -e "$RUN_DIR/redis.pid" ]]; then
    pid=$(pid_of redis)
    alive "$pid" && state=running || state=exited
    echo "redis    $state $pid"
  fi
  if [[ -e "$RUN_DIR/cluster.env" ]]; then
    echo "client options: $(cmd_connect)"
  fi
}

cmd_connect() {
  [[ -e "$RUN_DIR/cluster.env" ]] || die "no cluster in $RUN_DIR"
  # shellcheck disable=SC1091,SC2153 # CONNECT comes from cluster.env
  (source "$RUN_DIR/cluster.env" && echo "$CONNECT")
}

# The running node named by number or name ($1 of `kill`/`stop`), as NODE PID.
running_node() {
  local node="${1:-}" pid
  [[ -n "$node" ]] || die "name a node: 2 or node-2"
  [[ "$node" =~ ^[0-9]+$ ]] && node="node-$node"
  [[ -e "$RUN_DIR/$node.pid" ]] || die "no node $node in $RUN_DIR"
  pid=$(pid_of "$node")
  alive "$pid" || die "$node (pid $pid) is not running"
  echo "$node $pid"
}

cmd_stop() {
  local node pid
  read -r node pid <<<"$(running_node "${1:-}")"
  stop_pid "$node" "$pid"
  touch "$RUN_DIR/$node.stopped"
}

cmd_kill() {
  local node pid
  read -r node pid <<<"$(running_node "${1:-}")"
  kill -KILL "$pid"
  touch "$RUN_DIR/$node.killed"
  rm -f "$RUN_DIR/$node.ready"
  echo "killed $node (pid $pid) with SIGKILL"
}

# SIGTERM, then wait up to STOP_TIMEOUT seconds, then SIGKILL.
stop_pid() { # NAME PID
  local name=$1 pid=$2 deadline
  alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  deadline=$(($(now) + STOP_TIMEOUT))
  while alive "$pid"; do
    if (($(now) >= deadline)); then
      echo "  $name (pid $pid) still running after ${STOP_TIMEOUT}s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.1
  done
  echo "  stopped $name (pid $pid)"
}

cmd_down() {
  [[ -d "$RUN_DIR" ]] || { echo "no cluster in $RUN_DIR"; return 0; }
  local node pids=() names=() i
  # Signal every node at once, so they leave together, then wait for each.
  while read -r node; do
    [[ -n "$node" ]] || continue
    names+=("$node")
    pids+=("$(pid_of "$node")")
  done < <(nodes)
  for i in "${!pids[@]}"; do
    stop_pid "${names[i]}" "${pids[i]}" &
  done
  wait
  if [[ -e "$RUN_DIR/redis.pid" ]]; then
    stop_pid redis "$(pid_of redis)"
  fi
  rm -f "$RUN_DIR"/*.pid "$RUN_DIR"/*.ready "$RUN_DIR"/*.killed "$RUN_DIR"/*.stopped
  echo "cluster down (logs kept in $RUN_DIR)"
}

main() {
  local command="${1:-}"
  (($#)) && shift
  case "$command" in
    up) cmd_up "$@" ;;
    status) cmd_status ;;
    connect) cmd_connect ;;
    kill) cmd_kill "$@" ;;
    stop) cmd_stop "$@" ;;
    down) cmd_down ;;
    -h | --help | help) usage ;;
    *) usage >&2; exit 2 ;;
  esac
}

main "$@"
