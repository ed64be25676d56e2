#!/bin/sh
# Writes the JVM's ahead-of-time cache for web-app (JDK 25: JEP 483 classes loaded and linked,
# JEP 515 method profiles): runs the app once with -XX:AOTCacheOutput against a throw-away
# redis-server, sends it the requests it serves in production, and stops it with SIGTERM; the
# JVM writes the cache as it exits. A replica started with -XX:AOTCache=OUTPUT then reaches its
# first 200 sooner and its full speed sooner.
#
# The cache only fits the same JVM build, the same class path (the jar and its lib/) and the same
# flags file, so train with exactly what will run. Used by web-app/Dockerfile (stage `aot`) and
# by bench/run.sh: one procedure for the image and the benchmark.
#
# Usage: aot-train.sh JAVA JVM_OPTIONS_FILE JAR OUTPUT
# Needs redis-server (or AOT_REDIS_SERVER, the command that starts one), and wget or curl, on the
# PATH. Ports: AOT_HTTP_PORT (default 18080) and AOT_REDIS_PORT (default 16379) on 127.0.0.1.
# POSIX sh: it runs on Alpine's busybox too.
set -eu

if [ $# -ne 4 ]; then
    echo "usage: $0 JAVA JVM_OPTIONS_FILE JAR OUTPUT" >&2
    exit 2
fi
java=$1 options=$2 jar=$3 output=$4
http_port=${AOT_HTTP_PORT:-18080}
redis_port=${AOT_REDIS_PORT:-16379}
work=$(mktemp -d)
base=http://127.0.0.1:$http_port

redis_pid="" app_pid=""
cleanup() {
    # Only what this script started, by pid.
    [ -z "$app_pid" ] || kill -KILL "$app_pid" 2>/dev/null || true
    [ -z "$redis_pid" ] || kill -TERM "$redis_pid" 2>/dev/null || true
    [ -z "$redis_pid" ] || wait "$redis_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

if command -v curl >/dev/null 2>&1; then
    fetch() { curl -fsS -o /dev/null --max-time 5 "$@"; }
    post() { curl -fsS -o /dev/null --max-time 5 -X POST "$1"; }
else
    fetch() { wget -q -T 5 -O /dev/null "$@"; }
    post() { wget -q -T 5 -O /dev/null --post-data= "$1"; }
fi

# Redis keeps nothing on disk and logs to stdout, so it can also run from another root
# (AOT_REDIS_SERVER="chroot DIR redis-server" in the image build); chroot execs it: same pid.
# shellcheck disable=SC2086 # AOT_REDIS_SERVER is a command and its arguments
${AOT_REDIS_SERVER:-redis-server} --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no \
    --dir / --logfile "" >"$work/redis.log" 2>&1 &
redis_pid=$!

rm -f "$output"
HOST=127.0.0.1 PORT=$http_port REPLICA_NAME=aot-training REDIS_URL=redis://127.0.0.1:$redis_port \
    "$java" "@$options" -XX:AOTCacheOutput="$output" -jar "$jar" >"$work/app.log" 2>&1 &
app_pid=$!

# Ready once Redis answers the app's PING (poll with a deadline: 60 s).
tries=0
until fetch "$base/readyz" 2>/dev/null; do
    tries=$((tries + 1))
    if [ "$tries" -gt 600 ] || ! kill -0 "$app_pid" 2>/dev/null; then
        echo "aot-train: the app did not become ready; its log:" >&2
        cat "$work/app.log" >&2
        exit 1
    fi
    sleep 0.1
done

# The production mix, often enough for the JIT to profile the hot paths.
i=0
while [ "$i" -lt 400 ]; do
    fetch "$base/"
    post "$base/api/visits"
    i=$((i + 1))
done
fetch "$base/api/visits"
fetch "$base/static/style.css"
fetch "$base/healthz"
fetch "$base/metrics"
fetch "$base/no-such-page" 2>/dev/null || true # 404
fetch --header "X-Request-Id: not valid" "$base/" 2>/dev/null || true # 400

# SIGTERM: the app stops gracefully and exits 0, and the JVM writes the cache on its way out.
kill -TERM "$app_pid"
status=0
wait "$app_pid" || status=$?
app_pid=""
if [ "$status" -ne 0 ] || [ ! -s "$output" ]; then
    echo "aot-train: no AOT cache written (exit status $status); the app's log:" >&2
    cat "$work/app.log" >&2
    exit 1
fi
echo "aot-train: wrote $output ($(wc -c <"$output") bytes)"
