#!/usr/bin/env bash
# Image-store benchmarks of issue #6, side by side, reported as ratios (medians):
#
#  1. unpack of a ~120 MB Debian minbase layer (gzip) vs `tar -xzf` on the same disk:
#       - berth-image's unpack alone (bench/unpack-bench: the store's unpack_layer, nothing
#         else), without and with the syncfs the store does before naming a layer;
#       - the whole `berth import` (blob stored + hashed + fsynced, unpack, syncfs, SQLite);
#       - `tar -xzf`, and `tar -xzf` + `sync -f` (the same durability as berth).
#  2. `berth pull` from a local docker-registry (plain http on 127.0.0.1, as a loopback
#     registry may be) vs `skopeo copy docker://... oci:...` (skopeo only downloads;
#     `skopeo copy` + `tar -xzf` of the layer is the same work as a pull, which also
#     unpacks). Both first try https, then fall back to http.
#
# Usage: bench/images.sh [--runs N] [--keep] [--only unpack|pull]      (root; Debian 12)
#   BENCH_DIR         work directory (default /tmp/berth-images-bench; it decides the disk)
#   BENCH_PORT        registry port on 127.0.0.1 (default: a free one)
#   CARGO_TARGET_DIR  where the release build goes (default: target/ of the repository)
#
# Each run writes into a fresh directory. --prepare moves the previous result aside (and
# syncs) instead of deleting it: on ext4, creating thousands of inodes right after
# thousands were deleted is several times slower (the allocator skips inodes deleted in
# the last ~30 s, `recently_deleted` in perf), which would swamp what is being measured.
# The moved-aside trees are deleted between the two benchmarks and at the end.
set -euo pipefail

RUNS=10
KEEP=0
ONLY=""
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) RUNS="$2"; shift 2 ;;
        --keep) KEEP=1; shift ;;
        --only) ONLY="$2"; shift 2
                case "$ONLY" in unpack|pull) ;; *) echo "--only: unpack or pull" >&2; exit 2 ;; esac ;;
        -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

[ "$(id -u)" = 0 ] || { echo "bench/images.sh: run as root" >&2; exit 1; }
REPO="$(cd "$(dirname "$0")/.." && pwd)"
W="${BENCH_DIR:-/tmp/berth-images-bench}"
TRIPLE=x86_64-unknown-linux-gnu

need=()
for p in debootstrap:debootstrap skopeo:skopeo docker-registry:docker-registry \
         hyperfine:hyperfine python3:python3 curl:curl; do
    command -v "${p%%:*}" >/dev/null || need+=("${p#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "== installing ${need[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

REG_PID=""
cleanup() {
    if [ -n "$REG_PID" ]; then kill "$REG_PID" 2>/dev/null || true; wait "$REG_PID" 2>/dev/null || true; fi
    if [ "$KEEP" = 0 ]; then rm -rf "$W"; fi
}
trap cleanup EXIT

rm -rf "$W"
mkdir -p "$W/trash"

echo "== building berth and unpack-bench (release, as shipped: static, opt-level z)"
TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
(cd "$REPO" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release -q -p berth-cli)
BERTH="$TARGET_DIR/$TRIPLE/release/berth"
# unpack-bench is not a workspace member; start from the workspace's lock file so it
# builds the same dependency versions as berth.
[ -f "$REPO/bench/unpack-bench/Cargo.lock" ] || cp "$REPO/Cargo.lock" "$REPO/bench/unpack-bench/Cargo.lock"
(cd "$REPO/bench/unpack-bench" && CARGO_TARGET_DIR="$TARGET_DIR/unpack-bench" cargo build --release -q)
UNPACK="$TARGET_DIR/unpack-bench/$TRIPLE/release/unpack-bench"

echo "== the layer: debootstrap --variant=minbase bookworm"
ROOTFS="$W/rootfs"
if debootstrap --variant=minbase bookworm "$ROOTFS" http://deb.debian.org/debian >"$W/debootstrap.log" 2>&1; then
    # As the debian:bookworm image: no downloaded .debs, no package lists.
    rm -f "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/cache/apt/*.bin
    rm -rf "$ROOTFS"/var/lib/apt/lists/*
    LAYER_KIND="debootstrap minbase bookworm"
else
    echo "   debootstrap failed (see $W/debootstrap.log): using ~120 MB of this host's /usr instead"
    rm -rf "$ROOTFS"; mkdir -p "$ROOTFS/usr"
    cp -a /usr/bin /usr/sbin "$ROOTFS/usr/"
    mkdir -p "$ROOTFS/usr/lib" "$ROOTFS/usr/share"
    for d in /usr/lib/x86_64-linux-gnu /usr/share/doc /usr/share/locale /usr/share/zoneinfo /usr/share/perl5 /usr/lib/python3; do
        [ -d "$d" ] && [ "$(du -s --apparent-size -m "$ROOTFS" | cut -f1)" -lt 120 ] && cp -a "$d" "$ROOTFS$(dirname "$d")/"
    done
    cp -a /etc "$ROOTFS/" 2>/dev/null || true
    LAYER_KIND="copy of host /usr and /etc"
fi
LAYER="$W/layer.tar.gz"
tar -C "$ROOTFS" -czf "$LAYER" .
rm -rf "$ROOTFS"
sync; sleep 35   # let the deleted inodes age (see above)
RAW=$(gzip -dc "$LAYER" | wc -c)
ENTRIES=$(tar -tzf "$LAYER" | wc -l)
printf '   %s: %d MB gzip, %d MB tar, %d entries\n' "$LAYER_KIND" \
    $(( $(stat -c %s "$LAYER") / 1000000 )) $(( RAW / 1000000 )) "$ENTRIES"

# Move the previous run's outputs aside, make fresh ones, flush dirty pages.
PREP="sh -c 'for d in $W/store $W/tarx $W/ux $W/skopeo-oci; do [ -e \$d ] && mv \$d $W/trash/\$(date +%s%N); done; mkdir $W/tarx $W/ux; sync'"
empty_trash() { rm -rf "$W/trash"; mkdir -p "$W/trash"; sync; sleep 35; }

if [ "$ONLY" != pull ]; then
# Same content either way (device nodes aside: diff can't compare them).
mkdir -p "$W/check-tar" "$W/check-berth"
tar -xzf "$LAYER" -C "$W/check-tar"
"$UNPACK" "$LAYER" "$W/check-berth" >/dev/null
if diff -r --no-dereference "$W/check-tar" "$W/check-berth" 2>&1 | grep -v "character special" | grep -q .; then
    echo "   WARNING: berth's unpack differs from tar's:"; diff -r --no-dereference "$W/check-tar" "$W/check-berth" | grep -v "character special" | head -5
fi
mv "$W/check-tar" "$W/check-berth" "$W/trash/"

echo "== 1. unpack ($RUNS runs each)"
hyperfine -N --style basic --warmup 1 --runs "$RUNS" --export-json "$W/unpack.json" \
    -n "berth unpack alone" --prepare "$PREP" "$UNPACK $LAYER $W/ux" \
    -n "berth unpack alone + syncfs" --prepare "$PREP" "$UNPACK $LAYER $W/ux --sync" \
    -n "berth import (whole)" --prepare "$PREP" "$BERTH --root $W/store import $LAYER debian:bench" \
    -n "tar -xzf" --prepare "$PREP" "tar -xzf $LAYER -C $W/tarx" \
    -n "tar -xzf + sync -f" --prepare "$PREP" "sh -c 'tar -xzf $LAYER -C $W/tarx && sync -f $W/tarx'" \
    >"$W/unpack.log"
empty_trash
fi

if [ "$ONLY" != unpack ]; then
echo "== 2. pull from a local docker-registry ($RUNS runs each)"
PORT="${BENCH_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}"
mkdir -p "$W/registry"
cat >"$W/registry/config.yml" <<EOF
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $W/registry/data
http:
  addr: 127.0.0.1:$PORT
EOF
docker-registry serve "$W/registry/config.yml" >"$W/registry/log" 2>&1 &
REG_PID=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/v2/" >/dev/null && break; sleep 0.1; done
REF="127.0.0.1:$PORT/debian:bench"
"$BERTH" --root "$W/push" import "$LAYER" "$REF" >/dev/null
"$BERTH" --root "$W/push" push -q "$REF" >/dev/null
# The layer is stored as given: its digest is the file's.
LAYER_DIGEST=$(sha256sum "$LAYER" | cut -d' ' -f1)
rm -rf "$W/push"
hyperfine -N --style basic --warmup 1 --runs "$RUNS" --export-json "$W/pull.json" \
    -n "berth pull" --prepare "$PREP" "$BERTH --root $W/store pull $REF" \
    -n "skopeo copy" --prepare "$PREP" "skopeo copy -q --src-tls-verify=false docker://$REF oci:$W/skopeo-oci:debian" \
    -n "skopeo copy + tar -xzf" --prepare "$PREP" "sh -c 'skopeo copy -q --src-tls-verify=false docker://$REF oci:$W/skopeo-oci:debian && tar -xzf $W/skopeo-oci/blobs/sha256/$LAYER_DIGEST -C $W/tarx'" \
    >"$W/pull.log"
fi

echo
python3 - "$W/unpack.json" "$W/pull.json" <<'EOF'
import json, os, statistics, sys
def load(p):
    if not os.path.exists(p):
        return None
    return {r["command"]: r for r in json.load(open(p))["results"]}
def table(title, res, pairs):
    print(title)
    print(f"  {'command':<30} {'median':>9} {'mean ± sd':>17} {'min':>8}")
    for name, r in res.items():
        t = r["times"]
        sd = statistics.stdev(t) if len(t) > 1 else 0
        print(f"  {name:<30} {statistics.median(t):8.3f}s {r['mean']:8.3f}s ± {sd:5.3f} {min(t):7.3f}s")
    print(f"  ratios of medians (>1: berth faster):")
    for a, b in pairs:
        ra, rb = statistics.median(res[a]["times"]), statistics.median(res[b]["times"])
        print(f"    {b:<26} / {a:<28} = {rb/ra:5.2f}")
    print()
u = load(sys.argv[1])
if u: table("1. unpack of the Debian layer", u, [
    ("berth unpack alone", "tar -xzf"),
    ("berth unpack alone + syncfs", "tar -xzf + sync -f"),
    ("berth import (whole)", "tar -xzf"),
    ("berth import (whole)", "tar -xzf + sync -f"),
])
p = load(sys.argv[2])
if p: table("2. pull from a local registry", p, [
    ("berth pull", "skopeo copy"),
    ("berth pull", "skopeo copy + tar -xzf"),
])
EOF
echo "hyperfine output: $W/unpack.log $W/pull.log (kept with --keep)"
