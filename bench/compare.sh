#!/usr/bin/env bash
# Side-by-side comparison of stack variants, for deciding a change: each variant is a
# scripts/local-stack.sh stack (3 replicas, nginx, Redis) with its own settings, all started at
# once, warmed up, then loaded in turn round after round, so that their figures are taken
# minutes apart at most on the same machine. Loopback only; bounded in time; everything it
# starts, it stops. For the stack's own figures against its targets: bench/run.sh.
#
#   bench/compare.sh NAME SETTINGS [NAME SETTINGS ...]
#
# SETTINGS: VAR=value entries separated by "|" ("" for none), passed to local-stack.sh (see its
# --help: JAVA_OPTS, JVM_OPTIONS_FILE, WEB_APP_JAR, ...); CHECKOUT=dir runs the stack from another
# checkout of the project (another nginx config, another build); PEER=floor|spring-boot|express
# runs another app as the replicas (bench/peers/build.sh builds it): the framework's floor, or a
# peer a user would pick instead, behind the same nginx config. For example:
#   bench/compare.sh now '' no-trim 'JAVA_OPTS=-XX:TrimNativeHeapInterval=0'
#   bench/compare.sh main 'CHECKOUT=/tmp/visit-counter-main' this ''
#   bench/compare.sh ours '' floor PEER=floor spring-boot PEER=spring-boot express PEER=express
#
# Per variant and round it prints requests/s, p50 and p99, full collections, nginx connections
# to the replicas closed during the round, and CPU µs per request of replicas, nginx and Redis;
# at the end, each replica's resident size, and what Redis counted during the rounds (INFO
# commandstats, stats and cpu) in the work directory. (The peers other than the floor log no
# collections: their full GCs read 0.)
# shellcheck disable=SC2154 # W_* and C_* are run_wrk's (bench/lib.sh)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-40}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-32}
BASE_PORT=${BASE_PORT:-32000}
JAVA_HOME=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
CLK_TCK=$(getconf CLK_TCK)
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh" compare
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

for n in ROUNDS DURATION WARMUP THREADS CONNECTIONS BASE_PORT; do
    { is_uint "${!n}" && ((${!n} > 0)); } || die "$n=${!n}: expected a whole number above 0"
done
(($# >= 2 && $# % 2 == 0)) || die "usage: bench/compare.sh NAME SETTINGS [NAME SETTINGS ...] (see the script's head)"
for tool in wrk redis-server redis-cli nginx curl ss; do
    command -v "$tool" >/dev/null || die "$tool not found (apt-get install wrk redis-server nginx curl iproute2)"
done
[[ -f $ROOT/web-app/target/web-app.jar ]] || die "no web-app/target/web-app.jar: ./mvnw -B -DskipTests package"

WORK=$ROOT/bench/target/compare-$(date +%Y%m%d-%H%M%S)
mkdir -p "$WORK"
trap stop_stacks EXIT
trap 'exit 130' INT TERM

# Variant i gets ports BASE_PORT + 10*i .. +4.
NAMES=()
declare -A OFFSET=()
while (($#)); do
    name=$1 checkout=$ROOT java_opts="" settings=()
    [[ $name =~ ^[A-Za-z0-9_-]+$ && -z ${OFFSET[$name]:-} ]] || die "$name: expected a new name of A-Z a-z 0-9 _ -"
    IFS='|' read -r -a entries <<<"$2"
    for entry in ${entries[@]+"${entries[@]}"}; do
        case $entry in
            CHECKOUT=*) checkout=${entry#CHECKOUT=} ;;
            JAVA_OPTS=*) java_opts=${entry#JAVA_OPTS=} ;;
            PEER=*) settings+=("$(JAVA_HOME=$JAVA_HOME "$ROOT/bench/peers/build.sh" "${entry#PEER=}")") ;;
            ?*=*) settings+=("$entry") ;;
            *) die "$name: '$entry' is not VAR=value" ;;
        esac
    done
    [[ -x $checkout/scripts/local-stack.sh ]] || die "$name: $checkout is not a checkout of the project"
    OFFSET[$name]=$((10 * ${#NAMES[@]}))
    for ((p = BASE_PORT + OFFSET[$name]; p < BASE_PORT + OFFSET[$name] + 5; p++)); do
        ! port_in_use "$p" || die "port $p is in use: choose another BASE_PORT"
    done
    mkdir -p "$WORK/$name/gc"
    log "starting $name"
    STACK_CHECKOUT=$checkout start_stack "$name" "${OFFSET[$name]}" \
        JAVA_OPTS="$java_opts -Xlog:gc:file=$WORK/$name/gc/gc-%p.log" ${settings[@]+"${settings[@]}"}
    NAMES+=("$name")
    shift 2
done

load() { load_stack "$1" "${OFFSET[$1]}" "$2"; } # NAME SECONDS
for name in "${NAMES[@]}"; do
    log "warming up $name for ${WARMUP}s"
    load "$name" "$WARMUP"
done
# Redis's own figures from here on: the rounds only.
for name in "${NAMES[@]}"; do redis-cli -p $((BASE_PORT + OFFSET[$name] + 1)) CONFIG RESETSTAT >/dev/null; done
echo "| round | variant | requests/s | p50 ms | p99 ms | full GCs | conns closed | CPU µs/request: replicas / nginx / redis | errors |"
echo "|---|---|---|---|---|---|---|---|---|"
for ((r = 1; r <= ROUNDS; r++)); do
    for name in "${NAMES[@]}"; do
        gcs=$(full_gcs "$name")
        conns_sampler_start "${OFFSET[$name]}" "$WORK/$name/conns-$r.txt"
        load "$name" "$DURATION"
        closed=$(conns_sampler_stop "${OFFSET[$name]}" "$WORK/$name/conns-$r.txt")
        echo "| $r | $name | $W_rps | $(ms "$W_p50") | $(ms "$W_p99") | $(($(full_gcs "$name") - gcs)) | $closed" \
            "| $C_replicas / $C_nginx / $C_redis | $W_errors |"
    done
done | tee "$WORK/rounds.md"
echo
echo "| variant | median requests/s | median p99 ms | median CPU µs/request: replicas / nginx / redis |"
echo "|---|---|---|---|"
for name in "${NAMES[@]}"; do # medians over the rounds, column by column, from rounds.md
    awk -F' *[|/] *' -v n="$name" '$3 == n { r[++k] = $4; p[k] = $6; a[k] = $9; b[k] = $10; c[k] = $11 }
        function med(v,   i, j, t) { for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
            return k % 2 ? v[(k + 1) / 2] : (v[k / 2] + v[k / 2 + 1]) / 2 }
        END { printf "| %s | %s | %s | %s / %s / %s |\n", n, med(r), med(p), med(a), med(b), med(c) }' "$WORK/rounds.md"
done | tee "$WORK/medians.md"
for name in "${NAMES[@]}"; do
    printf '%s: RSS per replica after the load, MiB:' "$name"
    for pid in $(stack_pids "$name" replicas); do printf ' %s' "$(rss_mib "$pid")"; done
    echo
done | tee "$WORK/rss.txt"
for name in "${NAMES[@]}"; do
    redis-cli -p $((BASE_PORT + OFFSET[$name] + 1)) INFO everything | tr -d '\r' |
        grep -E '^(cmdstat_|total_commands_processed|total_net_input_bytes|total_reads_processed|used_cpu_(sys|user):|connected_clients)' \
        >"$WORK/$name/redis-info.txt"
done
log "figures kept in $WORK"
