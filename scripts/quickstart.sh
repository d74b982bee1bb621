#!/usr/bin/env bash
# quickstart.sh — from a fresh Debian 12 machine to a running container, as root:
# installs the system packages, builds berth and berth-runtime (release), makes a busybox
# image locally (`berth import` of a busybox-static root file system), runs a container
# from it in the background and prints its processes with `berth top`, then removes it.
# State goes to target/quickstart/root (--root) and /run/berth-quickstart (--runroot).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "quickstart.sh: run as root (containers need namespaces, mounts and cgroups)" >&2
    exit 1
fi
scripts/install-deps.sh

echo "== cargo build --release -p berth-cli"
cargo build --release -p berth-cli
TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
BERTH=$TARGET_DIR/x86_64-unknown-linux-gnu/release/berth
QS=$PWD/target/quickstart
export BERTH_ROOT=$QS/root BERTH_RUNROOT=/run/berth-quickstart

echo "== image busybox:quickstart (berth import of a busybox-static rootfs)"
rm -rf "$QS/rootfs"
scripts/busybox-rootfs.sh "$QS/rootfs"
tar --numeric-owner -C "$QS/rootfs" -cf "$QS/busybox.tar" .
"$BERTH" import "$QS/busybox.tar" busybox:quickstart
# A re-run moves the tag to the new import: drop the image the last run left untagged.
"$BERTH" image prune -f >/dev/null
"$BERTH" images

NAME=quickstart-$$
trap '"$BERTH" rm -f "$NAME" >/dev/null 2>&1 || true' EXIT
# --network none: a demo that needs no network leaves the host's network as it was (the
# default, a bridge like docker0, would make berth0 and its nftables table).
echo "== berth run -d --network none --name $NAME busybox:quickstart sh -c '...'"
"$BERTH" run -d --network none --name "$NAME" busybox:quickstart \
    sh -c 'echo hello from berth; sleep 300 & exec sleep 301'
"$BERTH" ps
echo "== berth top $NAME (host PIDs)"
"$BERTH" top "$NAME"
echo "== berth logs $NAME"
"$BERTH" logs "$NAME"
echo "== berth rm -f $NAME"
"$BERTH" rm -f "$NAME"
trap - EXIT
