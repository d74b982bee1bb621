#!/usr/bin/env bash
# install.sh — the container clients tests/clients/run.sh drives berth-runtime with:
# docker (dockerd 20.10), containerd 1.6 (ctr), podman 4.3 and their helpers, all from
# Debian 12's apt. Idempotent: when every package is installed it does nothing (no apt).
# Installing docker.io starts docker.service/containerd.service on a systemd host; run.sh
# never uses those (it starts its own daemons with private state dirs).
set -euo pipefail

PACKAGES=(
    docker.io containerd runc tini          # dockerd, docker-init (tini), containerd + ctr
    podman crun conmon uidmap               # podman, its monitor, newuidmap/newgidmap
    slirp4netns netavark aardvark-dns       # podman's networks (netavark + DNS by name)
    containernetworking-plugins golang-github-containernetworking-plugin-dnsname  # CNI fallback
    fuse-overlayfs catatonit                # podman storage fallback, podman --init
    busybox-static iproute2 iptables curl jq util-linux
)

exec "$(dirname "$0")/../../scripts/install-deps.sh" "${PACKAGES[@]}"
