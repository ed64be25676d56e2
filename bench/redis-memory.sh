#!/usr/bin/env bash
# Redis memory under sustained full load (issue #18, docs/redis-memory.md): the loopback stack as
# shipped, loaded with wrk -t2 -c32 for 2 × DURATION seconds without a pause; after DURATION and
# 2 × DURATION seconds, and one window before each, it reads Redis's used_memory and key count and
# the total of visits, and prints the memory per request counted in the last
# DEDUPE_WINDOW_SECONDS. Loopback only; bounded in time; everything it starts, it stops.
#
#   bench/redis-memory.sh        # about 2.5 minutes; needs JDK 25 (JAVA_HOME), wrk, redis-server, nginx
#
# DURATION=60; DEDUPE_WINDOW_SECONDS=15 (the service's default), passed to the stack so that both
# agree; REDIS_ARGS (e.g. "--hash-max-listpack-entries 256"), passed to the stack's redis-server.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
THREADS=2
CONNECTIONS=32
BASE_PORT=${BASE_PORT:-31000} # below the ephemeral ports (32768 and up), as compare.sh's
DURATION=${DURATION:-60}
WINDOW=${DEDUPE_WINDOW_SECONDS:-15}
JAVA_HOME=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
CLK_TCK=$(getconf CLK_TCK)
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh" redis-memory
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

for tool in wrk redis-server redis-cli nginx; do
    command -v "$tool" >/dev/null || die "$tool not found (apt-get install wrk redis-server nginx)"
done
[[ -f $ROOT/web-app/target/web-app.jar ]] || die "no web-app/target/web-app.jar: ./mvnw -B -DskipTests package"
is_uint "$DURATION" && ((DURATION > 1)) || die "DURATION=$DURATION: expected a whole number above 1"
is_uint "$WINDOW" && ((WINDOW > 0 && WINDOW < DURATION)) || die "DEDUPE_WINDOW_SECONDS=$WINDOW: expected 1 to DURATION - 1"

WORK=$ROOT/bench/target/redis-memory-$(date +%Y%m%d-%H%M%S)
mkdir -p "$WORK"
trap stop_stacks EXIT
trap 'exit 130' INT TERM

start_stack ours 0 DEDUPE_WINDOW_SECONDS="$WINDOW" ${REDIS_ARGS:+REDIS_ARGS="$REDIS_ARGS"}
redis() { redis-cli -p "$((BASE_PORT + 1))" "$@"; }
used_memory() { redis info memory | tr -d '\r' | sed -n 's/^used_memory://p'; }
total() { redis get '{visits}:total'; } # RedisVisits.TOTAL_KEY
baseline=$(used_memory)

# One wrk run for the whole time, so that the load never pauses; the readings are taken beside it.
wrk -t"$THREADS" -c"$CONNECTIONS" -d"$((2 * DURATION))s" --timeout 10s "$(url 0)" >"$WORK/wrk.txt" &
wrk_pid=$!
start=$SECONDS
declare -A TOTAL=() USED=() KEYS=()
for t in $((DURATION - WINDOW)) "$DURATION" $((2 * DURATION - WINDOW)) $((2 * DURATION)); do
    while ((SECONDS - start < t)); do sleep 0.2; done
    TOTAL[$t]=$(total) USED[$t]=$(used_memory) KEYS[$t]=$(redis dbsize)
done
wait "$wrk_pid"

echo "Redis under wrk -t$THREADS -c$CONNECTIONS on the loopback stack ($(awk '/^Requests\/sec/ { printf "%.0f", $2 }' "$WORK/wrk.txt") requests/s)," \
    "dedupe window ${WINDOW} s${REDIS_ARGS:+, redis-server $REDIS_ARGS}:"
echo
echo "| after | used_memory, MB | keys | requests counted in the last window | bytes per request counted in the window |"
echo "|---|---|---|---|---|"
for t in "$DURATION" $((2 * DURATION)); do
    live=$((TOTAL[$t] - TOTAL[$((t - WINDOW))]))
    ((live > 0)) || die "no request counted in the window before $t s: see $WORK"
    awk -v t="$t" -v used="${USED[$t]}" -v base="$baseline" -v keys="${KEYS[$t]}" -v live="$live" 'BEGIN {
        printf "| %d s | %.1f | %d | %d | %.0f |\n", t, used / 1e6, keys, live, (used - base) / live }'
done
echo
echo "Idle Redis: $(awk -v b="$baseline" 'BEGIN { printf "%.1f", b / 1e6 }') MB. Change from $DURATION to $((2 * DURATION)) s:" \
    "$(awk -v a="${USED[$DURATION]}" -v b="${USED[$((2 * DURATION))]}" 'BEGIN { printf "%+.1f", (b - a) / 1e6 }') MB."
echo "Figures kept in $WORK"
