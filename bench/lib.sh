# The benchmark's helpers, sourced by bench/run.sh and bench/compare.sh: stacks started through
# scripts/local-stack.sh, wrk runs, and the CPU each process group spends per request.
# The caller sets ROOT, WORK, BASE_PORT, JAVA_HOME, THREADS, CONNECTIONS and CLK_TCK, sources
# scripts/lib.sh first, and calls stop_stacks on exit.
# shellcheck shell=bash disable=SC2034,SC2154 # run_wrk sets its W_* and C_* for the caller, by eval

declare -A STACK_PID=()
SAMPLER_PID=
WRK_SEQ=0

# start_stack NAME PORT_OFFSET [VAR=value...]: scripts/local-stack.sh in the background, from
# STACK_CHECKOUT (another checkout of the project, to compare with) when set, else from ROOT.
start_stack() {
    local name=$1 base=$((BASE_PORT + $2)) deadline
    shift 2
    mkdir -p "$WORK/$name"
    # Three replicas whatever the caller's environment says: the ceilings and the tables assume it.
    env REPLICAS=3 HTTP_PORT="$base" REDIS_PORT="$((base + 1))" WEB_BASE_PORT="$((base + 2))" \
        STATE_DIR="$WORK/$name/state" JAVA_HOME="$JAVA_HOME" "$@" \
        "${STACK_CHECKOUT:-$ROOT}/scripts/local-stack.sh" >"$WORK/$name/local-stack.log" 2>&1 &
    STACK_PID[$name]=$!
    deadline=$((SECONDS + 120))
    until [[ -f $WORK/$name/state/ready ]]; do
        kill -0 "${STACK_PID[$name]}" 2>/dev/null || { cat "$WORK/$name/local-stack.log" >&2; die "stack $name did not start"; }
        ((SECONDS < deadline)) || die "stack $name not ready within 120 s"
        sleep 0.1
    done
}
stop_stack() {
    local pid=${STACK_PID[$1]:-}
    [[ -n $pid ]] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    unset "STACK_PID[$1]"
}
url() { echo "http://127.0.0.1:$((BASE_PORT + $1))/"; }
stack_pids() { # NAME GROUP: the pids of one process group of a stack (nginx: master and workers)
    local dir=$WORK/$1/state/pids i
    case $2 in
        nginx) cat "$dir/nginx"; pgrep -P "$(cat "$dir/nginx")" || true ;;
        replicas) for i in 1 2 3; do cat "$dir/web-$i"; done ;;
        redis) cat "$dir/redis" ;;
    esac
}
upstream_conns() { # PORT_OFFSET: nginx's connections to the stack's three replicas, one line each
    local web=$((BASE_PORT + $1 + 2))
    ss -Htn state established "( dport = :$web or dport = :$((web + 1)) or dport = :$((web + 2)) )" |
        awk '{ print $3 }' | sort
}
ticks() { # PID...: user+system CPU ticks used so far
    local pid total=0
    for pid in "$@"; do
        proc_stat "$pid" || continue
        total=$((total + PROC_STAT[11] + PROC_STAT[12]))
    done
    echo "$total"
}

# run_wrk NAME URL SECONDS [GROUP:PIDS...]: one wrk run; sets W_* from its report and C_<group>
# to the CPU microseconds per request each listed process group used during the run.
run_wrk() {
    local name=$1 target=$2 secs=$3 out cpu_file group before=() after=() i=0
    shift 3
    out=$WORK/$name/wrk-$((++WRK_SEQ)).txt
    cpu_file=$out.cpu
    for group in "$@"; do before+=("$(ticks ${group#*:})"); done
    { TIMEFORMAT='%3U %3S'; time wrk -t"$THREADS" -c"$CONNECTIONS" -d"${secs}s" --timeout 10s \
        -s "$ROOT/bench/wrk-report.lua" "$target" >"$out"; } 2>"$cpu_file"
    for group in "$@"; do after+=("$(ticks ${group#*:})"); done
    eval "$(sed -n 's/^WRK //p' "$out" | tr ' ' '\n' | sed -n 's/^\([a-z0-9_]*\)=\([0-9]*\)$/W_\1=\2/p')"
    W_rps=$(awk -v r="$W_requests" -v d="$W_duration_us" 'BEGIN { printf "%.0f", r / (d / 1e6) }')
    W_ok=$((W_requests - W_non2xx))
    W_errors=$((W_non2xx + W_connect + W_read + W_write + W_timeout))
    C_wrk=$(awk -v u="$(cut -d' ' -f1 "$cpu_file")" -v s="$(cut -d' ' -f2 "$cpu_file")" -v n="$W_requests" \
        'BEGIN { printf "%.0f", (u + s) * 1e6 / n }')
    for group in "$@"; do
        printf -v "C_${group%%:*}" '%s' "$(awk -v t="$((after[i] - before[i]))" -v hz="$CLK_TCK" -v n="$W_requests" \
            'BEGIN { printf "%.0f", t * 1e6 / hz / n }')"
        i=$((i + 1))
    done
}

# load_stack NAME PORT_OFFSET SECONDS: run_wrk on a stack, with the CPU of its nginx, replicas
# and Redis (C_nginx, C_replicas, C_redis).
load_stack() {
    run_wrk "$1" "$(url "$2")" "$3" "nginx:$(stack_pids "$1" nginx | tr '\n' ' ')" \
        "replicas:$(stack_pids "$1" replicas | tr '\n' ' ')" "redis:$(stack_pids "$1" redis)"
}
ms() { awk -v v="$1" 'BEGIN { printf "%.2f", v / 1000 }'; } # µs (wrk's latencies) to ms
rss_mib() { awk '/^VmRSS:/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; } # PID: its resident size

stop_stacks() { # every stack still running, and the connection sampler
    local name
    [[ -z $SAMPLER_PID ]] || kill "$SAMPLER_PID" 2>/dev/null || true
    for name in "${!STACK_PID[@]}"; do stop_stack "$name"; done
}

# Full collections a stack's replicas logged so far; the stack must have been started with
# JAVA_OPTS="... -Xlog:gc:file=$WORK/NAME/gc/gc-%p.log".
full_gcs() { cat "$WORK/$1"/gc/gc-*.log 2>/dev/null | grep -c 'Pause Full' || true; }

# nginx's connections to a stack's replicas, sampled every 0.5 s while it is loaded: those seen
# and gone by the end were closed under load (each new one costs a replica a parser and buffers
# that get promoted: nginx/upstream-shared.conf).
conns_sampler_start() { # PORT_OFFSET FILE
    while :; do upstream_conns "$1"; sleep 0.5; done >"$2" &
    SAMPLER_PID=$!
}
conns_sampler_stop() { # PORT_OFFSET FILE: prints how many of the sampled connections are gone
    kill "$SAMPLER_PID"
    wait "$SAMPLER_PID" 2>/dev/null || true
    SAMPLER_PID=
    comm -23 <(sort -u "$2") <(upstream_conns "$1") | grep -c . || true
}
