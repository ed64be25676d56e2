#!/bin/sh
# The official nginx image's entrypoint contract, written for the stand-in (see ../README.md):
# before starting nginx, go through /docker-entrypoint.d in order: source the executable *.envsh
# files (the variables they export reach the scripts after them) and run the executable *.sh.
set -e
if [ "$1" = nginx ] || [ "$1" = nginx-debug ]; then
    for script in $(find /docker-entrypoint.d -follow -type f | sort -V); do
        [ -x "$script" ] || continue
        case "$script" in
            *.envsh) echo "$0: sourcing $script"; . "$script" ;;
            *.sh) echo "$0: launching $script"; "$script" ;;
        esac
    done
fi
exec "$@"
