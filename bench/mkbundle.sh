#!/usr/bin/env bash
# mkbundle.sh DIR VARIANT ARGS_JSON — an OCI bundle for the bench: busybox rootfs
# (scripts/busybox-rootfs.sh) + the config `runc spec` writes, with terminal false and a
# read-only root, so every runtime gets the same, standard config.
#   VARIANT: default (runc spec's namespaces: pid, net, ipc, uts, mnt)
#            nonetns (no network namespace: shares the host's)
#            limits  (default + memory.limit 256 MiB + pids.limit 64)
set -euo pipefail
DIR=${1:?usage: mkbundle.sh DIR VARIANT ARGS_JSON}
VARIANT=${2:-default}
ARGS=${3:-'["/bin/true"]'}
HERE=$(cd "$(dirname "$0")" && pwd)
RUNC=${RUNC:-runc}

rm -rf "$DIR"
mkdir -p "$DIR"
"$HERE/../scripts/busybox-rootfs.sh" "$DIR/rootfs"
(cd "$DIR" && "$RUNC" spec)
python3 - "$DIR/config.json" "$VARIANT" "$ARGS" <<'PY'
import json, sys
path, variant, args = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
c = json.load(open(path))
c["process"]["terminal"] = False
c["process"]["args"] = args
c["root"]["readonly"] = True
linux = c.setdefault("linux", {})
if variant == "nonetns":
    linux["namespaces"] = [n for n in linux.get("namespaces", []) if n["type"] != "network"]
elif variant == "limits":
    res = linux.setdefault("resources", {})
    res["memory"] = {"limit": 256 * 1024 * 1024}
    res["pids"] = {"limit": 64}
elif variant != "default":
    sys.exit(f"mkbundle.sh: unknown variant {variant!r}")
json.dump(c, open(path, "w"), indent=2)
PY
