#!/usr/bin/env bash
# A Docker engine and the stack's base images on a Debian machine that reaches Debian's package
# mirror but no image registry (CI here; an air-gapped host). Run with --help.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: scripts/offline-docker.sh COMMAND

  install   install Docker Engine, the Compose v2 plugin and buildx from Debian's `trixie`
            suite (beside this machine's own suite, which stays the default), mmdebstrap, and
            trixie's qemu-user-static, registered with binfmt_misc for the other architecture
            (amd64 <-> arm64: the multi-arch build and its test), unless already there
  start     start dockerd unless an engine already answers; its pid goes to STATE_DIR
  stop      stop the dockerd that `start` started (nothing else)
  images    build the stand-in base images from Debian's packages (mmdebstrap + docker build),
            for this machine's architecture and the runtime ones (jre, nginx, redis) for the
            other; an image whose definition has not changed is kept, so a second run takes
            seconds
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
# The images support two platforms (docs/production.md, "Platforms"). The stand-ins are built
# for this machine's architecture (NATIVE_ARCH) and, for the runtime stages only, for the other
# one (FOREIGN_ARCH): the JDK stages of web-app/Dockerfile run on the build platform.
NATIVE_ARCH=$(dpkg --print-architecture 2>/dev/null || echo amd64)
case "$NATIVE_ARCH" in
    amd64) FOREIGN_ARCH=arm64 ;;
    arm64) FOREIGN_ARCH=amd64 ;;
    *) FOREIGN_ARCH="" ;;
esac
FOREIGN_STANDINS="jre nginx redis"
# What a foreign root file system holds besides each stand-in's packages: the Essential set (as
# minbase) and passwd (groupadd, useradd, usermod for the Dockerfiles; not Essential in trixie).
FOREIGN_BASE=("?essential" passwd)
# QEMU's name for an architecture (binfmt_misc's qemu-<name> entry).
qemu_name() { case "$1" in amd64) echo x86_64 ;; arm64) echo aarch64 ;; esac; }

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
        && docker buildx version >/dev/null 2>&1 && command -v mmdebstrap >/dev/null \
        && { [ -z "$FOREIGN_ARCH" ] || [ -e "/usr/lib/binfmt.d/qemu-$(qemu_name "$FOREIGN_ARCH").conf" ]; }; then
        log "engine, compose, buildx, mmdebstrap and qemu-user-static already installed"
        # An earlier install of this script may have added trixie without the pin below.
        [ ! -f "$TRIXIE_SOURCES" ] || pin_trixie
        register_binfmt
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
    # qemu-user-static from trixie (QEMU 10): bookworm's QEMU 7.2 does not run the JVM reliably.
    apt-get install -y -qq --no-install-recommends \
        docker.io/trixie docker-cli/trixie docker-compose/trixie docker-buildx/trixie \
        mmdebstrap ca-certificates qemu-user-static/trixie >/dev/null
    log "installed: $(dockerd --version)"
    register_binfmt
}

# Runs the other architecture's binaries through QEMU, in containers too: trixie's
# qemu-user-static ships systemd-binfmt files (/usr/lib/binfmt.d) with flag F (the interpreter
# is opened at registration, so it works inside any container's root). No systemd needed: the
# entry is written to the kernel as systemd-binfmt would.
register_binfmt() {
    [ -n "$FOREIGN_ARCH" ] || return 0
    local name conf
    name=qemu-$(qemu_name "$FOREIGN_ARCH")
    conf=/usr/lib/binfmt.d/$name.conf
    [ -f "$conf" ] || die "no $conf: run '$0 install'"
    mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
    if [ ! -e "/proc/sys/fs/binfmt_misc/$name" ]; then
        grep -v '^#' "$conf" >/proc/sys/fs/binfmt_misc/register
    fi
    grep -q '^flags: .*F' "/proc/sys/fs/binfmt_misc/$name" || die "$name is registered without flag F"
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

# The version of PACKAGE that apt would install from SUITE, for the image tag. awk reads to the
# end: exiting early would kill tar with SIGPIPE, and pipefail the script.
package_version() {
    local rootfs_tar=$1 package=$2
    tar -xOf "$rootfs_tar" ./var/lib/dpkg/status 2>/dev/null \
        | awk -v p="$package" '$1=="Package:"{hit=($2==p)} hit && $1=="Version:" && !v{v=$2} END{print v}'
}

# build_standin ARCH NAME SUITE PACKAGE...: one stand-in for one architecture.
# NATIVE_ARCH: $PREFIX/NAME:latest (also tagged :ARCH), a minbase root file system whose
# maintainer scripts ran as usual. FOREIGN_ARCH: $PREFIX/NAME:ARCH, from the same packages with
# no emulated package installation (that took half an hour of QEMU for three images): mmdebstrap
# only unpacks them (--variant=extract), foreign-configure.sh does from the host what the images
# rely on from their maintainer scripts, and the Dockerfile's few RUN steps are the only code
# run under emulation.
build_standin() {
    local arch=$1 name=$2 suite=$3
    shift 3
    local packages=("$@")
    local dir=$IMAGES_DIR/$name foreign=""
    [ "$arch" = "$NATIVE_ARCH" ] || foreign=1
    # The definition: the package list, the Dockerfile and the files beside it, and the host's CA
    # certificates (copied into the images, see README); for a foreign architecture, also the
    # architecture and foreign-configure.sh. A change to any rebuilds the image.
    local digest
    # Paths relative to each directory: the same definition gives the same digest in any clone.
    digest=$( {
        echo "$suite ${packages[*]}"
        for tree in "$dir" "$CA_DIR"; do
            if [ -d "$tree" ]; then (cd "$tree" && find . -type f -print0 | sort -z | xargs -0 -r sha256sum); fi
        done
        if [ -n "$foreign" ]; then echo "$arch ${FOREIGN_BASE[*]}"; (cd "$IMAGES_DIR" && sha256sum foreign-configure.sh); fi
    } | sha256sum | cut -c1-16)
    local image=$PREFIX/$name:latest
    [ -z "$foreign" ] || image=$PREFIX/$name:$arch
    if [ "$(docker image inspect -f '{{ index .Config.Labels "org.example.standin.digest" }}' "$image" 2>/dev/null)" = "$digest" ]; then
        log "$image is up to date"
        [ -n "$foreign" ] || docker tag "$image" "$PREFIX/$name:$arch"
        return
    fi
    local mirror work
    mirror=$(debian_mirror)
    work=$(mktemp -d)
    # shellcheck disable=SC2064 # expand now: the directory of this call
    trap "rm -rf '$work'" RETURN
    log "$name ($arch): root file system from Debian $suite (${packages[*]})"
    local aptopts=()
    # sid's Release file is often past its Valid-Until on mirrors and snapshots.
    [ "$suite" = sid ] && aptopts=(--aptopt='Acquire::Check-Valid-Until "false"')
    local mode=(--variant=minbase) hooks=()
    # The hooks are shell commands that mmdebstrap runs with $1, the new root: single quotes on purpose.
    # shellcheck disable=SC2016
    if [ -n "$foreign" ]; then
        # The Essential set (what minbase installs) and the packages, unpacked only, then set up
        # from the host. (These stand-ins only run the app: no downloads, so no host CAs.)
        mode=(--arch="$arch" --variant=extract)
        local base
        for base in "${FOREIGN_BASE[@]}"; do mode+=(--include="$base"); done
        # (The extract variant runs extract hooks only; it cleans the apt cache itself.)
        hooks=(--extract-hook="sh '$IMAGES_DIR/foreign-configure.sh' \"\$1\" $arch")
    else
        # The host's CA certificates: builds download (Maven) through whatever TLS setup this host has.
        hooks=(--customize-hook="mkdir -p \"\$1/usr/local/share/ca-certificates\"; if [ -d '$CA_DIR' ]; then cp -a '$CA_DIR/.' \"\$1/usr/local/share/ca-certificates/\"; fi"
            --customize-hook='if [ -x "$1/usr/sbin/update-ca-certificates" ]; then chroot "$1" update-ca-certificates >/dev/null; fi')
    fi
    mmdebstrap --quiet "${mode[@]}" --include="$(IFS=,; echo "${packages[*]}")" "${aptopts[@]}" \
        "${hooks[@]}" \
        --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
        "$suite" "$work/rootfs.tar" "$mirror"
    local rootfs=$PREFIX/rootfs-$name:$arch-$digest
    docker import --platform "linux/$arch" "$work/rootfs.tar" "$rootfs" >/dev/null
    local version
    version=$(package_version "$work/rootfs.tar" "${packages[0]}")
    docker build --quiet --platform "linux/$arch" --build-arg ROOTFS="$rootfs" \
        --label org.example.standin.digest="$digest" \
        --label org.example.standin.package="${packages[0]}=$version" \
        -t "$image" "$dir" >/dev/null
    [ -n "$foreign" ] || docker tag "$image" "$PREFIX/$name:$arch"
    docker image rm "$rootfs" >/dev/null
    log "$image built (${packages[0]} $version, $arch)"
}

cmd_images() {
    engine_answers || die "no Docker engine answers: run '$0 start' first"
    command -v mmdebstrap >/dev/null || die "no mmdebstrap: run '$0 install' first"
    local entry started
    for entry in "${STANDINS[@]}"; do
        # shellcheck disable=SC2086 # the entry is words
        build_standin "$NATIVE_ARCH" $entry
    done
    [ -n "$FOREIGN_ARCH" ] || return 0
    register_binfmt
    started=$SECONDS
    for entry in "${STANDINS[@]}"; do
        case " $FOREIGN_STANDINS " in
            # shellcheck disable=SC2086 # the entry is words
            *" ${entry%% *} "*) build_standin "$FOREIGN_ARCH" $entry ;;
        esac
    done
    log "$FOREIGN_ARCH stand-ins: $((SECONDS - started)) s"
}

# The stand-ins for the build, and Testcontainers set for this local engine: no Ryuk (its image
# would come from Docker Hub; every test removes what it starts), and containers reached on
# loopback, where the tests publish their ports (on a host that is itself a container,
# Testcontainers would otherwise use the bridge's gateway address).
# The per-architecture names (JRE_IMAGE_ARM64, ...) are for scripts/publish-images.sh, which
# builds each platform on its own base: an official image is one multi-arch name, a stand-in is
# one image per architecture.
cmd_env() {
    local arch name
    for arch in amd64 arm64; do
        for name in JRE NGINX REDIS; do
            echo "export ${name}_IMAGE_${arch^^}=$PREFIX/${name,,}:$arch"
        done
    done
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
