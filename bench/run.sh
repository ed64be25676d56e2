#!/usr/bin/env bash
# The benchmark: the stack's speed, footprint and start-up, measured against two ceilings in the
# same run on the same machine. Loopback only; bounded in time; everything it starts, it stops,
# by pid. Prints one table (Markdown) and keeps it, with the raw figures, in bench/target/.
# To decide a change instead, with variants of the stack side by side: bench/compare.sh.
#
#   bench/run.sh            # about 11 minutes (8 without the peers)
#   RUNS=5 DURATION=20 bench/run.sh
#   PEERS= bench/run.sh     # without the peers
#
# What runs (all at once, loaded in turn, so every ratio compares figures taken side by side):
#   ours      scripts/local-stack.sh: redis-server, 3 replicas of the jar with web-app/jvm.options
#             and the AOT cache (web-app/aot-train.sh, as in the image), nginx with the shipped
#             proxy.conf
#   default   the same stack with the JVM's default flags and no AOT cache: the reference for
#             the memory flags' cost in throughput
#   floor     the framework's floor: the same stack (local-stack.sh, nginx config, JVM flags) with
#             bench/FloorApp.java as the replicas, a Javalin + Jedis app that only INCRs and
#             answers ~100 bytes: what the service's features cost on top of the framework
#   peers     what a user would pick instead (PEERS, default both; bench/peers/build.sh builds
#             them): spring-boot (Boot 4 on Tomcat, Spring Data Redis on Lettuce, JVM defaults) and
#             express (Express 5, node-redis), each one INCR and ~100 bytes a request, three
#             instances behind the same local-stack.sh nginx config and Redis, the same warm-up
#   proxy     the proxy ceiling: the same generated nginx config (scripts/loopback-nginx.sh)
#             in front of a trivial upstream that answers `return 200` (bench/trivial-upstream.conf)
#   redis     the Redis ceiling: redis-benchmark INCR against ours' redis-server
# Each stack is warmed up (WARMUP seconds of full load; the JIT needs about 45 s when three
# JVMs share two cores) before its measured rounds; "first 10 s" is the load right after start.
# shellcheck disable=SC2154 # W_* and C_* are run_wrk's (bench/lib.sh)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${RUNS:-3}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-45}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-32}
REDIS_REQUESTS=${REDIS_REQUESTS:-200000}
PEERS=${PEERS-spring-boot express}
BASE_PORT=${BASE_PORT:-31000}
JAVA_HOME=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
JAVA=$JAVA_HOME/bin/java
JAR=$ROOT/web-app/target/web-app.jar
JVM_OPTIONS=$ROOT/web-app/jvm.options
CLK_TCK=$(getconf CLK_TCK)
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh" bench

for n in RUNS DURATION WARMUP THREADS CONNECTIONS REDIS_REQUESTS BASE_PORT; do
    { is_uint "${!n}" && ((${!n} > 0)); } || die "$n=${!n}: expected a whole number above 0"
done
for tool in wrk redis-server redis-benchmark redis-cli nginx curl ss; do
    command -v "$tool" >/dev/null || die "$tool not found (apt-get install wrk redis-server nginx curl iproute2)"
done
"$JAVA" -XX:+PrintFlagsFinal -version 2>/dev/null | grep -q AOTCacheOutput ||
    die "$JAVA has no AOT cache (JDK 25 or newer needed): set JAVA_HOME"

# Build if the jar is missing or older than any source.
if [[ ! -f $JAR ]] || [[ -n $(find "$ROOT/pom.xml" "$ROOT/web-app/pom.xml" "$ROOT/web-app/src/main" -newer "$JAR" -print -quit) ]]; then
    log "building web-app.jar"
    (cd "$ROOT" && JAVA_HOME=$JAVA_HOME ./mvnw -B -q -DskipTests -pl web-app package)
fi

WORK=$ROOT/bench/target/$(date +%Y%m%d-%H%M%S)
mkdir -p "$WORK"

# The floor and the peers: the local-stack.sh setting that runs each as the replicas.
FLOOR_SETTING=$(JAVA_HOME=$JAVA_HOME "$ROOT/bench/peers/build.sh" floor)
read -r -a PEER_NAMES <<<"$PEERS"
declare -A PEER_SETTING=() PEER_OFFSET=()
for peer in ${PEER_NAMES[@]+"${PEER_NAMES[@]}"}; do
    [[ $peer == spring-boot || $peer == express ]] || die "PEERS=$PEERS: expected spring-boot and/or express"
    PEER_SETTING[$peer]=$(JAVA_HOME=$JAVA_HOME "$ROOT/bench/peers/build.sh" "$peer")
    PEER_OFFSET[$peer]=$((40 + 5 * ${#PEER_OFFSET[@]}))
done

# Ports: BASE_PORT+0..9 ours, +10..19 default, +20..29 proxy ceiling, +30..32 the probes,
# +33..37 the floor, +40.. the peers, 5 each.
for ((p = BASE_PORT; p < BASE_PORT + 40 + 5 * ${#PEER_NAMES[@]}; p++)); do
    ! port_in_use "$p" || die "port $p is in use: choose another BASE_PORT"
done

# ---------------------------------------------------------------------------------------------
# Processes this script started, stopped on exit whatever happens.
# Stacks, loads and CPU accounting: bench/lib.sh.
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
CEILING_PIDS=()
cleanup() {
    local pid
    stop_stacks
    for pid in ${CEILING_PIDS[@]+"${CEILING_PIDS[@]}"}; do
        kill -QUIT "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Figures are collected as "key value" lines, one per run, and summarized at the end.
FIGURES=$WORK/figures.txt
: >"$FIGURES"
record() { echo "$1 $2" >>"$FIGURES"; }
values() { grep "^$1 " "$FIGURES" | cut -d' ' -f2 | sort -g; } # KEY: its recorded values, sorted
med() { # KEY: the median of its values
    values "$1" | awk '{ v[NR] = $1 } END { if (NR == 0) print "n/a"; else print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
median() { echo "$(med "$1") ($(values "$1" | head -n 1)–$(values "$1" | tail -n 1))"; } # KEY: "median (min–max)"
declare -A OK_TOTAL=()

load() { # NAME PORT_OFFSET SECONDS: load a stack, count its 2xx for the correctness line
    load_stack "$@"
    OK_TOTAL[$1]=$((${OK_TOTAL[$1]:-0} + W_ok))
}

# ---------------------------------------------------------------------------------------------
log "work directory: $WORK"
log "training the AOT cache (web-app/aot-train.sh)"
AOT_HTTP_PORT=$((BASE_PORT + 30)) AOT_REDIS_PORT=$((BASE_PORT + 31)) \
    "$ROOT/web-app/aot-train.sh" "$JAVA" "$JVM_OPTIONS" "$JAR" "$WORK/web-app.aot" >"$WORK/aot-train.log" 2>&1 ||
    { cat "$WORK/aot-train.log" >&2; die "AOT training failed"; }

# The first 10 s after start: a fresh stack each time, loaded as soon as it is ready.
for ((r = 1; r <= RUNS; r++)); do
    log "first 10 s after start, $r of $RUNS: ours, then with default JVM flags"
    started=$(date +%s%N)
    start_stack "fresh-ours-$r" 0 JAVA_OPTS="-XX:AOTCache=$WORK/web-app.aot"
    record ours.ready_ms $((($(date +%s%N) - started) / 1000000))
    load "fresh-ours-$r" 0 10
    record ours.first10.rps "$W_rps"
    stop_stack "fresh-ours-$r"
    start_stack "fresh-default-$r" 10 JVM_OPTIONS_FILE=
    load "fresh-default-$r" 10 10
    record default.first10.rps "$W_rps"
    stop_stack "fresh-default-$r"
done

log "ours, default JVM flags and the floor: starting, warming up for ${WARMUP}s each"
# ours logs its collections, to count the full ones during the measured rounds.
mkdir -p "$WORK/ours/gc"
start_stack ours 0 JAVA_OPTS="-XX:AOTCache=$WORK/web-app.aot -Xlog:gc:file=$WORK/ours/gc/gc-%p.log"
load ours 0 "$WARMUP"
start_stack default 10 JVM_OPTIONS_FILE=
load default 10 "$WARMUP"
start_stack floor 33 "$FLOOR_SETTING"
load floor 33 "$WARMUP"
for peer in ${PEER_NAMES[@]+"${PEER_NAMES[@]}"}; do
    log "peer $peer: starting, warming up for ${WARMUP}s"
    start_stack "$peer" "${PEER_OFFSET[$peer]}" "${PEER_SETTING[$peer]}"
    load "$peer" "${PEER_OFFSET[$peer]}" "$WARMUP"
done

log "proxy ceiling: nginx with the generated config in front of a trivial upstream"
mkdir -p "$WORK/proxy/trivial/tmp"
PAGE_BYTES=$(curl -fsS "$(url 0)" | wc -c)
OK_TOTAL[ours]=$((OK_TOTAL[ours] + 1)) # that page was a visit too
sed -e "s|@DIR@|$WORK/proxy/trivial|g" -e "s|@PORT1@|$((BASE_PORT + 22))|" -e "s|@PORT2@|$((BASE_PORT + 23))|" \
    -e "s|@PORT3@|$((BASE_PORT + 24))|" -e "s|@BODY@|$(head -c "$PAGE_BYTES" /dev/zero | tr '\0' x)|" \
    "$ROOT/bench/trivial-upstream.conf" >"$WORK/proxy/trivial/nginx.conf"
nginx -p "$WORK/proxy/trivial/" -c "$WORK/proxy/trivial/nginx.conf" -e "$WORK/proxy/trivial/error.log" &
CEILING_PIDS+=($!)
TRIVIAL_PID=$!
HTTP_PORT=$((BASE_PORT + 20)) WEB_BASE_PORT=$((BASE_PORT + 22)) \
    "$ROOT/scripts/loopback-nginx.sh" "$WORK/proxy/state" >"$WORK/proxy/check.log" 2>&1 ||
    { cat "$WORK/proxy/check.log" >&2; die "nginx config generation failed"; }
CONF=$WORK/proxy/state/nginx
nginx -p "$CONF/" -c "$CONF/nginx.conf" -e "$WORK/proxy/state/logs/nginx-error.log" >"$WORK/proxy/access.log" 2>&1 &
CEILING_PIDS+=($!)
PROXY_PID=$!
deadline=$((SECONDS + 30))
until curl -fsS -o /dev/null "$(url 20)" 2>/dev/null; do
    ((SECONDS < deadline)) || die "the proxy ceiling did not answer"
    sleep 0.1
done
run_wrk proxy "$(url 20)" 5 # warm-up

log "measuring: $RUNS rounds of ${DURATION}s each: ours, default, floor, proxy ceiling, redis ceiling"
for ((r = 1; r <= RUNS; r++)); do
    gcs_before=$(full_gcs ours)
    conns_sampler_start 0 "$WORK/ours/conns-$r.txt"
    load ours 0 "$DURATION"
    record ours.closed_conns "$(conns_sampler_stop 0 "$WORK/ours/conns-$r.txt")"
    record ours.full_gcs $(($(full_gcs ours) - gcs_before))
    record ours.rps "$W_rps"
    record ours.p50 "$(ms "$W_p50")"
    record ours.p99 "$(ms "$W_p99")"
    record ours.p999 "$(ms "$W_p999")"
    record ours.errors "$W_errors"
    record ours.cpu.wrk "$C_wrk"
    record ours.cpu.nginx "$C_nginx"
    record ours.cpu.replicas "$C_replicas"
    record ours.cpu.redis "$C_redis"

    load default 10 "$DURATION"
    record default.rps "$W_rps"
    record default.p99 "$(ms "$W_p99")"

    load floor 33 "$DURATION"
    record floor.rps "$W_rps"
    record floor.p99 "$(ms "$W_p99")"
    record floor.cpu.wrk "$C_wrk"
    record floor.cpu.nginx "$C_nginx"
    record floor.cpu.replicas "$C_replicas"
    record floor.cpu.redis "$C_redis"

    for peer in ${PEER_NAMES[@]+"${PEER_NAMES[@]}"}; do
        load "$peer" "${PEER_OFFSET[$peer]}" "$DURATION"
        record "$peer.rps" "$W_rps"
        record "$peer.p99" "$(ms "$W_p99")"
        record "$peer.errors" "$W_errors"
        record "$peer.cpu.nginx" "$C_nginx"
        record "$peer.cpu.replicas" "$C_replicas"
        record "$peer.cpu.redis" "$C_redis"
    done

    run_wrk proxy "$(url 20)" "$DURATION" "nginx:$PROXY_PID $(pgrep -P "$PROXY_PID" | tr '\n' ' ')" \
        "upstream:$TRIVIAL_PID $(pgrep -P "$TRIVIAL_PID" | tr '\n' ' ')"
    record proxy.rps "$W_rps"
    record proxy.p99 "$(ms "$W_p99")"
    record proxy.cpu.wrk "$C_wrk"
    record proxy.cpu.nginx "$C_nginx"
    record proxy.cpu.upstream "$C_upstream"

    redis-benchmark -h 127.0.0.1 -p $((BASE_PORT + 1)) -t incr -n "$REDIS_REQUESTS" -c "$CONNECTIONS" --csv \
        >"$WORK/redis-benchmark-$r.csv"
    record redis.rps "$(sed -n 's/^"INCR","\([0-9.]*\)".*/\1/p' "$WORK/redis-benchmark-$r.csv" | cut -d. -f1)"
    log "round $r: ours $(grep '^ours.rps ' "$FIGURES" | tail -1 | cut -d' ' -f2)/s, default $(grep '^default.rps ' "$FIGURES" | tail -1 | cut -d' ' -f2)/s, floor $(grep '^floor.rps ' "$FIGURES" | tail -1 | cut -d' ' -f2)/s,$(for peer in ${PEER_NAMES[@]+"${PEER_NAMES[@]}"}; do printf ' %s %s/s,' "$peer" "$(grep "^$peer.rps " "$FIGURES" | tail -1 | cut -d' ' -f2)"; done) proxy $(grep '^proxy.rps ' "$FIGURES" | tail -1 | cut -d' ' -f2)/s, redis INCR $(grep '^redis.rps ' "$FIGURES" | tail -1 | cut -d' ' -f2)/s"
done

for name in ours default floor ${PEER_NAMES[@]+"${PEER_NAMES[@]}"}; do
    for pid in $(stack_pids "$name" replicas); do record "$name.rss" "$(rss_mib "$pid")"; done
done

# Correctness: Redis's total against the 2xx responses wrk saw, and against the visits the
# replicas say they counted. wrk abandons the requests in flight when a run ends (at most one per
# connection): the server still counts them, so Redis may hold up to that many more.
TOTAL=$(redis-cli -p $((BASE_PORT + 1)) GET '{visits}:total')
COUNTED=0
for ((i = 0; i < 3; i++)); do
    n=$(curl -fsS "http://127.0.0.1:$((BASE_PORT + 2 + i))/metrics" | awk '/^visits_counted_total/ { printf "%d", $2 }')
    COUNTED=$((COUNTED + n))
done
RUNS_OURS=$((RUNS + 1))
IN_FLIGHT=$((TOTAL - OK_TOTAL[ours]))
if ((TOTAL == COUNTED && IN_FLIGHT >= 0 && IN_FLIGHT <= RUNS_OURS * CONNECTIONS)); then CORRECT=yes; else CORRECT=NO; fi

log "start-up: process start to first 200, one replica at a time, with and without the AOT cache"
for ((r = 1; r <= RUNS; r++)); do
    for variant in aot plain; do
        flags=("@$JVM_OPTIONS")
        [[ $variant == aot ]] && flags+=("-XX:AOTCache=$WORK/web-app.aot")
        ms=$(HOST=127.0.0.1 PORT=$((BASE_PORT + 32)) REPLICA_NAME=probe REDIS_URL=redis://127.0.0.1:$((BASE_PORT + 1)) \
            "$JAVA" "$ROOT/bench/StartupProbe.java" "$WORK/startup-$variant.log" "$JAVA" "${flags[@]}" -jar "$JAR" |
            sed -n 's/^startup_ms=//p')
        record "startup.$variant" "$ms"
    done
done

# ---------------------------------------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f%%", 100 * a / b }'; }
OURS=$(med ours.rps)
{
    echo "| figure | value: median (min–max) of $RUNS runs | target |"
    echo "|---|---|---|"
    echo "| ours: requests/s through nginx (wrk -t$THREADS -c$CONNECTIONS, ${DURATION}s) | $(median ours.rps) | |"
    echo "| proxy ceiling: nginx → \`return 200\`, requests/s | $(median proxy.rps) | |"
    echo "| **ours / proxy ceiling** | **$(ratio "$OURS" "$(med proxy.rps)")** | ≥ 30% |"
    echo "| floor: bench/FloorApp.java as the replicas, requests/s | $(median floor.rps) | |"
    echo "| **ours / floor** | **$(ratio "$OURS" "$(med floor.rps)")** | ≥ 90% |"
    echo "| floor: latency p99, ms | $(median floor.p99) | |"
    echo "| floor: RSS per replica after the load, MiB | $(median floor.rss) | |"
    fastest=
    for peer in ${PEER_NAMES[@]+"${PEER_NAMES[@]}"}; do
        echo "| peer $peer: requests/s | $(median "$peer.rps") | |"
        echo "| peer $peer: latency p99, ms | $(median "$peer.p99") | |"
        echo "| peer $peer: errors per run | $(median "$peer.errors") | 0 |"
        echo "| peer $peer: CPU µs per request: nginx / replicas / redis | $(med "$peer.cpu.nginx") / $(med "$peer.cpu.replicas") / $(med "$peer.cpu.redis") | |"
        echo "| peer $peer: RSS per replica after the load, MiB | $(median "$peer.rss") | |"
        if [[ -z $fastest ]] || awk -v a="$(med "$peer.rps")" -v b="$(med "$fastest.rps")" 'BEGIN { exit !(a > b) }'; then
            fastest=$peer
        fi
    done
    [[ -z $fastest ]] ||
        echo "| **ours / the faster peer ($fastest)** | **$(awk -v a="$OURS" -v b="$(med "$fastest.rps")" 'BEGIN { printf "%.2f×", a / b }')** | ≥ 1.1× |"
    echo "| Redis ceiling: redis-benchmark INCR -c$CONNECTIONS, requests/s | $(median redis.rps) | |"
    echo "| ours / Redis ceiling | $(ratio "$OURS" "$(med redis.rps)") | |"
    echo "| latency p50, ms | $(median ours.p50) | |"
    echo "| **latency p99, ms** | **$(median ours.p99)** | ≤ 10 |"
    echo "| latency p99.9, ms | $(median ours.p999) | |"
    echo "| errors (non-2xx, socket errors) per run | $(median ours.errors) | 0 |"
    echo "| CPU µs per request: wrk / nginx / replicas / redis | $(med ours.cpu.wrk) / $(med ours.cpu.nginx) / $(med ours.cpu.replicas) / $(med ours.cpu.redis) | |"
    echo "| floor CPU µs per request: wrk / nginx / replicas / redis | $(med floor.cpu.wrk) / $(med floor.cpu.nginx) / $(med floor.cpu.replicas) / $(med floor.cpu.redis) | |"
    echo "| proxy ceiling CPU µs per request: wrk / nginx / upstream | $(med proxy.cpu.wrk) / $(med proxy.cpu.nginx) / $(med proxy.cpu.upstream) | |"
    echo "| **RSS per replica after the load, MiB** (3 replicas) | **$(median ours.rss)** | ≤ 128 |"
    echo "| **full collections during a measured round** (3 replicas) | **$(median ours.full_gcs)** | 0 |"
    echo "| nginx → replica connections closed during a measured round (seen, gone by its end) | $(median ours.closed_conns) | |"
    echo "| default JVM flags: RSS per replica, MiB | $(median default.rss) | |"
    echo "| default JVM flags: requests/s | $(median default.rps) | |"
    echo "| **ours / default flags, throughput** | **$(ratio "$OURS" "$(med default.rps)")** | ≥ 90% |"
    echo "| **stack start to every replica ready, ms** (AOT cache) | **$(median ours.ready_ms)** | ≤ 3000 |"
    echo "| **start to first 200, ms** (AOT cache) | **$(median startup.aot)** | ≤ 800 |"
    echo "| start to first 200, ms, without the AOT cache | $(median startup.plain) | |"
    echo "| first 10 s after a fresh start, requests/s (AOT cache) | $(median ours.first10.rps) | |"
    echo "| **first 10 s / steady state** | **$(ratio "$(med ours.first10.rps)" "$OURS")** | ≥ 40% |"
    echo "| default flags, no AOT: first 10 s / steady state | $(ratio "$(med default.first10.rps)" "$(med default.rps)") | |"
    echo "| correctness: Redis total = visits the replicas counted; 2xx seen ≤ total ≤ 2xx + in flight at wrk's stops | $TOTAL = $COUNTED; $((OK_TOTAL[ours])) + $IN_FLIGHT (≤ $((RUNS_OURS * CONNECTIONS))): **$CORRECT** | yes |"
    echo
    echo "Machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1); $("$JAVA" -version 2>&1 | sed -n 2p); $(nginx -v 2>&1 | sed 's/.*: //'); Redis $(redis-server --version | cut -d' ' -f3 | tr -d v=)."
    echo "Command: \`RUNS=$RUNS DURATION=$DURATION WARMUP=$WARMUP PEERS='$PEERS' bench/run.sh\` ($(date -u +%Y-%m-%d)); raw figures: $WORK/figures.txt"
} | tee "$WORK/results.md"
[[ $CORRECT == yes ]]
