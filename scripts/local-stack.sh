#!/usr/bin/env bash
# The visit-counter stack without Docker: redis-server, N replicas of the built jar and nginx with
# the shipped nginx/proxy.conf, all on loopback, in the foreground, supervised like Compose's
# `restart: always`. Used by people without Docker, by the stack tests and by the benchmark.
# The nginx configuration comes from scripts/loopback-nginx.sh. Run with --help for the settings.
# shellcheck disable=SC2317 # the stop functions run from traps, which shellcheck cannot follow
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: scripts/local-stack.sh [--help | --check-nginx]

Starts the visit-counter stack on 127.0.0.1 without Docker, in the foreground:
  redis-server  (unless REDIS_URL is set: then that Redis is used and none is started)
  REPLICAS x    java -jar web-app/target/web-app.jar, named web-1..web-N, one port each;
                a replica that exits (crash, kill, SIGTERM) is started again on its port
                (at once; after 1, 2, 4, 8 s while it keeps exiting within 10 s of starting)
  nginx         the shipped nginx/proxy.conf, round robin over the replicas
Stop it with Ctrl-C or SIGTERM: nginx, then the replicas, then Redis are stopped; exit status 0.
(Started in the background by another script, bash ignores SIGINT: send SIGTERM.)

Options:
  --check-nginx   only generate the nginx configuration and test it (scripts/loopback-nginx.sh)
  --help          this text

Environment (all optional):
  HTTP_PORT=8080          nginx's port (the stack's URL)
  WEB_BASE_PORT=9001      replica i listens on WEB_BASE_PORT+i-1
  REPLICAS=3              number of replicas
  REDIS_PORT=6379         port of the redis-server started here
  REDIS_ARGS=             extra redis-server flags, split on blanks (e.g. "--appendonly yes");
                          by default Redis keeps nothing on disk
  REDIS_URL=              use this Redis instead of starting one (redis[s]://[user:pass@]host:port[/db])
  NGINX_BALANCE=round_robin   round_robin | least_conn | ip_hash (nginx/balance/<name>.conf)
  NGINX_RATE_LIMIT=off    on: the production per-client rate limit (429 when exceeded)
  NGINX_BIN=/usr/sbin/nginx
  JAVA_HOME=              java is $JAVA_HOME/bin/java when set, else `java` from PATH (needs 21+)
  JVM_OPTIONS_FILE=web-app/jvm.options   the JVM flags file (the image's); set it empty to
                          run the JVM with its defaults
  JAVA_OPTS=              extra JVM flags, after those of JVM_OPTIONS_FILE (and, on glibc,
                          -XX:TrimNativeHeapInterval=5000 with MALLOC_ARENA_MAX=2, which
                          stand in for musl's handling of the C heap in the image)
  WEB_APP_JAR=web-app/target/web-app.jar
  REPLICA_COMMAND=        run this command line (split on blanks) as each replica instead of
                          the JVM and the jar; the benchmark's peers (bench/peers/) run so
  STATE_DIR=              where pids, logs, generated config and Redis data go; default: a new
                          temporary directory, deleted on exit unless KEEP_STATE=1 (a STATE_DIR
                          you give is never deleted)
  KEEP_STATE=0
  READY_TIMEOUT=60        seconds to wait for the stack to become ready
  STOP_TIMEOUT=15         seconds a replica gets to stop after SIGTERM before SIGKILL
The replicas' own settings (README.md's "Configuration": web-app's Settings.Variable) are passed
through; HOST (127.0.0.1), PORT, REPLICA_NAME and REDIS_URL are set per replica. Replicas run
in STATE_DIR, so give paths (e.g. STATIC_DIR) as absolute paths.

Files in STATE_DIR:
  pids/redis, pids/nginx (master), pids/web-1..N (the current JVM)
  logs/         redis.log, web-N.log, nginx.log (access log), nginx-error.log
  ready         written once nginx answers and every replica's /readyz is 200
EOF
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh" local-stack

CHECK_ONLY=0
case "${1:-}" in
    "") ;;
    -h | --help) usage; exit 0 ;;
    --check-nginx) CHECK_ONLY=1 ;;
    *) echo "local-stack: unknown argument: $1 (try --help)" >&2; exit 2 ;;
esac
if (($# > 1)); then
    echo "local-stack: too many arguments (try --help)" >&2
    exit 2
fi

REDIS_PORT=${REDIS_PORT:-6379}
REDIS_ARGS=${REDIS_ARGS:-}
REDIS_URL=${REDIS_URL:-}
JAVA_OPTS=${JAVA_OPTS:-}
WEB_APP_JAR=${WEB_APP_JAR:-$ROOT/web-app/target/web-app.jar}
REPLICA_COMMAND=${REPLICA_COMMAND:-}
JVM_OPTIONS_FILE=${JVM_OPTIONS_FILE-$ROOT/web-app/jvm.options}
KEEP_STATE=${KEEP_STATE:-0}
READY_TIMEOUT=${READY_TIMEOUT:-60}
STOP_TIMEOUT=${STOP_TIMEOUT:-15}

check_port REDIS_PORT "$REDIS_PORT"
is_uint "$READY_TIMEOUT" || die "READY_TIMEOUT=$READY_TIMEOUT: expected whole seconds"
is_uint "$STOP_TIMEOUT" || die "STOP_TIMEOUT=$STOP_TIMEOUT: expected whole seconds"
# The nginx side: HTTP_PORT, WEB_BASE_PORT, REPLICAS and NGINX_* (defaults, checks), write_nginx_conf.
# shellcheck source=scripts/loopback-nginx.sh
source "$ROOT/scripts/loopback-nginx.sh"

# ---------------------------------------------------------------------------------------------
# State directory

STATE_DIR_CREATED=0
make_state_dir() {
    if [[ -z ${STATE_DIR:-} ]]; then
        STATE_DIR=$(mktemp -d "${TMPDIR:-/tmp}/visit-counter-stack.XXXXXX")
        STATE_DIR_CREATED=1
    else
        mkdir -p -- "$STATE_DIR"
        STATE_DIR=$(cd -- "$STATE_DIR" && pwd)
    fi
    PIDS=$STATE_DIR/pids
    LOGS=$STATE_DIR/logs # write_nginx_conf puts nginx's error log there too
}

if ((CHECK_ONLY)); then
    make_state_dir
    status=0
    "$ROOT/scripts/loopback-nginx.sh" "$STATE_DIR" || status=$?
    if ((STATE_DIR_CREATED && KEEP_STATE != 1)); then
        rm -rf -- "$STATE_DIR"
    else
        echo "generated configuration: $STATE_DIR/nginx/nginx.conf" >&2
    fi
    exit "$status"
fi

# ---------------------------------------------------------------------------------------------
# Preconditions for a real start

if [[ -z $REPLICA_COMMAND && ! -f $WEB_APP_JAR ]]; then
    echo "local-stack: $WEB_APP_JAR not found: build it first with" >&2
    echo "    ./mvnw -B -DskipTests package" >&2
    exit 1
fi
if [[ -n ${JAVA_HOME:-} ]]; then
    JAVA=$JAVA_HOME/bin/java
    [[ -x $JAVA ]] || die "JAVA_HOME=$JAVA_HOME has no bin/java"
else
    JAVA=$(command -v java) || die "java not found: set JAVA_HOME to a JDK 21 or newer"
fi
JAVA_ARGS=()
if [[ -n $JVM_OPTIONS_FILE ]]; then
    [[ -f $JVM_OPTIONS_FILE ]] || die "JVM_OPTIONS_FILE=$JVM_OPTIONS_FILE does not exist"
    JAVA_ARGS+=("@$(cd -- "$(dirname -- "$JVM_OPTIONS_FILE")" && pwd)/$(basename -- "$JVM_OPTIONS_FILE")")
fi
# glibc, unlike musl (the image's C library), keeps a malloc arena per thread and the C heap
# the JIT compilers free: two arenas and a trim every 5 s bring a replica's resident size here
# from ~145 to ~116 MiB (bench/RESULTS.md). Neither applies on musl, where the JVM would warn
# about the trim flag, so neither is in web-app/jvm.options.
GLIBC_ENV=()
if getconf GNU_LIBC_VERSION >/dev/null 2>&1; then
    GLIBC_ENV=(MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}")
    JAVA_ARGS+=(-XX:TrimNativeHeapInterval=5000)
fi
read -r -a extra_java <<<"$JAVA_OPTS"
JAVA_ARGS+=(${extra_java[@]+"${extra_java[@]}"})
REPLICA_ARGV=("$JAVA" "${JAVA_ARGS[@]}" -jar "$WEB_APP_JAR")
[[ -z $REPLICA_COMMAND ]] || read -r -a REPLICA_ARGV <<<"$REPLICA_COMMAND"
read -r -a REDIS_EXTRA <<<"$REDIS_ARGS"
command -v curl >/dev/null || die "curl not found (apt-get install curl)"
if [[ -z $REDIS_URL ]]; then
    command -v redis-server >/dev/null || die "redis-server not found (apt-get install redis-server), or set REDIS_URL"
fi

ports=("$HTTP_PORT")
[[ -n $REDIS_URL ]] || ports+=("$REDIS_PORT")
for ((i = 0; i < REPLICAS; i++)); do ports+=($((WEB_BASE_PORT + i))); done
for port in "${ports[@]}"; do
    if port_in_use "$port"; then
        die "port $port on 127.0.0.1 is already in use (see HTTP_PORT, REDIS_PORT, WEB_BASE_PORT)"
    fi
done

alive() {
    kill -0 "$1" 2>/dev/null || return 1
    [[ -r /proc/$1/stat ]] || return 0
    proc_stat "$1" && [[ ${PROC_STAT[0]} != Z ]] # a zombie still answers kill -0
}

make_state_dir
if [[ -d $PIDS ]]; then
    for f in "$PIDS"/*; do
        [[ -f $f ]] || continue
        old=$(<"$f")
        if is_uint "$old" && alive "$old"; then
            die "STATE_DIR=$STATE_DIR belongs to a running stack ($(basename "$f") pid $old)"
        fi
    done
fi
rm -rf -- "$PIDS" "$STATE_DIR/ready"
mkdir -p "$PIDS" "$LOGS" "$STATE_DIR/redis"

# ---------------------------------------------------------------------------------------------
# Processes. Each runs in its own session (setsid execs, so $! is its pid): Ctrl-C on the terminal
# reaches only this script, which then stops everything in order.

REDIS_PID=""
NGINX_PID=""
declare -a WEB_PID WEB_STARTED WEB_RESTART_AT WEB_QUICK_FAILS WEB_READY
STOP_REQUESTED=0
STOPPING=0
TICK_PID=""
EXIT_STATUS=1

write_pid() { # name pid
    printf '%s\n' "$2" >"$PIDS/.$1.tmp"
    mv -f -- "$PIDS/.$1.tmp" "$PIDS/$1"
}

LAST_PID=""
spawn() { # name command...  (sets LAST_PID)
    local name=$1
    shift
    (cd "$STATE_DIR" && exec setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null) &
    LAST_PID=$!
    write_pid "$name" "$LAST_PID"
}

start_redis() {
    spawn redis redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --protected-mode yes \
        --daemonize no --logfile "" --dir "$STATE_DIR/redis" --save "" --appendonly no \
        ${REDIS_EXTRA[@]+"${REDIS_EXTRA[@]}"}
    REDIS_PID=$LAST_PID
}

replica_port() { echo $((WEB_BASE_PORT + $1 - 1)); }

start_replica() { # index (1-based)
    local i=$1 url=$REDIS_URL
    [[ -n $url ]] || url="redis://127.0.0.1:$REDIS_PORT"
    spawn "web-$i" env ${GLIBC_ENV[@]+"${GLIBC_ENV[@]}"} HOST=127.0.0.1 PORT="$(replica_port "$i")" \
        REPLICA_NAME="web-$i" REDIS_URL="$url" "${REPLICA_ARGV[@]}"
    WEB_PID[i]=$LAST_PID
    WEB_STARTED[i]=$SECONDS
    WEB_RESTART_AT[i]=""
}

start_nginx() {
    # proxy.conf logs requests to /dev/stdout (the container's log): here that is logs/nginx.log.
    spawn nginx "$NGINX_BIN" "${NGINX_ARGS[@]}"
    NGINX_PID=$LAST_PID
}

tail_log() { # name
    local f=$LOGS/$1.log
    [[ $1 == nginx ]] && f=$LOGS/nginx-error.log
    if [[ -s $f ]]; then
        echo "---- last lines of $f ----" >&2
        tail -n 30 -- "$f" >&2
        echo "----" >&2
    fi
}

REAPED=0
reap() { # pid: sets REAPED to its exit status, once it has exited (a child of this script)
    REAPED=0
    wait "$1" 2>/dev/null || REAPED=$?
}

# Sends signal $1 to the live pids among the rest, waits up to $2 s for them all to exit, then
# SIGKILLs what is left. Only pids this script started are ever passed in.
stop_pids() {
    local sig=$1 timeout=$2 pid deadline left
    shift 2
    for pid in "$@"; do
        if alive "$pid"; then kill -s "$sig" "$pid" 2>/dev/null || true; fi
    done
    deadline=$((SECONDS + timeout))
    while :; do
        left=()
        for pid in "$@"; do alive "$pid" && left+=("$pid"); done
        ((${#left[@]} == 0)) && return 0
        ((SECONDS < deadline)) || break
        sleep 0.1
    done
    log "still running after ${timeout}s: ${left[*]}; sending SIGKILL"
    for pid in "${left[@]}"; do kill -s KILL "$pid" 2>/dev/null || true; done
    for pid in "${left[@]}"; do
        while alive "$pid"; do sleep 0.05; done
    done
}

shutdown_all() {
    ((STOPPING)) && return 0
    STOPPING=1
    local pids=() i
    if [[ -n $TICK_PID ]]; then kill "$TICK_PID" 2>/dev/null || true; fi
    if [[ -n $NGINX_PID ]]; then
        if alive "$NGINX_PID"; then
            log "stopping nginx (pid $NGINX_PID)"
            stop_pids QUIT 10 "$NGINX_PID" # graceful: finishes requests in flight
        fi
        # Workers left behind by a master that died: same session as the master, which we started.
        if pgrep -s "$NGINX_PID" >/dev/null 2>&1; then
            log "killing the workers left by nginx master $NGINX_PID"
            pkill -KILL -s "$NGINX_PID" 2>/dev/null || true
            for _ in {1..50}; do
                pgrep -s "$NGINX_PID" >/dev/null 2>&1 || break
                sleep 0.1
            done
        fi
    fi
    for ((i = 1; i <= REPLICAS; i++)); do
        [[ -n ${WEB_PID[i]:-} ]] && alive "${WEB_PID[i]}" && pids+=("${WEB_PID[i]}")
    done
    if ((${#pids[@]})); then
        log "stopping replicas (pids ${pids[*]})"
        stop_pids TERM "$STOP_TIMEOUT" "${pids[@]}"
    fi
    if [[ -n $REDIS_PID ]] && alive "$REDIS_PID"; then
        log "stopping redis (pid $REDIS_PID)"
        stop_pids TERM 10 "$REDIS_PID"
    fi
    wait 2>/dev/null || true
}

on_exit() {
    local rc=$?
    trap - EXIT TERM INT HUP
    ((EXIT_STATUS == 0)) && rc=0
    shutdown_all
    rm -f -- "$STATE_DIR/ready"
    if ((STATE_DIR_CREATED)) && [[ $KEEP_STATE != 1 ]]; then
        rm -rf -- "$STATE_DIR"
    elif ((rc != 0)); then
        log "logs kept in $LOGS"
    fi
    ((rc == 0)) && log "stopped"
    exit "$rc"
}
trap on_exit EXIT
# A signal only sets a flag (and cuts the current wait short); the main loop stops at a point
# where no process is half-started, so no pid can go unrecorded.
on_signal() {
    STOP_REQUESTED=1
    if [[ -n $TICK_PID ]]; then kill "$TICK_PID" 2>/dev/null || true; fi
}
trap on_signal TERM INT HUP

tick() { # waits $1 s, returning at once on a signal
    sleep "$1" &
    TICK_PID=$!
    wait "$TICK_PID" 2>/dev/null || true
    TICK_PID=""
}

# One round of supervision. Phase "start": a replica that exits fails the start (loudly); phase
# "run": it is started again at once, like Compose's `restart: always`, and with a growing delay
# (1, 2, 4, 8 s) while it keeps exiting within 10 s of its previous start.
REDIS_REPORTED=0
supervise() { # phase
    local phase=$1 i pid st up delay
    if ! alive "$NGINX_PID"; then
        reap "$NGINX_PID"
        log "nginx (pid $NGINX_PID) exited with status $REAPED: stopping the stack"
        tail_log nginx
        exit 1
    fi
    if [[ -n $REDIS_PID ]] && ((!REDIS_REPORTED)) && ! alive "$REDIS_PID"; then
        reap "$REDIS_PID"
        REDIS_REPORTED=1
        log "redis (pid $REDIS_PID) exited with status $REAPED; it is not restarted"
        if [[ $phase == start ]]; then
            tail_log redis
            exit 1
        fi
    fi
    for ((i = 1; i <= REPLICAS; i++)); do
        pid=${WEB_PID[i]}
        if [[ -z ${WEB_RESTART_AT[i]} ]]; then
            alive "$pid" && continue
            reap "$pid"
            st=$REAPED
            up=$((SECONDS - WEB_STARTED[i]))
            if [[ $phase == start ]]; then
                log "web-$i (pid $pid) exited with status $st while starting"
                tail_log "web-$i"
                if grep -q UnsupportedClassVersionError "$LOGS/web-$i.log" 2>/dev/null; then
                    log "hint: $JAVA is too old; set JAVA_HOME to a JDK 21 or newer"
                fi
                exit 1
            fi
            if ((up < 10)); then
                WEB_QUICK_FAILS[i]=$((${WEB_QUICK_FAILS[i]:-0} + 1))
                delay=$((WEB_QUICK_FAILS[i] < 2 ? 0 : 1 << (WEB_QUICK_FAILS[i] > 5 ? 3 : WEB_QUICK_FAILS[i] - 2)))
            else
                WEB_QUICK_FAILS[i]=0
                delay=0
            fi
            WEB_RESTART_AT[i]=$((SECONDS + delay))
            log "web-$i (pid $pid) exited with status $st after ${up}s; restarting it in ${delay}s"
        fi
        if ((SECONDS >= WEB_RESTART_AT[i])); then
            start_replica "$i"
            log "web-$i restarted on port $(replica_port "$i"), pid ${WEB_PID[i]}"
        fi
    done
}

http_ok() { curl --noproxy '*' -fsS -o /dev/null --max-time 1 "$1" 2>/dev/null; }

# ---------------------------------------------------------------------------------------------
# Start

write_nginx_conf "$STATE_DIR"
"$NGINX_BIN" -t -q "${NGINX_ARGS[@]}" 2>>"$LOGS/nginx-error.log" || {
    tail_log nginx
    die "the generated nginx configuration does not pass nginx -t"
}

if [[ -z $REDIS_URL ]]; then
    start_redis
    log "redis on 127.0.0.1:$REDIS_PORT, pid $REDIS_PID"
fi
for ((i = 1; i <= REPLICAS; i++)); do
    start_replica "$i"
    WEB_QUICK_FAILS[i]=0
    WEB_READY[i]=0
    log "web-$i on 127.0.0.1:$(replica_port "$i"), pid ${WEB_PID[i]}"
done
start_nginx
log "nginx on 127.0.0.1:$HTTP_PORT, pid $NGINX_PID"

deadline=$((SECONDS + READY_TIMEOUT))
nginx_ready=0
while :; do
    ((STOP_REQUESTED)) && break
    supervise start
    waiting=()
    if ((!nginx_ready)); then
        if http_ok "http://127.0.0.1:$HTTP_PORT/nginx-health"; then
            nginx_ready=1
        else
            waiting+=(nginx)
        fi
    fi
    for ((i = 1; i <= REPLICAS; i++)); do
        if ((!WEB_READY[i])); then
            if http_ok "http://127.0.0.1:$(replica_port "$i")/readyz"; then
                WEB_READY[i]=1
            else
                waiting+=("web-$i")
            fi
        fi
    done
    ((${#waiting[@]} == 0)) && break
    if ((SECONDS >= deadline)); then
        log "not ready after ${READY_TIMEOUT}s: ${waiting[*]}"
        for name in "${waiting[@]}"; do tail_log "$name"; done
        [[ -n $REDIS_PID ]] && tail_log redis
        exit 1
    fi
    tick 0.2
done

if ((!STOP_REQUESTED)); then
    echo "http://127.0.0.1:$HTTP_PORT/" >"$STATE_DIR/ready"
    {
        echo
        echo "visit-counter is up: http://127.0.0.1:$HTTP_PORT/"
        for ((i = 1; i <= REPLICAS; i++)); do
            echo "  web-$i   http://127.0.0.1:$(replica_port "$i")/  pid ${WEB_PID[i]}"
        done
        echo "  nginx   pid $NGINX_PID ($NGINX_BALANCE, rate limit $NGINX_RATE_LIMIT)"
        if [[ -n $REDIS_PID ]]; then
            echo "  redis   127.0.0.1:$REDIS_PORT  pid $REDIS_PID"
        else
            shown=${REDIS_URL#*://}
            echo "  redis   ${REDIS_URL%%://*}://${shown#*@} (given by REDIS_URL, not started here)"
        fi
        echo "  state   $STATE_DIR (logs in logs/, pids in pids/)"
        echo "  stop    Ctrl-C, or: kill $$"
        echo
    }
fi

while ((!STOP_REQUESTED)); do
    supervise run
    tick 0.25
done

log "stopping"
EXIT_STATUS=0
exit 0
