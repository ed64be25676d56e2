#!/bin/sh
# The dev image's command (web-app/Dockerfile, stage `dev`): compile the synced sources with
# javac, run them with JDWP, and whenever `compose watch` syncs a change, compile again while the
# running JVM keeps serving, then replace that JVM.
#
# The replicas share a volume (dev.compose.yaml) for two things:
# - the compiled classes: one replica compiles a given set of sources, the others use its
#   output (three javac runs at once would take three times the CPU);
# - their turns: a replica replaces its JVM only while it holds a lock, so at most one is down
#   at a time, nginx always has replicas to fail over to, and a refreshing browser never sees a
#   502 (Compose's own sync+restart restarts every replica of a service at the same moment).
# A change that does not compile leaves the running JVMs alone and prints javac's errors.
set -eu

src=/app/src/main
shared=${DEV_SHARED_DIR:-/run/dev-shared}
release=$(cat /app/java-release)
classes=""
app_pid=""

log() { echo "dev-run: $*"; }

# Names and contents of every file under a directory: Compose's sync keeps the host's
# modification times, so a time stamp could miss a file saved just before the last round.
fingerprint() { find "$1" -type f -exec cksum {} + 2>/dev/null | sort | cksum | cut -d' ' -f1; }

# Sets $classes to the classes of the current Java sources, compiling them unless another
# replica already has (a whole new directory each time: a deleted source leaves no stale class).
compile() {
    out=$shared/classes-$(fingerprint "$src/java")
    exec 8>"$shared/compile.lock"
    flock 8
    if [ -f "$out.failed" ]; then
        log "these sources do not compile (javac's errors are in the log of the replica that compiled them)"
    elif [ ! -d "$out" ]; then
        find "$src/java" -name '*.java' >/tmp/sources.txt
        log "compiling $(wc -l </tmp/sources.txt) source files (--release $release)"
        rm -rf "$out.tmp"
        mkdir -p "$out.tmp"
        if javac --release "$release" -encoding UTF-8 -g -proc:none \
            -d "$out.tmp" -cp '/app/lib/*' @/tmp/sources.txt; then
            mv "$out.tmp" "$out"
            # Keep the five newest: a replica may still run from an older one. (Our own names:
            # classes-DIGITS, no blanks; the ones with a dot are markers.)
            # shellcheck disable=SC2010
            ls -1dt "$shared"/classes-* 2>/dev/null | grep -v '\.' | tail -n +6 | xargs rm -rf
        else
            rm -rf "$out.tmp"
            touch "$out.failed"
            log "javac failed: the running app is unchanged; save a fix to try again"
        fi
    fi
    flock -u 8
    exec 8>&-
    [ -d "$out" ] || return 1
    classes=$out
}

# $src/resources on the class path (not a copy): the Lua script and logging config are the
# synced ones. STATIC_DIR (/app/static) serves the synced assets without any restart.
start_app() {
    java @/app/jvm.options -XX:TieredStopAtLevel=1 \
        -agentlib:jdwp=transport=dt_socket,server=y,suspend=n,address=*:5005 \
        -cp "$classes:$src/resources:/app/lib/*" org.example.visitcounter.Main &
    app_pid=$!
}

stop_app() {
    [ -n "$app_pid" ] || return 0
    kill -TERM "$app_pid" 2>/dev/null || true
    wait "$app_pid" 2>/dev/null || true
    app_pid=""
}

# Serving HTTP (liveness, not readiness: a Redis outage must not hold the other replicas' turn).
await_serving() {
    deadline=$(($(date +%s) + 60))
    until wget -q -T 1 -O /dev/null "http://127.0.0.1:${PORT:-8080}/healthz" 2>/dev/null; do
        if ! kill -0 "$app_pid" 2>/dev/null || [ "$(date +%s)" -ge "$deadline" ]; then
            log "the new app is not serving; see its log above"
            return 0
        fi
        sleep 0.1
    done
}

# nginx skips a replica that refused a connection for fail_timeout (5 s, nginx/upstream.conf.
# template), counted from its last refusal, so a replica that was down for D seconds is skipped
# until D + 5 s after it stopped. Keeping the turn until (D + 5) / 2 s after this one stopped
# means at most two replicas are skipped at any moment: the third serves.
NGINX_FAIL_TIMEOUT_MS=5000
# Milliseconds since boot, from /proc/uptime (busybox's date may lack %N).
now_ms() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }
hold_turn() {
    down_ms=$(($(now_ms) - $1))
    wait_ms=$(((NGINX_FAIL_TIMEOUT_MS - down_ms) / 2))
    if [ "$wait_ms" -gt 0 ]; then
        sleep "$(printf '%d.%03d' $((wait_ms / 1000)) $((wait_ms % 1000)))"
    fi
}

trap 'stop_app; exit 0' TERM INT

seen=$(fingerprint "$src")
if compile; then
    start_app
fi

while true; do
    sleep 0.5
    now=$(fingerprint "$src")
    [ "$now" != "$seen" ] || continue
    # One sync can copy several files: wait until the tree stops changing.
    while sleep 0.2 && [ "$(fingerprint "$src")" != "$now" ]; do now=$(fingerprint "$src"); done
    # What is compiled now is `seen`: a save during the compilation triggers another round.
    seen=$now
    log "change detected"
    compile || continue
    exec 9>"$shared/restart.lock"
    flock 9
    log "replacing the JVM (this replica's turn)"
    stopped=$(now_ms)
    stop_app
    start_app
    await_serving
    hold_turn "$stopped"
    flock -u 9
    exec 9>&-
done
