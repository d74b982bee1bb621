#!/usr/bin/env bash
# `berth build` side by side with `buildah bud --layers` and `podman build` (issue #9):
# one 7-step Dockerfile (FROM, RUN, ENV, WORKDIR, a COPY of 1000 small files in 10 dirs,
# RUN, RUN) FROM a busybox image made here, three scenarios, each one hyperfine
# invocation with all three builders:
#
#   cold         every step runs (--no-cache; the base image is local for all three)
#   no-change    rebuild of an unchanged context (every step a cache hit)
#   one-file     one COPY source changed before each run (COPY and the two RUNs re-run)
#
# buildah and podman run RUN steps with runc and --network none, as berth does (its default).
# Targets (ratio berth / buildah, medians): cold <= 0.7, no-change <= 0.2, one-file <= 0.5.
#
# Usage: bench/build.sh [--runs N] [--keep]          (root; Debian 12)
#   BENCH_DIR         work directory (default /tmp/berth-build-bench)
#   CARGO_TARGET_DIR  where the release build goes (default: target/ of the repository)
set -euo pipefail

RUNS=10
KEEP=0
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) RUNS="$2"; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

[ "$(id -u)" = 0 ] || { echo "bench/build.sh: run as root" >&2; exit 1; }
REPO="$(cd "$(dirname "$0")/.." && pwd)"
W="${BENCH_DIR:-/tmp/berth-build-bench}"
TRIPLE=x86_64-unknown-linux-gnu
BASE=localhost/bench/busybox:latest

"$REPO/scripts/install-deps.sh" buildah podman hyperfine python3

cleanup() {
    # Containers storage holds overlay mounts of its own; let buildah take them down.
    buildah "${BS[@]}" rm --all >/dev/null 2>&1 || true
    buildah "${PS[@]}" rm --all >/dev/null 2>&1 || true
    if [ "$KEEP" = 0 ]; then
        grep -o " $W/[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
        rm -rf "$W"
    fi
}
# buildah and podman each get their own containers storage (they would share one cache).
BS=(--root "$W/buildah/storage" --runroot "$W/buildah/run" --storage-driver overlay)
PS=(--root "$W/podman/storage" --runroot "$W/podman/run" --storage-driver overlay)
trap cleanup EXIT
rm -rf "$W"
mkdir -p "$W"

echo "== building berth (release)"
TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
(cd "$REPO" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release -q -p berth-cli)
BERTH="$TARGET_DIR/$TRIPLE/release/berth"
export BERTH_ROOT="$W/berth"

echo "== the base image: busybox-static, imported into berth, loaded into containers storage"
"$REPO/scripts/busybox-rootfs.sh" "$W/rootfs"
tar -C "$W/rootfs" -cf "$W/busybox.tar" .
"$BERTH" import "$W/busybox.tar" "$BASE" >/dev/null
"$BERTH" save --format oci -o "$W/busybox.oci.tar" "$BASE"
buildah "${BS[@]}" pull -q "oci-archive:$W/busybox.oci.tar" >/dev/null
buildah "${PS[@]}" pull -q "oci-archive:$W/busybox.oci.tar" >/dev/null

echo "== the context: 1000 files in 10 directories, a 7-step Dockerfile"
CTX="$W/context"
mkdir -p "$CTX/ctx"
for d in $(seq -w 0 9); do
    mkdir -p "$CTX/ctx/d0$d"
    for f in $(seq -w 0 99); do
        printf 'file d0%s/f00%s\n' "$d" "$f" > "$CTX/ctx/d0$d/f00$f.txt"
    done
done
cat > "$CTX/Dockerfile" <<DOCKERFILE
FROM $BASE
RUN mkdir -p /app/gen && for i in \$(seq 1 200); do echo "gen \$i" > /app/gen/f\$i; done
ENV APP_HOME=/app GREETING=hello
WORKDIR /app
COPY ctx/ /app/ctx/
RUN find /app -type f | wc -l > /app/count && cat /app/ctx/d00/f0000.txt > /app/first
RUN echo "\$GREETING from \$(pwd)" > /app/done && cat /app/count
DOCKERFILE

# All three run RUN steps without a network (berth's default); buildah and podman use runc
# (crun 1.8 refuses this host's hybrid cgroups) with cgroupfs and no event log.
RUNC=$(command -v runc)
B="$BERTH build -q -t bench:berth"
BH="buildah ${BS[*]} bud --layers --runtime $RUNC --network none -q -t bench:buildah"
P="podman ${PS[*]} --cgroup-manager cgroupfs --events-backend none --runtime $RUNC build --layers --network none -q -t bench:podman"

echo "== warm-up (fills every builder's cache)"
for c in "$B" "$BH" "$P"; do $c "$CTX" >/dev/null; done

run() { # name, the three commands, then more hyperfine arguments
    local name="$1" b="$2" bh="$3" p="$4"
    shift 4
    echo "== $name"
    hyperfine --runs "$RUNS" --warmup 1 --export-json "$W/$name.json" "$@" \
        -n berth "$b" -n buildah "$bh" -n podman "$p"
}

run cold "$B --no-cache $CTX" "$BH --no-cache $CTX" "$P --no-cache $CTX"
run no-change "$B $CTX" "$BH $CTX" "$P $CTX"
run one-file "$B $CTX" "$BH $CTX" "$P $CTX" --prepare "date +%s%N > $CTX/ctx/d00/f0007.txt"

python3 - "$W" <<'PY'
import json, statistics, sys
w = sys.argv[1]
targets = {"cold": 0.7, "no-change": 0.2, "one-file": 0.5}
print(f"\n{'scenario':<10} {'berth':>9} {'buildah':>9} {'podman':>9} {'berth/buildah':>14} {'target':>7}")
for s, t in targets.items():
    r = {x["command"]: statistics.median(x["times"]) for x in json.load(open(f"{w}/{s}.json"))["results"]}
    ratio = r["berth"] / r["buildah"]
    print(f"{s:<10} {r['berth']:>8.3f}s {r['buildah']:>8.3f}s {r['podman']:>8.3f}s {ratio:>14.2f} {'<= '+str(t):>7} {'ok' if ratio <= t else 'MISSED'}")
PY
