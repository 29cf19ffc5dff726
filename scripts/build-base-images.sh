#!/usr/bin/env bash
# Local stand-ins for the three base images of the Dockerfile and docker-compose.yml, for a
# machine that can reach no image registry (README "docker-compose").
#
#   scripts/build-base-images.sh [--if-stale]   build (or rebuild) the stand-ins with podman
#   scripts/build-base-images.sh env            the variables that make docker-compose.yml use them
#   scripts/build-base-images.sh remove         remove the stand-in images
#
# Official image                          stand-in (podman, all from one Debian root filesystem)
#   mcr.microsoft.com/dotnet/sdk:10.0     localhost/clusterheap-base/dotnet-sdk:10.0
#   mcr.microsoft.com/dotnet/aspnet:10.0 localhost/clusterheap-base/dotnet-aspnet:10.0
#   redis:7                               localhost/clusterheap-base/redis:7
#
# The root filesystem is Debian's essential packages (mmdebstrap, with the host's apt) plus
# redis-server, redis-tools, libicu72 and libssl3, imported as localhost/clusterheap-base/debian.
# The runtime stand-in adds the .NET runtime of the host's SDK (the `dotnet` host, hostfxr and
# Microsoft.NETCore.App) under /usr/share/dotnet, where the official images have it; the SDK stand-in adds the host's whole SDK and a NuGet feed of its own:
# the packages that restoring the Dockerfile's projects takes, restored here from NuGet, so that
# the image build restores with no network at all. That feed is what ties the SDK stand-in to this
# repository: the image carries a label with the hash of the files restore reads (and of this
# script), and --if-stale rebuilds when they change or an image is missing, else does nothing.
#
# Needs root, podman, mmdebstrap and the .NET SDK (scripts/compose.sh install brings the first
# two). Works in a temporary folder that it removes; leaves only the images (the three and the
# root filesystem they share).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SDK_IMAGE=localhost/clusterheap-base/dotnet-sdk:10.0
RUNTIME_IMAGE=localhost/clusterheap-base/dotnet-aspnet:10.0
REDIS_IMAGE=localhost/clusterheap-base/redis:7
SUITE="${CLUSTERHEAP_BASE_SUITE:-bookworm}"
BASE_IMAGE="localhost/clusterheap-base/debian:$SUITE" # the root filesystem the three share
MIRROR="${CLUSTERHEAP_BASE_MIRROR:-http://deb.debian.org/debian}"
PACKAGES=redis-server,redis-tools,libicu72,libssl3
FEED=/opt/clusterheap-nuget-feed # inside the SDK stand-in
# What the Dockerfile copies before `dotnet restore`: the feed must hold what restoring these takes.
RESTORE_INPUTS=(global.json Directory.Build.props Directory.Packages.props
  src/Contracts/ClusterHeap.Contracts.csproj src/Heap/ClusterHeap.Heap.csproj
  src/Grains/ClusterHeap.Grains.csproj src/Silo/ClusterHeap.Silo.csproj
  src/Client/ClusterHeap.Client.csproj)
RESTORE_PROJECTS=(src/Silo/ClusterHeap.Silo.csproj src/Client/ClusterHeap.Client.csproj)
START=$(date +%s)

usage() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
}

die() {
  echo "build-base-images.sh: $*" >&2
  exit 1
}

say() {
  printf '== [%3ss] %s\n' "$(($(date +%s) - START))" "$*"
}

# Of the files restore reads and of this script: a change to either makes the SDK stand-in stale.
inputs_hash() {
  (cd "$ROOT" && sha256sum "${RESTORE_INPUTS[@]}" scripts/build-base-images.sh) | sha256sum | cut -c1-16
}

image_exists() {
  podman image exists "$1"
}

# cp -a, as hard links when the work folder is on the .NET folder's file system (the SDK is 600 MB):
# the image build only reads them.
copy() {
  if [[ "$(stat -c %d "$1")" == "$(stat -c %d "${!#}")" ]]; then cp -al "$@"; else cp -a "$@"; fi
}

# One image on top of $BASE_IMAGE: the folder $1 copied over its root, then Containerfile lines $3...
layer() {
  local dir=$1 image=$2 line
  shift 2
  {
    echo "FROM $BASE_IMAGE"
    [[ -z "$(ls -A "$dir" 2>/dev/null)" ]] || echo "COPY . /"
    for line in "$@"; do echo "$line"; done
  } >"$dir.Containerfile"
  mkdir -p "$dir"
  podman build -q --network none -f "$dir.Containerfile" -t "$image" "$dir" >/dev/null
}

# True when all three images exist and the SDK stand-in's feed was made from today's inputs.
current() {
  image_exists "$SDK_IMAGE" && image_exists "$RUNTIME_IMAGE" && image_exists "$REDIS_IMAGE" || return 1
  local label
  label=$(podman image inspect --format '{{index .Labels "clusterheap.restore-inputs"}}' "$SDK_IMAGE")
  [[ "$label" == "$(inputs_hash)" ]]
}

# The folder the host's `dotnet` runs from (/usr/share/dotnet on Debian with Microsoft's packages).
dotnet_home() {
  local dotnet
  dotnet=$(command -v dotnet) || die "no dotnet on PATH (the stand-ins copy the host's .NET SDK)"
  dirname "$(readlink -f "$dotnet")"
}

build() {
  ((EUID == 0)) || die "run as root (mmdebstrap and rootful podman)"
  command -v podman >/dev/null || die "podman is missing (scripts/compose.sh install)"
  command -v mmdebstrap >/dev/null || die "mmdebstrap is missing (scripts/compose.sh install)"
  local home runtime_version work
  home=$(dotnet_home)
  runtime_version=$(find "$home/shared/Microsoft.NETCore.App" -mindepth 1 -maxdepth 1 -name '10.*' -printf '%f\n' \
    | sort -V | tail -n 1)
  [[ -n "$runtime_version" ]] || die "no Microsoft.NETCore.App 10.x under $home/shared"
  work=$(mktemp -d "${TMPDIR:-/var/tmp}/clusterheap-base.XXXXXX")
  # shellcheck disable=SC2064 # expand $work now: it is local
  trap "rm -rf '$work'" EXIT

  # The NuGet restore runs while mmdebstrap builds the root filesystem: neither needs the other.
  say "NuGet feed: restore ${RESTORE_PROJECTS[*]} from copies of the files restore reads (in the background)"
  mkdir -p "$work/restore" "$work/sdk$FEED"
  (cd "$ROOT" && cp --parents "${RESTORE_INPUTS[@]}" "$work/restore/")
  (
    cd "$work/restore"
    for project in "${RESTORE_PROJECTS[@]}"; do
      dotnet restore "$project" --packages "$work/packages" --disable-build-servers || exit 1
    done
  ) >"$work/restore.log" 2>&1 &
  local restore_pid=$!

  say "$BASE_IMAGE: mmdebstrap --variant=essential $SUITE + $PACKAGES, imported"
  # Straight from mmdebstrap's tar to an image; documentation and locales left out, as in the
  # official images; no fsync per file (the root filesystem is thrown away if this fails).
  if ! mmdebstrap --variant=essential --include="$PACKAGES" --dpkgopt=force-unsafe-io \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    "$SUITE" - "$MIRROR" 2>"$work/mmdebstrap.log" | podman import -q - "$BASE_IMAGE" >/dev/null; then
    tail -n 30 "$work/mmdebstrap.log" >&2
    wait "$restore_pid" || true
    die "mmdebstrap or podman import failed"
  fi

  if ! wait "$restore_pid"; then
    cat "$work/restore.log" >&2
    die "dotnet restore failed"
  fi
  # A NuGet folder feed in the global packages folder's layout: id/version/ with the package, its
  # .nupkg.sha512 (which marks a version as present) and its .nuspec; the extracted files stay out.
  (cd "$work/packages" && find . \( -name '*.nupkg' -o -name '*.nupkg.sha512' -o -name '*.nuspec' \) \
    -exec cp --parents {} "$work/sdk$FEED/" \;)
  say "NuGet feed: $(find "$work/sdk$FEED" -name '*.nupkg' | wc -l) packages, $(du -sh "$work/sdk$FEED" | cut -f1)"
  mkdir -p "$work/sdk/root/.nuget/NuGet"
  cat >"$work/sdk/root/.nuget/NuGet/NuGet.Config" <<EOF
<?xml version="1.0" encoding="utf-8"?>
<!-- clusterheap-base/dotnet-sdk: restore from the packages baked into this image, never the network. -->
<configuration>
  <packageSources>
    <clear />
    <add key="clusterheap-base" value="$FEED" />
  </packageSources>
</configuration>
EOF

  say "$REDIS_IMAGE"
  layer "$work/redis" "$REDIS_IMAGE" 'CMD ["redis-server"]' 'EXPOSE 6379'

  # As the official aspnet image: the .NET runtime and ASP.NET Core (the silo's optional dashboard and
  # metrics endpoint reference it), both of the runtime's version.
  say "$RUNTIME_IMAGE (Microsoft.NETCore.App and Microsoft.AspNetCore.App $runtime_version from $home)"
  local framework
  mkdir -p "$work/runtime/usr/share/dotnet/shared" "$work/runtime/usr/bin"
  copy "$home/dotnet" "$home/host" "$work/runtime/usr/share/dotnet/"
  for framework in Microsoft.NETCore.App Microsoft.AspNetCore.App; do
    [[ -d "$home/shared/$framework/$runtime_version" ]] || die "no $framework $runtime_version under $home/shared"
    mkdir -p "$work/runtime/usr/share/dotnet/shared/$framework"
    copy "$home/shared/$framework/$runtime_version" "$work/runtime/usr/share/dotnet/shared/$framework/"
  done
  ln -s ../share/dotnet/dotnet "$work/runtime/usr/bin/dotnet"
  layer "$work/runtime" "$RUNTIME_IMAGE" "ENV DOTNET_VERSION=$runtime_version DOTNET_RUNNING_IN_CONTAINER=true"

  say "$SDK_IMAGE (SDK $(dotnet --version) from $home)"
  mkdir -p "$work/sdk/usr/share/dotnet" "$work/sdk/usr/bin"
  copy "$home/." "$work/sdk/usr/share/dotnet/"
  ln -s ../share/dotnet/dotnet "$work/sdk/usr/bin/dotnet"
  # No telemetry, no first-run work, no online revocation checks of the packages' signatures:
  # nothing in the image build reaches for the network.
  layer "$work/sdk" "$SDK_IMAGE" \
    "ENV DOTNET_VERSION=$runtime_version DOTNET_RUNNING_IN_CONTAINER=true DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1 NUGET_CERT_REVOCATION_MODE=offline" \
    "LABEL clusterheap.restore-inputs=$(inputs_hash)"

  rm -rf "$work"
  trap - EXIT
  say "stand-in base images built"
  podman images --format '   {{.Repository}}:{{.Tag}}  {{.Size}}' --filter reference='localhost/clusterheap-base/*'
}

case "${1:-}" in
  "") build ;;
  --if-stale)
    if current; then
      say "stand-in base images are current"
    else
      build
    fi
    ;;
  env)
    echo "CLUSTERHEAP_SDK_IMAGE=$SDK_IMAGE"
    echo "CLUSTERHEAP_RUNTIME_IMAGE=$RUNTIME_IMAGE"
    echo "CLUSTERHEAP_REDIS_IMAGE=$REDIS_IMAGE"
    ;;
  remove)
    for image in "$SDK_IMAGE" "$RUNTIME_IMAGE" "$REDIS_IMAGE" "$BASE_IMAGE"; do
      if image_exists "$image"; then podman rmi -f "$image" >/dev/null && echo "removed $image"; fi
    done
    ;;
  -h | --help | help) usage ;;
  *)
    usage >&2
    exit 2
    ;;
esac
