#!/usr/bin/env bash
# Builds the web and nginx images for linux/amd64 and linux/arm64 and publishes each as ONE tag
# holding both (a manifest list): REGISTRY/visit-counter-web:TAG and .../visit-counter-nginx:TAG,
# the names prod.compose.yaml runs. Run with --help.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: REGISTRY=registry.example.com TAG=1.2.3 scripts/publish-images.sh [PLATFORM...]

Builds and pushes, per platform (default: linux/amd64 linux/arm64), REGISTRY/visit-counter-web
and REGISTRY/visit-counter-nginx as TAG-ARCH, then joins them under TAG with
`docker buildx imagetools create` and lists what TAG holds.

Each platform is its own `docker build --platform`: the engine's default builder (buildx's
`docker` driver, the classic image store) builds one platform at a time. The Maven stages of
web-app/Dockerfile run on this machine's platform either way; only the runtime stages are per
target, under QEMU for the other architecture (docs/production.md, "Platforms"). The image
built for this machine's own platform carries the JVM's AOT cache; a cross-built one has none.

Base images: JDK_IMAGE (the build platform's), and per target JRE_IMAGE_ARCH, NGINX_IMAGE_ARCH,
REDIS_IMAGE_ARCH (ARCH: AMD64 or ARM64), else JRE_IMAGE, NGINX_IMAGE, REDIS_IMAGE, else the
Dockerfiles' pins (official multi-arch images). `scripts/offline-docker.sh env` sets them all.
EOF
}

case "${1:-}" in -h | --help) usage; exit 0 ;; esac
[ -n "${REGISTRY:-}" ] && [ -n "${TAG:-}" ] || { usage >&2; exit 2; }
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
PLATFORMS=("$@")
[ ${#PLATFORMS[@]} -gt 0 ] || PLATFORMS=(linux/amd64 linux/arm64)
WEB=$REGISTRY/visit-counter-web
NGINX=$REGISTRY/visit-counter-nginx

log() { printf 'publish-images: %s\n' "$*" >&2; }

# --build-arg NAME=VALUE for each base image set for ARCH (unset: the Dockerfile's pin).
base_args() {
    local arch=${1^^} name per_arch value
    shift
    for name in "$@"; do
        per_arch=${name}_$arch
        value=${!per_arch:-${!name:-}}
        [ -z "$value" ] || echo "--build-arg=$name=$value"
    done
}

web_refs=() nginx_refs=()
for platform in "${PLATFORMS[@]}"; do
    arch=${platform#linux/}
    started=$SECONDS
    # shellcheck disable=SC2046 # one word per argument
    docker build --quiet --platform "$platform" -f web-app/Dockerfile -t "$WEB:$TAG-$arch" \
        ${JDK_IMAGE:+--build-arg=JDK_IMAGE="$JDK_IMAGE"} $(base_args "$arch" JRE_IMAGE REDIS_IMAGE) . >/dev/null
    # shellcheck disable=SC2046
    docker build --quiet --platform "$platform" -t "$NGINX:$TAG-$arch" $(base_args "$arch" NGINX_IMAGE) nginx >/dev/null
    log "$platform built in $((SECONDS - started)) s"
    docker push --quiet "$WEB:$TAG-$arch" >/dev/null
    docker push --quiet "$NGINX:$TAG-$arch" >/dev/null
    web_refs+=("$WEB:$TAG-$arch")
    nginx_refs+=("$NGINX:$TAG-$arch")
done
docker buildx imagetools create --tag "$WEB:$TAG" "${web_refs[@]}"
docker buildx imagetools create --tag "$NGINX:$TAG" "${nginx_refs[@]}"
for image in "$WEB:$TAG" "$NGINX:$TAG"; do
    log "$image holds: $(docker buildx imagetools inspect --format '{{range .Manifest.Manifests}}{{.Platform.OS}}/{{.Platform.Architecture}} {{end}}' "$image")"
done
