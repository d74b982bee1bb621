#!/usr/bin/env bash
# busybox-rootfs.sh DIR — makes DIR a minimal root file system: the static busybox of
# Debian's busybox-static (/bin/busybox, or $BUSYBOX) and a symlink per applet at its usual
# path (/bin/sh, /bin/ps, /usr/bin/env, ...), plus /etc/passwd and /etc/group for root.
set -euo pipefail
DIR=${1:?usage: busybox-rootfs.sh DIR}
BUSYBOX=${BUSYBOX:-/bin/busybox}
if [ ! -x "$BUSYBOX" ]; then
    echo "busybox-rootfs.sh: $BUSYBOX is missing (install busybox-static)" >&2
    exit 1
fi
if ldd "$BUSYBOX" >/dev/null 2>&1; then
    echo "busybox-rootfs.sh: $BUSYBOX is dynamically linked; install busybox-static" >&2
    exit 1
fi
mkdir -p "$DIR"/{bin,sbin,usr/bin,usr/sbin,proc,dev,sys,tmp,etc,root,run,var}
chmod 1777 "$DIR/tmp"
cp "$BUSYBOX" "$DIR/bin/busybox"
chmod 755 "$DIR/bin/busybox"
for a in $("$BUSYBOX" --list-full); do
    [ "$a" = bin/busybox ] && continue
    mkdir -p "$DIR/$(dirname "$a")"
    ln -sfn /bin/busybox "$DIR/$a"
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$DIR/etc/passwd"
echo 'root:x:0:' > "$DIR/etc/group"
