#!/usr/bin/env bash
# The production stack for Docker Swarm, derived from the compose files. Run with --help.
#
# `docker stack deploy -c compose.yaml -c prod.compose.yaml` does not work: the stack loader
# validates each file against the older v3 schema (compose.yaml's top-level `name` and long-form
# `depends_on` fail, so does the `cpus` number in Compose's output), it merges `ports` by published
# port instead of honouring `!override`, and it silently drops the service-level `tmpfs` that the
# read-only containers need. So this script lets Compose do the merge (`docker compose config`,
# with `!override`, `!reset`, anchors and interpolation as `up` would see them) and rewrites only
# what the stack loader cannot take. Every setting Swarm can apply comes from the compose files;
# nothing of prod.compose.yaml is restated here.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: scripts/swarm-stack.sh [-f FILE]... config
       scripts/swarm-stack.sh [-f FILE]... deploy STACK [DOCKER-STACK-DEPLOY-OPTION]...

  config   print the stack file (JSON, which the stack loader reads as YAML) on standard output
  deploy   docker stack deploy it as STACK; further options go to `docker stack deploy`
           (e.g. --resolve-image never where no registry is reachable)

  -f FILE  a further Compose file merged after compose.yaml and prod.compose.yaml (e.g. the
           secret taken from elsewhere); may be repeated

The merge is `docker compose -f compose.yaml -f prod.compose.yaml [-f FILE]... config`, in the
caller's environment (REGISTRY, TAG, HTTP_PORT, REDIS_APPENDFSYNC, .env). Needs jq, the Compose v2
plugin (2.24+) and a docker CLI 25.0+ (stack file format 3.12); deploy needs a swarm manager.
EOF
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
files=(-f "$ROOT/compose.yaml" -f "$ROOT/prod.compose.yaml")
while [ $# -gt 0 ]; do
    case "$1" in
        -f) [ $# -ge 2 ] || { usage >&2; exit 2; }; files+=(-f "$2"); shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) break ;;
    esac
done

stack_file() {
    docker compose --project-directory "$ROOT" "${files[@]}" config --format json | jq '
        # "16m" -> bytes, as Docker reads tmpfs sizes (binary units).
        def bytes: ascii_downcase | capture("^(?<n>[0-9]+) ?(?<u>[kmgt]?)i?b?$")
            // error("tmpfs size \(.) is not a number of bytes with k, m, g or t")
            | (.n | tonumber) * pow(1024; {"": 0, k: 1, m: 2, g: 3, t: 4}[.u]);

        # Compose names networks, volumes and secrets "<project>_<key>". In a stack file an
        # explicit name escapes the stack namespace (two stacks would share one network), so
        # drop the names Compose made up and let Swarm prefix STACK_; keep any name a file set.
        def unname($project): with_entries(
            if .value.name == "\($project)_\(.key)" then .value |= del(.name) else . end);

        # One entry of a service-level tmpfs list ("/path:size=16m,uid=101") as a Swarm mount.
        # Only a size: a tmpfs mount of the task, as under Compose (a stack file can give a tmpfs
        # nothing but its size). Any other option (uid/gid here) rules that out: a tmpfs over a
        # directory of the image gets the mode of that directory but belongs to root (runc), so
        # nginx (uid 101) could not write its cache or rendered config; Compose sets the owner
        # with uid/gid. Instead, a node-local volume of the local driver: a tmpfs mounted with
        # exactly the options Compose has (o=...). It holds nothing once no task uses it, but the
        # tasks of the service on one node share it (nginx runs one task per node: host mode).
        def tmpfs($service): (split(":") | {target: .[0], o: (.[1] // "")})
            | ([.o | split(",")[] | select(. != "") | split("=")]) as $opts
            | if all($opts[]; .[0] == "size") then
                {type: "tmpfs", target} + ($opts | map({tmpfs: {size: (.[1] | bytes)}}) | add // {})
              else
                {type: "volume", source: "\($service)-tmpfs\(.target | gsub("[^A-Za-z0-9_.-]"; "-"))", target, o}
              end;

        .name as $project
        # The format that has healthcheck.start_interval (docker CLI 25.0+).
        | {version: "3.12"} + del(.name)
        | (.networks, .volumes, .secrets) |= (if . then unname($project) else . end)
        # The volumes behind the tmpfs entries that Swarm cannot mount as tmpfs (see tmpfs).
        | .volumes = (.volumes // {}) + ([.services | to_entries[] | .key as $service
            | .value.tmpfs[]? | tmpfs($service) | select(.type == "volume")
            | {key: .source, value: {driver: "local", driver_opts: {type: "tmpfs", device: "tmpfs", o: .o}}}] | from_entries)
        | .services |= with_entries(.key as $service | .value |= (
            # Compose writes absent settings as null (command, entrypoint); v3 wants them absent.
            with_entries(select(.value != null))
            # build: Swarm never builds (build and push with Compose first).
            # restart: Swarm restarts by deploy.restart_policy, which Compose also prefers.
            # depends_on: Swarm has no start-up order and v3 rejects conditions; the replicas
            # reconnect to Redis on their own and nginx re-resolves `web`.
            # security_opt stays: Swarm ignores it, and `docker stack deploy` says so.
            | del(.build, .restart, .depends_on)
            # v3 wants CPUs as a string ("0.5"); Compose prints a number.
            | if .deploy.resources then
                .deploy.resources |= map_values(if .cpus != null then .cpus |= tostring else . end)
              else . end
            # Ports: Swarm has no host address to bind to, so only "all interfaces" is accepted
            # (a loopback-only port would silently become public). Mode host, not the ingress
            # mesh that Compose writes by default: like Compose, the port is bound where the task
            # runs and nginx sees the client address, which its per-client rate limit keys on
            # (through the mesh every client would share the ingress address and one limit).
            | if .ports then .ports |= map(
                if (.host_ip // "") | IN("", "0.0.0.0", "::") then
                    # v3 wants the published port as a number; Compose prints a string.
                    del(.host_ip) | .mode = "host"
                    | if .published then .published |= tonumber else . end
                else error("port \(.published):\(.target) is bound to \(.host_ip); Swarm binds all interfaces") end)
              else . end
            # Service-level tmpfs: the stack loader accepts it and drops it without a word, and
            # the read-only containers cannot start without somewhere to write. See def tmpfs above.
            | if .tmpfs then .volumes = (.volumes // []) + [.tmpfs[] | tmpfs($service) | del(.o)] | del(.tmpfs) else . end))
        # Values keep the $$ that `compose config` writes for a literal $: the stack loader
        # interpolates again and turns it back into $ (the redis entrypoint and healthcheck).
        '
}

case "${1:-}" in
    config) [ $# -eq 1 ] || { usage >&2; exit 2; }; stack_file ;;
    deploy)
        [ $# -ge 2 ] || { usage >&2; exit 2; }
        stack=$2
        shift 2
        file=$(stack_file) # the whole file or nothing: a failed step stops here
        docker stack deploy -c - "$@" "$stack" <<<"$file"
        ;;
    *) usage >&2; exit 2 ;;
esac
