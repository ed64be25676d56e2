#!/bin/sh
# The official nginx image's entrypoint contract, written for the stand-in (see ../README.md):
# before starting nginx, run the executable *.sh files of /docker-entrypoint.d in order.
set -e
if [ "$1" = nginx ] || [ "$1" = nginx-debug ]; then
    for script in $(find /docker-entrypoint.d -follow -type f -name '*.sh' | sort -V); do
        if [ -x "$script" ]; then
            echo "$0: launching $script"
            "$script"
        fi
    done
fi
exec "$@"
