#!/usr/bin/env bash
# bench/engine.sh — container start through the engines (issue #7): `berth run --rm IMG
# true` side by side with `podman run --rm --network none IMG true` and `docker run --rm
# --network none IMG true`, the same busybox image imported into each, in ONE hyperfine
# invocation. Target: berth ≤ 0.3× podman.
#
# usage: bench/engine.sh [--runs N] [--warmup N] [--no-docker] [--keep] [--out DIR]
#   --runs N       timed runs per command (default 30); --warmup N (default 3)
#   --no-docker    leave docker out (it needs containerd + dockerd, started privately)
#   --keep         keep the work dir; --out DIR: where results go
#                  (default bench/results/engine-<timestamp>)
#   env BERTH      the berth binary (default: a release build, made here)
#
# Everything runs in a private network + mount namespace (no bridge or iptables rule of
# docker's reaches the host). berth uses berth-runtime (its default); podman and docker use
# runc (crun 1.8 refuses this host's hybrid cgroups). podman: private --root/--runroot,
# cgroupfs, no events; its default rlimits (nofile 1048576, nproc 4194304) exceed this
# host's hard limits, so it gets --ulimit nofile=10240 nproc=10240 (docker gets the same
# through dockerd's --default-ulimit). On exit every daemon is stopped by its pid, the
# containers are removed, mounts under the work dir undone and the work dir removed.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=../tests/clients/daemons.sh
. "$ROOT/tests/clients/daemons.sh"
RUNS=30
WARMUP=3
DOCKER_TOO=1
KEEP=0
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) RUNS=$2; shift 2 ;;
        --warmup) WARMUP=$2; shift 2 ;;
        --no-docker) DOCKER_TOO=0; shift ;;
        --keep) KEEP=1; shift ;;
        --out) OUT=$2; shift 2 ;;
        *) echo "engine.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
if [ "$(id -u)" -ne 0 ]; then
    echo "engine.sh: needs root" >&2
    exit 2
fi
for b in hyperfine podman runc unshare ip; do
    command -v "$b" >/dev/null || { echo "engine.sh: $b missing (scripts/install-deps.sh)" >&2; exit 2; }
done
if [ "$DOCKER_TOO" = 1 ]; then
    for b in dockerd containerd; do
        command -v "$b" >/dev/null || { echo "engine.sh: $b missing: docker left out (tests/clients/install.sh)" >&2; DOCKER_TOO=0; }
    done
fi

if [ -z "${BERTH_ENGINE_BENCH_NS:-}" ]; then
    if [ -z "${BERTH:-}" ]; then
        echo "== building berth (release)" >&2
        TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
        (cd "$ROOT" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release -q -p berth-cli) || exit 1
        BERTH=$TARGET_DIR/x86_64-unknown-linux-gnu/release/berth
    fi
    OUT=${OUT:-$HERE/results/engine-$(date +%Y%m%d-%H%M%S)}
    mkdir -p "$OUT"
    OUT=$(cd "$OUT" && pwd)
    exec unshare --net --mount --propagation private \
        env BERTH_ENGINE_BENCH_NS=1 BERTH="$(readlink -f "$BERTH")" bash "$0" \
        --runs "$RUNS" --warmup "$WARMUP" --out "$OUT" \
        $([ "$DOCKER_TOO" = 0 ] && echo --no-docker) $([ "$KEEP" = 1 ] && echo --keep)
fi

# ---------------------------------------------------------------- inside the namespaces
ip link set lo up
DOCKER=$(command -v docker || echo /usr/bin/docker)
[ -x /usr/bin/docker ] && DOCKER=/usr/bin/docker
W=$(mktemp -d /tmp/beb.XXXXXX)
chmod 755 "$W"
mkdir -p "$W/logs"
PIDS=()
IMG=bbbench:latest
PRE_CGROUPS=$(client_cgroups none)
PM=(podman --root "$W/podman/root" --runroot "$W/podman/run" --storage-driver overlay
    --cgroup-manager cgroupfs --events-backend none --runtime "$(command -v runc)")
export BERTH_ROOT=$W/berth
export BERTH_RUNROOT=$W/berth-run

cleanup() {
    set +e
    "$BERTH" ps -aq --no-trunc 2>/dev/null | xargs -r "$BERTH" rm -f >/dev/null 2>&1
    "${PM[@]}" rm -af >/dev/null 2>&1
    if [ -S "$W/d.sock" ]; then
        ids=$($DOCKER -H "unix://$W/d.sock" ps -aq 2>/dev/null)
        [ -n "$ids" ] && timeout 60 $DOCKER -H "unix://$W/d.sock" rm -f $ids >/dev/null 2>&1
    fi
    local i
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        kill "${PIDS[i]}" 2>/dev/null
        for _ in $(seq 100); do kill -0 "${PIDS[i]}" 2>/dev/null || break; sleep 0.1; done
        kill -9 "${PIDS[i]}" 2>/dev/null
    done
    for p in $(pgrep -f -- "-address $W/c.sock" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
    sleep 0.3
    cp "$W"/logs/* "$OUT/" 2>/dev/null
    grep -o " $W[^ ]*" /proc/self/mounts | sort -r | while read -r m; do umount -l "$m"; done
    mountpoint -q /run/containerd && umount -l /run/containerd
    remove_new_cgroups "$PRE_CGROUPS" none
    if [ "$KEEP" = 1 ]; then
        echo "engine.sh: kept $W" >&2
    else
        rm -rf "$W" 2>/dev/null || echo "engine.sh: could not remove all of $W" >&2
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== the image: busybox-static, imported into each engine" >&2
"$ROOT/scripts/busybox-rootfs.sh" "$W/rootfs" >/dev/null || exit 1
tar --numeric-owner -C "$W/rootfs" -cf "$W/rootfs.tar" .
"$BERTH" import "$W/rootfs.tar" "$IMG" >/dev/null || exit 1
"${PM[@]}" import "$W/rootfs.tar" "$IMG" >/dev/null || exit 1
B="$BERTH run --rm --network none $IMG true"
P="${PM[*]} run --rm --network none --ulimit nofile=10240:10240 --ulimit nproc=10240:10240 $IMG true"
# Each must work before it is timed.
$B || { echo "engine.sh: berth run failed" >&2; exit 1; }
$P || { echo "engine.sh: podman run failed" >&2; exit 1; }
ARGS=(-n berth "$B" -n podman "$P")
if [ "$DOCKER_TOO" = 1 ]; then
    echo "== starting a private containerd and dockerd" >&2
    mkdir -p /run/containerd
    mount -t tmpfs -o mode=711 tmpfs /run/containerd
    if start_containerd && start_dockerd "$IMG"; then
        D="$DOCKER -H unix://$W/d.sock run --rm --network none $IMG true"
        if $D; then
            ARGS+=(-n docker "$D")
        else
            echo "engine.sh: docker run failed; left out" >&2
        fi
    else
        echo "engine.sh: dockerd did not start; left out" >&2
    fi
fi

echo "== hyperfine: $((${#ARGS[@]} / 3)) commands in one invocation" >&2
hyperfine --warmup "$WARMUP" --runs "$RUNS" --style basic --output null \
    --export-json "$W/logs/engine.json" --export-markdown "$W/logs/engine.md" "${ARGS[@]}" || exit 1

python3 - "$W/logs/engine.json" <<'PY' | tee "$W/logs/summary.txt"
import json, sys
res = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
b = res["berth"]["median"]
print(f"{'engine':<8} {'median':>10} {'mean':>10} {'stddev':>9} {'berth/x':>8}")
for name, r in res.items():
    print(f"{name:<8} {r['median']*1000:>8.1f}ms {r['mean']*1000:>8.1f}ms {r['stddev']*1000:>7.1f}ms {b / r['median']:>8.3f}")
p = res["podman"]["median"]
print(f"\nberth / podman = {b / p:.3f} (target <= 0.3: {'ok' if b / p <= 0.3 else 'MISSED'})")
PY
