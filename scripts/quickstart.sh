#!/usr/bin/env bash
# quickstart.sh — from a fresh Debian 12 machine to a running container, as root:
# installs the system packages, builds berth-runtime (release), makes a busybox bundle in
# target/quickstart, and runs it with `berth-runtime run`.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "quickstart.sh: run as root (containers need namespaces, mounts and cgroups)" >&2
    exit 1
fi
scripts/install-deps.sh

echo "== cargo build --release -p berth-cli"
cargo build --release -p berth-cli
RT=$PWD/target/x86_64-unknown-linux-gnu/release/berth-runtime

BUNDLE=$PWD/target/quickstart
echo "== bundle: $BUNDLE (busybox rootfs + berth-runtime spec)"
rm -rf "$BUNDLE"
mkdir -p "$BUNDLE"
scripts/busybox-rootfs.sh "$BUNDLE/rootfs"
"$RT" spec --bundle "$BUNDLE"
python3 - "$BUNDLE/config.json" <<'PY'
import json, sys
path = sys.argv[1]
c = json.load(open(path))
c["process"]["terminal"] = False
c["process"]["args"] = ["sh", "-c", "echo hello from berth; ps"]
json.dump(c, open(path, "w"), indent=2)
PY

ID=quickstart-$$
echo "== berth-runtime run --bundle $BUNDLE $ID"
"$RT" run --bundle "$BUNDLE" "$ID" </dev/null
