# Helpers for the loopback scripts (scripts/local-stack.sh, scripts/loopback-nginx.sh, bench/run.sh, bench/compare.sh).
# Sourced, with the caller's name for its log lines:  source scripts/lib.sh local-stack
# shellcheck shell=bash
LOG_PREFIX=$1

log() { printf '[%s %(%H:%M:%S)T] %s\n' "$LOG_PREFIX" -1 "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }
check_port() { # NAME VALUE
    if ! is_uint "$2" || (($2 < 1 || $2 > 65535)); then die "$1=$2 is not a port number"; fi
}
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# proc_stat PID: the fields of /proc/PID/stat after the command name (which may hold blanks and
# parentheses) into the array PROC_STAT: [0] the state (Z: a zombie), [11] and [12] the user and
# system CPU time in clock ticks. Fails once PID is gone.
proc_stat() {
    local line
    read -r line <"/proc/$1/stat" 2>/dev/null || return 1
    # shellcheck disable=SC2034 # for the caller
    read -r -a PROC_STAT <<<"${line##*) }"
}
