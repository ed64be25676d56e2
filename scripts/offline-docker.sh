#!/usr/bin/env bash
# A Docker engine and the stack's base images on a Debian machine that reaches Debian's package
# mirror but no image registry (CI here; an air-gapped host). Run with --help.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: scripts/offline-docker.sh COMMAND

  install   install Docker Engine, the Compose v2 plugin and buildx from Debian's `trixie`
            suite (beside this machine's own suite, which stays the default) and mmdebstrap,
            unless `docker compose` and `dockerd` are already there
  start     start dockerd unless an engine already answers; its pid goes to STATE_DIR
  stop      stop the dockerd that `start` started (nothing else)
  images    build the stand-in base images from Debian's packages (mmdebstrap + docker build);
            an image whose definition has not changed is kept, so a second run takes seconds
  env       print the settings that point the build at the stand-ins, for `eval`
  all       install, start, images

`eval "$(scripts/offline-docker.sh env)"` then makes `docker compose up --build` and the tests
use the stand-ins instead of Docker Hub's images. What the stand-ins are and how they differ
from the official images: scripts/offline-images/README.md.

Environment: STATE_DIR (/var/tmp/visit-counter-docker: dockerd's pid and log),
DEBIAN_MIRROR (the URI of this machine's own Debian source).
EOF
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
IMAGES_DIR=$ROOT/scripts/offline-images
STATE_DIR=${STATE_DIR:-/var/tmp/visit-counter-docker}
# The stand-ins' names: a registry host under the reserved .invalid domain, so that a missing
# stand-in fails at once instead of being pulled from anywhere, and no official name is re-tagged.
PREFIX=offline.invalid/visit-counter
# Local CA certificates of this host (Debian's place for them), trusted inside the stand-ins too.
CA_DIR=/usr/local/share/ca-certificates
# name  Debian suite  packages in the root file system
STANDINS=(
    "jdk trixie openjdk-25-jdk-headless ca-certificates wget unzip busybox util-linux"
    "jre trixie openjdk-25-jre-headless busybox util-linux"
    "nginx sid nginx gettext-base busybox"
    "redis trixie redis-server redis-tools util-linux"
)

log() { printf 'offline-docker: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

debian_mirror() {
    if [ -n "${DEBIAN_MIRROR:-}" ]; then
        echo "$DEBIAN_MIRROR"
        return
    fi
    # The first deb822 or one-line source of the distribution (not -security, not a third party).
    local uri
    uri=$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
        | grep -v security | grep -oE 'https?://[^ ]+/debian/?' | head -1)
    [ -n "$uri" ] || die "no Debian mirror found in /etc/apt: set DEBIAN_MIRROR"
    echo "${uri%/}"
}

TRIXIE_SOURCES=/etc/apt/sources.list.d/visit-counter-trixie.sources

# Default-Release favours the suite itself, not its -security and -updates suites: a package
# updated there (redis-server, jq) would otherwise tie with trixie at 500 and lose to its newer
# version, and a later `apt-get install` of it would fail on trixie's libc. Priority 100, as
# for backports: trixie only where a package is asked for as PKG/trixie.
pin_trixie() {
    printf 'Package: *\nPin: release n=trixie\nPin-Priority: 100\n' >/etc/apt/preferences.d/visit-counter-trixie
}

cmd_install() {
    if command -v dockerd >/dev/null && docker compose version >/dev/null 2>&1 \
        && docker buildx version >/dev/null 2>&1 && command -v mmdebstrap >/dev/null; then
        log "engine, compose, buildx and mmdebstrap already installed"
        # An earlier install of this script may have added trixie without the pin below.
        [ ! -f "$TRIXIE_SOURCES" ] || pin_trixie
        return
    fi
    local mirror
    mirror=$(debian_mirror)
    . /etc/os-release
    # trixie beside the machine's own suite, which stays the default release: only the packages
    # named /trixie below come from it; their dependencies come from the default where they can.
    if [ "${VERSION_CODENAME:-}" != trixie ]; then
        cat >"$TRIXIE_SOURCES" <<EOF
Types: deb
URIs: $mirror
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
        echo "APT::Default-Release \"${VERSION_CODENAME}\";" >/etc/apt/apt.conf.d/99visit-counter-default-release
        pin_trixie
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends \
        docker.io/trixie docker-cli/trixie docker-compose/trixie docker-buildx/trixie \
        mmdebstrap ca-certificates >/dev/null
    log "installed: $(dockerd --version)"
}

engine_answers() { timeout 10 docker info >/dev/null 2>&1; }

cmd_start() {
    if engine_answers; then
        log "a Docker engine already answers; not starting another"
        return
    fi
    command -v dockerd >/dev/null || die "no dockerd: run '$0 install' first"
    mkdir -p "$STATE_DIR"
    # setsid: dockerd outlives this script and ignores the caller's terminal signals; `stop`
    # ends it by the pid written here.
    setsid dockerd >"$STATE_DIR/dockerd.log" 2>&1 </dev/null &
    echo $! >"$STATE_DIR/dockerd.pid"
    local deadline=$((SECONDS + 60))
    until engine_answers; do
        if ! kill -0 "$(cat "$STATE_DIR/dockerd.pid")" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
            tail -20 "$STATE_DIR/dockerd.log" >&2
            die "dockerd did not come up (log: $STATE_DIR/dockerd.log)"
        fi
        sleep 0.2
    done
    log "dockerd started (pid $(cat "$STATE_DIR/dockerd.pid"), log $STATE_DIR/dockerd.log)"
}

cmd_stop() {
    local pidfile=$STATE_DIR/dockerd.pid pid
    if [ ! -f "$pidfile" ]; then
        log "no dockerd started by this script"
        return
    fi
    pid=$(cat "$pidfile")
    # Only that dockerd: a pid left from an earlier boot may belong to something else by now.
    if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ]; then
        kill -TERM "$pid"
        local deadline=$((SECONDS + 30))
        while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
        log "dockerd (pid $pid) stopped"
    fi
    rm -f "$pidfile"
}

# The version of PACKAGE that apt would install from SUITE, for the image tag.
package_version() {
    local rootfs_tar=$1 package=$2
    tar -xOf "$rootfs_tar" ./var/lib/dpkg/status 2>/dev/null \
        | awk -v p="$package" '$1=="Package:"{hit=($2==p)} hit && $1=="Version:"{print $2; exit}'
}

build_standin() {
    local name=$1 suite=$2
    shift 2
    local packages=("$@")
    local dir=$IMAGES_DIR/$name
    # The definition: the package list, the Dockerfile and the files beside it, and the host's CA
    # certificates (copied into the images, see README). A change to any rebuilds the image.
    local digest
    # Paths relative to each directory: the same definition gives the same digest in any clone.
    digest=$( {
        echo "$suite ${packages[*]}"
        for tree in "$dir" "$CA_DIR"; do
            if [ -d "$tree" ]; then (cd "$tree" && find . -type f -print0 | sort -z | xargs -0 -r sha256sum); fi
        done
    } | sha256sum | cut -c1-16)
    local image=$PREFIX/$name:latest
    if [ "$(docker image inspect -f '{{ index .Config.Labels "org.example.standin.digest" }}' "$image" 2>/dev/null)" = "$digest" ]; then
        log "$image is up to date"
        return
    fi
    local mirror work
    mirror=$(debian_mirror)
    work=$(mktemp -d)
    # shellcheck disable=SC2064 # expand now: the directory of this call
    trap "rm -rf '$work'" RETURN
    log "$name: root file system from Debian $suite (${packages[*]})"
    local aptopts=()
    # sid's Release file is often past its Valid-Until on mirrors and snapshots.
    [ "$suite" = sid ] && aptopts=(--aptopt='Acquire::Check-Valid-Until "false"')
    # The host's CA certificates: builds download (Maven) through whatever TLS setup this host has.
    # The hooks are shell commands that mmdebstrap runs with $1, the new root: single quotes on purpose.
    # shellcheck disable=SC2016
    mmdebstrap --quiet --variant=minbase --include="$(IFS=,; echo "${packages[*]}")" "${aptopts[@]}" \
        --customize-hook="mkdir -p \"\$1/usr/local/share/ca-certificates\"; if [ -d '$CA_DIR' ]; then cp -a '$CA_DIR/.' \"\$1/usr/local/share/ca-certificates/\"; fi" \
        --customize-hook='if [ -x "$1/usr/sbin/update-ca-certificates" ]; then chroot "$1" update-ca-certificates >/dev/null; fi' \
        --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
        "$suite" "$work/rootfs.tar" "$mirror"
    local rootfs=$PREFIX/rootfs-$name:$digest
    docker import "$work/rootfs.tar" "$rootfs" >/dev/null
    local version
    version=$(package_version "$work/rootfs.tar" "${packages[0]}")
    docker build --quiet --build-arg ROOTFS="$rootfs" --label org.example.standin.digest="$digest" \
        --label org.example.standin.package="${packages[0]}=$version" \
        -t "$image" "$dir" >/dev/null
    docker image rm "$rootfs" >/dev/null
    log "$image built (${packages[0]} $version)"
}

cmd_images() {
    engine_answers || die "no Docker engine answers: run '$0 start' first"
    command -v mmdebstrap >/dev/null || die "no mmdebstrap: run '$0 install' first"
    local entry
    for entry in "${STANDINS[@]}"; do
        # shellcheck disable=SC2086 # the entry is words
        build_standin $entry
    done
}

# The stand-ins for the build, and Testcontainers set for this local engine: no Ryuk (its image
# would come from Docker Hub; every test removes what it starts), and containers reached on
# loopback, where the tests publish their ports (on a host that is itself a container,
# Testcontainers would otherwise use the bridge's gateway address).
cmd_env() {
    cat <<EOF
export JDK_IMAGE=$PREFIX/jdk:latest
export JRE_IMAGE=$PREFIX/jre:latest
export NGINX_IMAGE=$PREFIX/nginx:latest
export REDIS_IMAGE=$PREFIX/redis:latest
export TESTCONTAINERS_RYUK_DISABLED=true
export TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1
EOF
}

case "${1:-}" in
    install) cmd_install ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    images) cmd_images ;;
    env) cmd_env ;;
    all) cmd_install; cmd_start; cmd_images ;;
    -h | --help) usage ;;
    *) usage >&2; exit 2 ;;
esac
