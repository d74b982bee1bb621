#!/usr/bin/env bash
# bench/network.sh — what the default bridge network costs a container (issue #8):
# `berth run --rm --network bridge IMG true` vs `berth run --rm --network none IMG true`
# (and podman's default network vs --network none, for reference, if podman runs here),
# all in ONE hyperfine invocation. Target: berth bridge <= 1.5x berth none.
#
# usage: bench/network.sh [--runs N] [--warmup N] [--no-podman] [--keep] [--out DIR]
#   env BERTH   the berth binary (default: a release build, made here)
#
# Everything runs in a private network + mount namespace made here: the bridges, veths,
# nftables rules and port proxies never touch the host's network. On exit the containers
# are removed, mounts under the work dir undone, cgroups podman made removed and the work
# dir removed.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=../tests/clients/daemons.sh
. "$ROOT/tests/clients/daemons.sh"   # client_cgroups, remove_new_cgroups
RUNS=30
WARMUP=3
PODMAN_TOO=1
KEEP=0
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) RUNS=$2; shift 2 ;;
        --warmup) WARMUP=$2; shift 2 ;;
        --no-podman) PODMAN_TOO=0; shift ;;
        --keep) KEEP=1; shift ;;
        --out) OUT=$2; shift 2 ;;
        *) echo "network.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
if [ "$(id -u)" -ne 0 ]; then
    echo "network.sh: needs root" >&2
    exit 2
fi
for b in hyperfine unshare ip nft; do
    command -v "$b" >/dev/null || { echo "network.sh: $b missing (scripts/install-deps.sh)" >&2; exit 2; }
done
if [ "$PODMAN_TOO" = 1 ] && ! command -v podman >/dev/null; then
    echo "network.sh: podman missing: left out" >&2
    PODMAN_TOO=0
fi

if [ -z "${BERTH_NETWORK_BENCH_NS:-}" ]; then
    if [ -z "${BERTH:-}" ]; then
        echo "== building berth (release)" >&2
        TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
        (cd "$ROOT" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release -q -p berth-cli) || exit 1
        BERTH=$TARGET_DIR/x86_64-unknown-linux-gnu/release/berth
    fi
    OUT=${OUT:-$HERE/results/network-$(date +%Y%m%d-%H%M%S)}
    mkdir -p "$OUT"
    OUT=$(cd "$OUT" && pwd)
    exec unshare --net --mount --propagation private \
        env BERTH_NETWORK_BENCH_NS=1 BERTH="$(readlink -f "$BERTH")" bash "$0" \
        --runs "$RUNS" --warmup "$WARMUP" --out "$OUT" \
        $([ "$PODMAN_TOO" = 0 ] && echo --no-podman) $([ "$KEEP" = 1 ] && echo --keep)
fi

# ---------------------------------------------------------------- inside the namespaces
ip link set lo up
W=$(mktemp -d /tmp/bnb.XXXXXX)
chmod 755 "$W"
mkdir -p "$W/logs"
IMG=bbnet:latest
B=("$BERTH" --root "$W/berth" --runroot "$W/berth-run")
PM=(podman --root "$W/podman/root" --runroot "$W/podman/run" --storage-driver overlay
    --cgroup-manager cgroupfs --events-backend none --runtime "$(command -v runc)")
PM_ULIMITS="--ulimit nofile=10240:10240 --ulimit nproc=10240:10240"
PRE_CGROUPS=$(client_cgroups none)

cleanup() {
    set +e
    "${B[@]}" ps -aq --no-trunc 2>/dev/null | xargs -r "${B[@]}" rm -f >/dev/null 2>&1
    "${B[@]}" network prune -f >/dev/null 2>&1
    [ "$PODMAN_TOO" = 1 ] && "${PM[@]}" rm -af >/dev/null 2>&1
    # Helpers of this namespace (port proxies, name servers, podman's aardvark) go too.
    local me ns p
    me=$$
    ns=$(readlink /proc/self/ns/net)
    for p in /proc/[0-9]*; do
        p=${p#/proc/}
        [ "$p" = "$me" ] && continue
        [ "$(readlink "/proc/$p/ns/net" 2>/dev/null)" = "$ns" ] || continue
        # Only what runs from our work dir or a berth/podman helper.
        grep -qa -e "$W" -e network-dns -e port-proxy -e aardvark "/proc/$p/cmdline" 2>/dev/null &&
            kill -9 "$p" 2>/dev/null
    done
    sleep 0.2
    cp "$W"/logs/* "$OUT/" 2>/dev/null
    grep -o " $W[^ ]*" /proc/self/mounts | sort -r | while read -r m; do umount -l "$m"; done
    remove_new_cgroups "$PRE_CGROUPS" none   # podman's libpod_parent (cgroupfs)
    if [ "$KEEP" = 1 ]; then
        echo "network.sh: kept $W" >&2
    else
        rm -rf "$W" 2>/dev/null || echo "network.sh: could not remove all of $W" >&2
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== the image: busybox-static" >&2
"$ROOT/scripts/busybox-rootfs.sh" "$W/rootfs" >/dev/null || exit 1
tar --numeric-owner -C "$W/rootfs" -cf "$W/rootfs.tar" .
"${B[@]}" import "$W/rootfs.tar" "$IMG" >/dev/null || exit 1
BN="${B[*]} run --rm --network none $IMG true"
BB="${B[*]} run --rm --network bridge $IMG true"
# Each must work before it is timed (the first bridge run also realizes the bridge).
$BN || { echo "network.sh: berth run --network none failed" >&2; exit 1; }
$BB || { echo "network.sh: berth run --network bridge failed" >&2; exit 1; }
ARGS=(-n berth-none "$BN" -n berth-bridge "$BB")
if [ "$PODMAN_TOO" = 1 ]; then
    "${PM[@]}" import "$W/rootfs.tar" "$IMG" >/dev/null || PODMAN_TOO=0
    PN="${PM[*]} run --rm --network none $PM_ULIMITS $IMG true"
    PB="${PM[*]} run --rm $PM_ULIMITS $IMG true"
    if [ "$PODMAN_TOO" = 1 ] && $PN && $PB; then
        ARGS+=(-n podman-none "$PN" -n podman-bridge "$PB")
    else
        echo "network.sh: podman run failed; left out" >&2
        PODMAN_TOO=0
    fi
fi

echo "== hyperfine: $((${#ARGS[@]} / 2)) commands in one invocation" >&2
hyperfine --warmup "$WARMUP" --runs "$RUNS" --style basic --output null \
    --export-json "$W/logs/network.json" --export-markdown "$W/logs/network.md" "${ARGS[@]}" || exit 1

python3 - "$W/logs/network.json" <<'PY' | tee "$W/logs/summary.txt"
import json, sys
res = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
print(f"{'command':<14} {'median':>10} {'mean':>10} {'stddev':>9}")
for name, r in res.items():
    print(f"{name:<14} {r['median']*1000:>8.1f}ms {r['mean']*1000:>8.1f}ms {r['stddev']*1000:>7.1f}ms")
b = res["berth-bridge"]["median"] / res["berth-none"]["median"]
print(f"\nberth bridge / none = {b:.3f} (target <= 1.5: {'ok' if b <= 1.5 else 'MISSED'})")
if "podman-bridge" in res:
    p = res["podman-bridge"]["median"] / res["podman-none"]["median"]
    print(f"podman bridge / none = {p:.3f}")
PY
