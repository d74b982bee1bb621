#!/usr/bin/env bash
# install-deps.sh [PACKAGE...] — the Debian 12 packages berth's build, tests and bench need
# (plus any named on the command line: tests/clients/install.sh passes the clients').
# Idempotent: when every package is already installed it does nothing (no apt at all).
# Rust itself (cargo, rustfmt, clippy via rustup) is expected to be installed already.
set -euo pipefail

PACKAGES=(
    # build
    gcc pkg-config libseccomp-dev
    # tests: a static busybox for test rootfs, ip, unshare/script (util-linux), ps
    busybox-static iproute2 util-linux procps
    # networks: nft for the firewall/DNAT rules of berth-net
    nftables
    # rootless: newuidmap/newgidmap for multi-range id maps without root
    uidmap
    # image store tests: umoci (reference unpack to compare with), a local registry,
    # openssl (test CA and token-signing keys); the CA bundle https pulls verify against
    umoci docker-registry openssl ca-certificates
    # bench: the runtimes we compare with, the timer, tracers, GNU time, the summarizer
    runc crun hyperfine strace time python3
    # build bench: the builders `berth build` is compared with
    buildah podman
    "$@"
)

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg -s "$p" 2>/dev/null | grep -q '^Status: install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    SUDO=(sudo)
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
