#!/usr/bin/env bash
# Checks the Dockerfile's build stage without a Docker engine: copies exactly what its COPY lines
# copy (minus .dockerignore'd bin/obj) into an empty folder, then runs its RUN lines there with
# /app redirected into that folder. Catches a file the image build would miss; says nothing about
# the base images or the run stage.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/src"

stage=0
cmd=""
while IFS= read -r line || [[ -n "$line" ]]; do
  # Join continuation lines.
  if [[ "$line" == *\\ ]]; then
    cmd+="${line%\\} "
    continue
  fi
  cmd+="$line"
  read -r -a words <<<"$cmd"
  cmd=""
  ((${#words[@]})) || continue
  case "${words[0]}" in
    FROM) stage=$((stage + 1)) ;;
    COPY)
      ((stage == 1)) || continue
      [[ "${words[1]}" == --from=* ]] && continue
      dest="${words[-1]}"
      for src in "${words[@]:1:${#words[@]}-2}"; do
        target="$WORK/src/$dest"
        [[ "$dest" == */ ]] && mkdir -p "$target"
        [[ -e "$ROOT/$src" ]] || { echo "check-dockerfile: COPY source '$src' does not exist" >&2; exit 1; }
        # .dockerignore leaves out bin/ and obj/; tar keeps the source path, which the
        # Dockerfile's destinations mirror.
        (cd "$ROOT" && tar --exclude=bin --exclude=obj -cf - "$src") | tar -xf - -C "$WORK/src"
        [[ "${src%/}" == "${dest%/}" || "$dest" == "./" || "$(dirname "$src")/" == "$dest" ]] \
          || { echo "check-dockerfile: COPY $src $dest does not keep the path; teach this script" >&2; exit 1; }
      done
      ;;
    RUN)
      ((stage == 1)) || continue
      run="${words[*]:1}"
      run="${run//\/app\//$WORK/app/}"
      echo "check-dockerfile: RUN $run"
      (cd "$WORK/src" && bash -c "$run")
      ;;
  esac
done <"$ROOT/Dockerfile"

for program in "$WORK/app/silo/clusterheap-silo" "$WORK/app/client/clusterheap"; do
  [[ -x "$program" ]] || { echo "check-dockerfile: $program was not published" >&2; exit 1; }
done
"$WORK/app/silo/clusterheap-silo" --help | head -n 1
echo "check-dockerfile: build stage ok (silo and client published from the COPY'd files only)"
