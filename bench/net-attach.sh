#!/usr/bin/env bash
# net-attach.sh — what a container's network costs: namespace file only (--network none)
# vs namespace + attach + detach on the default bridge and on a user network (veth pair,
# lease, address, route; bridge and name server already up), one process per run as
# `berth run` will be. All inside a private network namespace made here; nothing touches
# the host's network. Usage: bench/net-attach.sh [hyperfine args...]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build -q --release -p berth-net --example net_attach
EX="$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release/examples/net_attach"
[ -x "$EX" ] || EX="$CARGO_TARGET_DIR/release/examples/net_attach"
TMP=$(mktemp -d /tmp/berth-net-bench.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
unshare --net --mount sh -euc '
    mount --make-rprivate /
    ip link set lo up
    EX=$1; T=$2; shift 2
    "$EX" "$T/root" "$T/run" bridge          # realizes the default bridge
    "$EX" "$T/root" "$T/run" create=benchnet # bridge + name server
    trap "\"$EX\" \"$T/root\" \"$T/run\" rm=benchnet" EXIT
    hyperfine -N --warmup 10 --runs 200 "$@" \
        "$EX $T/root $T/run none" \
        "$EX $T/root $T/run bridge" \
        "$EX $T/root $T/run benchnet"
' sh "$EX" "$TMP" "$@"
