#!/usr/bin/env bash
# Builds one of the benchmark's other stacks' replicas, if missing or older than its sources, and
# prints the scripts/local-stack.sh setting (VAR=value, one line) that runs it as the replicas:
#   floor        bench/FloorApp.java (Javalin + Jedis, one INCR): WEB_APP_JAR=..., so it runs with
#                the replicas' JVM flags; needs web-app/target/web-app.jar (its lib/)
#   spring-boot  bench/peers/spring-boot (Boot 4, Tomcat, Spring Data Redis on Lettuce), built
#                with Maven; run as `java -jar`, with the JVM's defaults, as a user would
#   express      bench/peers/express (Express 5, node-redis), installed with npm ci; run with node
# Used by bench/run.sh and bench/compare.sh (PEER=name). Logs go to stderr.
#
#   bench/peers/build.sh spring-boot
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
JAVA_HOME=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh" peers
(($# == 1)) || die "usage: bench/peers/build.sh floor|spring-boot|express"
stale() { [[ ! -e $1 ]] || [[ -n $(find "${@:2}" -newer "$1" -print -quit) ]]; } # TARGET SOURCE...

case $1 in
    floor)
        jar=$ROOT/web-app/target/floor-app.jar # beside web-app.jar, whose manifest's class path (lib/) it shares
        [[ -f $ROOT/web-app/target/web-app.jar ]] || die "no web-app/target/web-app.jar: ./mvnw -B -DskipTests package"
        if stale "$jar" "$ROOT/bench/FloorApp.java" "$ROOT/web-app/target/web-app.jar"; then
            log "building the floor (bench/FloorApp.java)"
            classes=$ROOT/web-app/target/floor-classes
            rm -rf "$classes"
            "$JAVA_HOME/bin/javac" -d "$classes" -cp "$ROOT/web-app/target/lib/*" "$ROOT/bench/FloorApp.java"
            unzip -p "$ROOT/web-app/target/web-app.jar" META-INF/MANIFEST.MF | tr -d '\r' |
                awk '/^Class-Path:/ { on = 1; print; next } on && /^ / { print; next } { on = 0 }' >"$classes.mf"
            "$JAVA_HOME/bin/jar" --create --file "$jar" --main-class FloorApp --manifest "$classes.mf" -C "$classes" .
        fi
        echo "WEB_APP_JAR=$jar"
        ;;
    spring-boot)
        dir=$ROOT/bench/peers/spring-boot
        if stale "$dir/target/spring-boot-peer.jar" "$dir/pom.xml" "$dir/src"; then
            log "building the Spring Boot peer (bench/peers/spring-boot, Maven)"
            (cd "$ROOT" && JAVA_HOME=$JAVA_HOME ./mvnw -B -q -f "$dir/pom.xml" -DskipTests package) >&2
        fi
        echo "REPLICA_COMMAND=$JAVA_HOME/bin/java -jar $dir/target/spring-boot-peer.jar"
        ;;
    express)
        dir=$ROOT/bench/peers/express
        command -v node >/dev/null || die "node not found (apt-get install nodejs npm)"
        if stale "$dir/node_modules/.package-lock.json" "$dir/package-lock.json"; then
            log "installing the Express peer (bench/peers/express, npm ci)"
            (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) >&2
        fi
        echo "REPLICA_COMMAND=node $dir/server.js"
        ;;
    *) die "$1: expected floor, spring-boot or express" ;;
esac
