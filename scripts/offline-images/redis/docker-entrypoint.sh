#!/bin/sh
# The official Redis image's entrypoint contract, written for Debian (see ../README.md).
set -e

# An option or a .conf file as the first argument means: redis-server with it.
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
    set -- redis-server "$@"
fi

if [ "$1" = redis-server ] && [ "$(id -u)" = 0 ]; then
    # Started as root: own the data, then run as redis (setpriv where the image has su-exec).
    find . \! -user redis -exec chown redis '{}' +
    exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
fi

if [ "$1" = redis-server ]; then
    # The official build turns protected mode off by default (the container's network is the
    # boundary); Debian's keeps it on. Same default here, unless the command sets it.
    case " $* " in
        *" --protected-mode "*) ;;
        *) set -- "$@" --protected-mode no ;;
    esac
fi

um=$(umask)
if [ "$um" = 0022 ]; then
    umask 0077
fi

exec "$@"
