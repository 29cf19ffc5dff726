#!/usr/bin/env bash
# docker-compose.yml on a machine without Docker: podman's Docker-compatible API under
# docker-compose (README "docker-compose").
#
#   scripts/compose.sh up [--base auto|official|stand-in]
#   scripts/compose.sh client COMMAND [OPTIONS...]
#   scripts/compose.sh compose ARGS...
#   scripts/compose.sh env | status | down [--images] | install
#
# install installs what is missing (Debian packages): podman, runc, the CNI dnsname plugin (service
#         names resolve between containers), docker-compose, mmdebstrap for the stand-ins, and curl
#         (to see the API socket answer).
# up      install, start `podman system service` on a socket of its own, pick the base images
#         (--base: official pulls the official ones; stand-in builds local stand-ins with
#         scripts/build-base-images.sh when missing or stale; auto, the default, tries official and
#         falls back), build the image once (`docker-compose build silo1`; every service uses it),
#         `docker-compose up -d`, and wait until redis and silo1..silo3 are healthy.
# client  `docker-compose run --rm client COMMAND ...`: the clusterheap client in a container of its
#         own, through Redis membership (e.g. client stress larson --duration 20, client shell).
# compose any docker-compose command through the socket (compose ps, compose logs silo1,
#         compose kill silo2, compose run --rm -T client nodes).
# env     the variables to run docker-compose by hand, as `export` lines (eval "$(compose.sh env)").
# status  the containers and their health.
# down    `docker-compose down` (each silo gets its stop_grace_period after SIGTERM), then stop the
#         health checks, the log follower and the API service. --images also removes the images
#         built here (clusterheap:latest and the stand-ins) and untagged images (the build stage
#         and images replaced by rebuilds, which podman keeps as cache). Leaves the logs.
#
# Two things this host lacks are supplied here, and say so in the run folder:
# - a containers.conf of its own (CONTAINERS_CONF; /etc is not touched): no default ulimits (this
#   VM refuses to raise rlimits) and runc (crun refuses the hybrid cgroup v1/v2 layout here);
# - health checks: podman runs them from systemd timers, and where systemd is not running this
#   script runs `podman healthcheck run` for each container of the project every 2 s (the compose
#   file's interval), so `depends_on: service_healthy` and the status work as under Docker.
#
# Everything lives in one run folder, $CLUSTERHEAP_COMPOSE_DIR or .run/compose/ (gitignored):
# containers.conf, podman.sock, podman-service.log, health.log, compose.log (every container's
# output as it comes, from `docker-compose logs -f`, kept after down), containers.log (every container's
# whole output, read after `docker-compose stop` by down), compose.env (the images chosen by up).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN_DIR="${CLUSTERHEAP_COMPOSE_DIR:-$ROOT/.run/compose}"
PROJECT="${COMPOSE_PROJECT_NAME:-clusterheap}"
SOCK="$RUN_DIR/podman.sock"
HEALTHY_TIMEOUT="${CLUSTERHEAP_HEALTHY_TIMEOUT:-180}" # seconds for every service to be healthy
SERVICES=(redis silo1 silo2 silo3)                    # what `up` starts and waits for
PACKAGES=(podman runc golang-github-containernetworking-plugin-dnsname docker-compose mmdebstrap curl)
OFFICIAL_IMAGES=(mcr.microsoft.com/dotnet/sdk:10.0 mcr.microsoft.com/dotnet/aspnet:10.0 docker.io/library/redis:7)

usage() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
}

die() {
  echo "compose.sh: $*" >&2
  exit 1
}

say() {
  printf '== %s\n' "$*"
}

alive() {
  [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null
}

pid_of() {
  cat "$RUN_DIR/$1.pid" 2>/dev/null || true
}

# Stops the process in $RUN_DIR/$1.pid: SIGTERM, up to $2 seconds, then SIGKILL.
stop_pid() {
  local pid deadline
  pid=$(pid_of "$1")
  rm -f "$RUN_DIR/$1.pid"
  alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$(($(date +%s) + $2))
  while alive "$pid" && (($(date +%s) < deadline)); do sleep 0.2; done
  if alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
}

export_environment() {
  export CONTAINERS_CONF="$RUN_DIR/containers.conf"
  export DOCKER_HOST="unix://$SOCK"
  export COMPOSE_PROJECT_NAME="$PROJECT"
  export COMPOSE_FILE="$ROOT/docker-compose.yml"
  # docker-compose builds through the API; never through a docker CLI or BuildKit that may be
  # installed without an engine behind it.
  export COMPOSE_DOCKER_CLI_BUILD=0 DOCKER_BUILDKIT=0
  if [[ -f "$RUN_DIR/compose.env" ]]; then
    set -a
    # shellcheck source=/dev/null
    . "$RUN_DIR/compose.env"
    set +a
  fi
}

compose() {
  docker-compose "$@"
}

install() {
  local missing=() package
  for package in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
  done
  ((${#missing[@]})) || return 0
  ((EUID == 0)) || die "run as root to install ${missing[*]} (rootful podman)"
  say "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=300 update -qq
  apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

write_containers_conf() {
  cat >"$RUN_DIR/containers.conf" <<'EOF'
# Written by scripts/compose.sh; used through CONTAINERS_CONF by its podman commands only.
[containers]
# No rlimits raised in containers: this VM refuses to raise them (crun/runc: setrlimit
# RLIMIT_NOFILE: Operation not permitted). Containers inherit the service's limits.
default_ulimits = []

[engine]
# crun refuses cgroup v1 with controllers also on cgroup v2 ("cgroups in hybrid mode not
# supported"); runc runs there.
runtime = "runc"
EOF
}

start_service() {
  if alive "$(pid_of podman-service)" && [[ -S "$SOCK" ]]; then return 0; fi
  rm -f "$SOCK"
  say "podman system service on $SOCK"
  setsid podman system service --time=0 "unix://$SOCK" >>"$RUN_DIR/podman-service.log" 2>&1 </dev/null &
  echo $! >"$RUN_DIR/podman-service.pid"
  local deadline=$(($(date +%s) + 30))
  until curl -fsS --unix-socket "$SOCK" http://d/_ping >/dev/null 2>&1; do
    alive "$(pid_of podman-service)" || { tail -n 20 "$RUN_DIR/podman-service.log" >&2; die "podman system service exited"; }
    (($(date +%s) < deadline)) || die "podman system service did not answer on $SOCK within 30 s"
    sleep 0.2
  done
}

# The project's containers with a health check, as "ID NAME" lines.
health_checked() {
  podman ps --filter "label=com.docker.compose.project=$PROJECT" --filter "label=com.docker.compose.oneoff=False" \
    --format '{{.ID}} {{.Names}} {{.Status}}' \
    | awk '/\((starting|healthy|unhealthy)\)/ { print $1, $2 }'
}

# Podman schedules health checks with systemd timers; without systemd nothing would run them.
start_health_checks() {
  [[ -d /run/systemd/system ]] && return 0
  alive "$(pid_of health)" && return 0
  say "health checks: podman healthcheck run every 2 s (no systemd to schedule them)"
  (
    trap 'exit 0' TERM
    trap '' HUP INT
    local id name result
    while :; do
      health_checked | while read -r id name; do
        # A passing check prints nothing; a failing one (exit 1) prints "unhealthy" or an error
        # (a silo's check fails until its heap is up, within its start period).
        result=$(podman healthcheck run "$id" 2>&1 </dev/null) && continue
        printf '%s %s %s\n' "$(date +%T)" "$name" "${result:-failed}"
      done
      sleep 2
    done
  ) >>"$RUN_DIR/health.log" 2>&1 </dev/null &
  echo $! >"$RUN_DIR/health.pid"
}

start_log_follower() {
  alive "$(pid_of logs)" && return 0
  setsid docker-compose logs -f --no-color >>"$RUN_DIR/compose.log" 2>&1 </dev/null &
  echo $! >"$RUN_DIR/logs.pid"
}

# Sets CLUSTERHEAP_*_IMAGE in compose.env for the chosen base images.
choose_base() {
  local base=$1 image
  if [[ "$base" == auto || "$base" == official ]]; then
    say "base images: pulling the official ones"
    local pulled=1
    for image in "${OFFICIAL_IMAGES[@]}"; do
      podman image exists "$image" && continue
      timeout 600 podman pull -q "$image" >/dev/null || { pulled=0; break; }
    done
    if ((pulled)); then
      : >"$RUN_DIR/compose.env"
      return 0
    fi
    [[ "$base" == auto ]] || die "cannot pull $image (try --base stand-in)"
    say "cannot pull $image: using local stand-ins"
  fi
  "$ROOT/scripts/build-base-images.sh" --if-stale
  "$ROOT/scripts/build-base-images.sh" env >"$RUN_DIR/compose.env"
}

health_of() {
  podman inspect --format '{{.State.Status}} {{.State.Health.Status}}' "$1" 2>/dev/null || echo "missing -"
}

# The container of service $1 (not a one-off of `run`), running or not.
container_of() {
  podman ps -aq --filter "label=com.docker.compose.project=$PROJECT" \
    --filter "label=com.docker.compose.service=$1" --filter "label=com.docker.compose.oneoff=False" | head -n 1
}

wait_healthy() {
  local deadline=$(($(date +%s) + HEALTHY_TIMEOUT)) service id state pending
  while :; do
    pending=()
    for service in "${SERVICES[@]}"; do
      id=$(container_of "$service")
      [[ -n "$id" ]] || die "no container for $service"
      state=$(health_of "$id")
      [[ "$state" == "running healthy" ]] && continue
      [[ "$state" == running* ]] || die "$service is ${state% *} (see $RUN_DIR/compose.log)"
      pending+=("$service")
    done
    ((${#pending[@]})) || return 0
    (($(date +%s) < deadline)) || die "not healthy after ${HEALTHY_TIMEOUT} s: ${pending[*]} (see $RUN_DIR/compose.log)"
    sleep 1
  done
}

up() {
  local base=auto start
  while (($#)); do
    case "$1" in
      --base)
        base=${2:-}
        shift 2 || die "--base needs auto, official or stand-in"
        ;;
      --base=*)
        base=${1#--base=}
        shift
        ;;
      *) die "up: unknown option '$1'" ;;
    esac
  done
  [[ "$base" =~ ^(auto|official|stand-in)$ ]] || die "--base must be auto, official or stand-in, not '$base'"
  start=$(date +%s)
  install
  mkdir -p "$RUN_DIR"
  write_containers_conf
  rm -f "$RUN_DIR/compose.env"
  export_environment
  choose_base "$base"
  export_environment
  start_service
  start_health_checks
  say "docker-compose build silo1 (the clusterheap image every service runs)"
  compose build --force-rm silo1 # no build container left behind, even when a step fails
  say "docker-compose up -d"
  compose up -d
  start_log_follower
  say "waiting until ${SERVICES[*]} are healthy (bound ${HEALTHY_TIMEOUT} s)"
  wait_healthy
  say "up in $(($(date +%s) - start)) s"
  status
}

status() {
  local service id
  printf '%-8s %-14s %-16s %s\n' SERVICE CONTAINER STATE ADDRESS
  for service in "${SERVICES[@]}"; do
    id=$(container_of "$service")
    if [[ -z "$id" ]]; then
      printf '%-8s %-14s %-16s\n' "$service" - gone
      continue
    fi
    printf '%-8s %-14s %-16s %s\n' "$service" "${id:0:12}" "$(health_of "$id" | tr ' ' /)" \
      "$(podman inspect --format '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' "$id" 2>/dev/null | sed 's/ *$//')"
  done
}

down() {
  local images=0 start
  [[ "${1:-}" == --images ]] && images=1
  start=$(date +%s)
  command -v podman >/dev/null || return 0
  [[ -f "$RUN_DIR/containers.conf" ]] || write_containers_conf
  if [[ -n "$(podman ps -aq --filter "label=com.docker.compose.project=$PROJECT")" ]]; then
    start_service
    # Stop first (SIGTERM, each service's stop grace period), then keep every container's whole output
    # as the containers themselves logged it: the `logs -f` follower feeding compose.log can lose its
    # stream through the API socket, so checks read containers.log.
    say "docker-compose stop"
    compose stop
    compose logs --no-color >"$RUN_DIR/containers.log" 2>&1 || true
    say "docker-compose down"
    compose down --remove-orphans --volumes
    say "down in $(($(date +%s) - start)) s"
  fi
  stop_pid logs 10
  stop_pid health 10
  if ((images)); then
    say "removing the images built here"
    # Tagged through the Docker API, so in docker.io/library/ like any short name there.
    if podman image exists docker.io/library/clusterheap:latest; then
      podman rmi -f docker.io/library/clusterheap:latest >/dev/null && echo "removed clusterheap:latest"
    fi
    "$ROOT/scripts/build-base-images.sh" remove
    # What is left untagged: the build stage and replaced images (podman keeps them as cache).
    podman image prune -f >/dev/null
  fi
  stop_pid podman-service 10
  rm -f "$SOCK"
}

mkdir -p "$RUN_DIR"
export_environment
case "${1:-}" in
  up)
    shift
    up "$@"
    ;;
  client)
    shift
    (($#)) || die "client needs a command (shell, stress larson, nodes, ...)"
    tty=()
    [[ -t 0 && -t 1 ]] || tty=(-T) # no terminal: no pseudo-terminal either (as `run -T`)
    compose run --rm "${tty[@]}" client "$@"
    ;;
  compose)
    shift
    compose "$@"
    ;;
  env)
    echo "export CONTAINERS_CONF='$CONTAINERS_CONF' DOCKER_HOST='$DOCKER_HOST'"
    echo "export COMPOSE_PROJECT_NAME='$COMPOSE_PROJECT_NAME' COMPOSE_FILE='$COMPOSE_FILE' COMPOSE_DOCKER_CLI_BUILD=0"
    sed 's/^/export /' "$RUN_DIR/compose.env" 2>/dev/null || true
    ;;
  status) status ;;
  down)
    shift
    down "$@"
    ;;
  install) install ;;
  -h | --help | help) usage ;;
  *)
    usage >&2
    exit 2
    ;;
esac
