#!/bin/sh
# Sets up an unpacked foreign-architecture root file system from the host, without running any
# of its code (scripts/offline-docker.sh: mmdebstrap --variant=extract, as its --extract-hook).
# Only what the stand-ins rely on from the maintainer scripts they skipped (see README.md):
#   - dpkg's status, from the downloaded packages (state "unpacked": nothing was configured),
#     so that `dpkg -l` in the image and the image's version label tell the truth;
#   - /usr/local/*, which base-files' postinst creates;
#   - /etc/passwd and /etc/group, as base-passwd's postinst writes them;
#   - java and the other JVM tools on the PATH (the alternatives openjdk's postinst sets);
#   - the `redis` account that redis-server's postinst adds (the Dockerfile renumbers it).
# Usage: foreign-configure.sh ROOT ARCH
set -eu
root=$1 arch=$2

status=$root/var/lib/dpkg/status
: >"$status"
for deb in "$root"/var/cache/apt/archives/*.deb; do
    dpkg-deb -f "$deb" | sed '1a Status: install ok unpacked' >>"$status"
    echo >>"$status"
done

# base-files' postinst: the /usr/local tree (the stand-ins link busybox's wget there).
for d in bin etc games include lib man sbin share src; do mkdir -p "$root/usr/local/$d"; done

[ -s "$root/etc/passwd" ] || cp "$root/usr/share/base-passwd/passwd.master" "$root/etc/passwd"
[ -s "$root/etc/group" ] || cp "$root/usr/share/base-passwd/group.master" "$root/etc/group"

for jvm in "$root"/usr/lib/jvm/java-*-openjdk-"$arch"; do
    # Not java-1.25.0-openjdk-ARCH, a symbolic link to the same directory.
    [ -d "$jvm/bin" ] && [ ! -L "$jvm" ] || continue
    for tool in "$jvm"/bin/*; do
        link=$root/usr/bin/${tool##*/}
        [ -e "$link" ] || [ -L "$link" ] || ln -s "${tool#"$root"}" "$link"
    done
done

if [ -x "$root/usr/bin/redis-server" ] && ! grep -q '^redis:' "$root/etc/passwd"; then
    echo 'redis:x:100:101::/var/lib/redis:/usr/sbin/nologin' >>"$root/etc/passwd"
    echo 'redis:x:101:' >>"$root/etc/group"
    mkdir -p "$root/var/lib/redis"
fi
