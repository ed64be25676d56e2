#!/usr/bin/env bash
# The dev loop's compile, A/B: one replica compiling for all three (dev.compose.yaml's shared
# volume, the default) against each replica compiling on its own. Both dev stacks run at once;
# each round saves the same method-body edit of VisitPage.java into one stack's replicas (as
# compose watch's sync does: a copy into each container), times it until all three serve it
# through nginx, then undoes it; the stacks take turns.
#
#   bench/dev-compile.sh            ROUNDS=5 by default; needs a Docker engine and curl
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${ROUNDS:-5}"
PAGE=web-app/src/main/java/org/example/visitcounter/VisitPage.java
LABEL='This page has been visited'
work="$(mktemp -d)"
# Each replica compiles into a directory of its own instead of the shared volume.
printf 'services:\n  web:\n    environment:\n      JAVA_TOOL_OPTIONS: -Ddev.shared=/tmp/dev-own\n' >"$work/own.yaml"

compose() { # project http-port, then compose arguments
    local project="$1" port="$2"
    shift 2
    HTTP_PORT="$port" REDIS_DEV_PORT=$((port + 1)) JDWP_PORTS="$((port + 2))-$((port + 4))" \
        docker compose -p "$project" -f compose.yaml -f dev.compose.yaml "$@"
}
declare -A PORT=([vc-compile-shared]=18580 [vc-compile-own]=18590)
declare -A FILES=([vc-compile-shared]="" [vc-compile-own]="-f $work/own.yaml")
cleanup() {
    for p in "${!PORT[@]}"; do compose "$p" "${PORT[$p]}" ${FILES[$p]} down -v >/dev/null 2>&1 || true; done
    rm -rf "$work"
}
trap cleanup EXIT
for p in "${!PORT[@]}"; do compose "$p" "${PORT[$p]}" ${FILES[$p]} up -d --build --wait --quiet-pull >/dev/null; done

# Copies $1 into every replica of project $2, then seconds until nginx's pages from all three
# contain the marker $3 ($4 = yes, the default) or no longer do ($4 = no).
save_and_time() {
    local file="$1" project="$2" marker="$3" want="${4:-yes}" start seen=""
    start=$(date +%s.%N)
    for c in $(compose "$project" "${PORT[$project]}" ${FILES[$project]} ps -q web); do
        docker cp -q "$file" "$c:/app/src/main/java/org/example/visitcounter/VisitPage.java"
    done
    local deadline=$(($(date +%s) + 60))
    while [ "$(wc -w <<<"$seen")" -lt 3 ]; do
        [ "$(date +%s)" -lt "$deadline" ] || { echo "$project: not served by all three in 60 s" >&2; exit 1; }
        local headers
        headers="$(curl -s -D - -o "$work/body" "http://127.0.0.1:${PORT[$project]}/" || true)"
        local found=no
        if grep -qF -- "$marker" "$work/body"; then found=yes; fi
        if [ "$found" = "$want" ]; then
            local by
            by="$(tr -d '\r' <<<"$headers" | sed -n 's/^[Xx]-[Ss]erved-[Bb]y: //p')"
            grep -qw -- "$by" <<<"$seen" || seen="$seen $by"
        fi
    done
    echo "$(date +%s.%N) - $start" | bc
}

# An edit is a new build (compiled); its undo is the previous build again, found compiled.
declare -A EDITS UNDOS
for ((round = 1; round <= ROUNDS; round++)); do
    for p in vc-compile-shared vc-compile-own; do
        marker="visited (ab-$round-$RANDOM)"
        sed "s/$LABEL/This page has been $marker/" "$PAGE" >"$work/VisitPage.java"
        edited=$(save_and_time "$work/VisitPage.java" "$p" "$marker")
        undone=$(save_and_time "$PAGE" "$p" "$marker" no)
        EDITS[$p]="${EDITS[$p]:-} $edited"
        UNDOS[$p]="${UNDOS[$p]:-} $undone"
        printf 'round %d %-18s edit %.2f s, undo %.2f s\n' "$round" "$p" "$edited" "$undone"
    done
done
summary() { # label, then the times
    local label="$1"
    shift
    read -r -a t <<<"$(tr ' ' '\n' <<<"$*" | sort -n | tr '\n' ' ')"
    printf '%-32s median %.2f s, max %.2f s over %d saves\n' "$label" "${t[${#t[@]} / 2]}" "${t[-1]}" "${#t[@]}"
}
for p in vc-compile-shared vc-compile-own; do
    summary "$p edits" ${EDITS[$p]}
    summary "$p undos" ${UNDOS[$p]}
done
