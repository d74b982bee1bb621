#!/usr/bin/env bash
# test.sh — the project's whole check, as CI runs it: system packages, formatting, lints,
# then every test of the workspace. Tests that need root (real cgroups, namespaces,
# containers) run when this runs as root, which is how CI runs it.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

echo "== cargo fmt --all -- --check"
cargo fmt --all -- --check

echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

echo "== cargo test --workspace"
if [ "$(id -u)" -ne 0 ]; then
    echo "note: not root: tests that need root will skip themselves" >&2
fi
# --no-fail-fast: one failing test binary must not hide the results of the others.
cargo test --workspace --no-fail-fast

# berth-runtime under docker, podman and containerd next to runc (tests/clients/run.sh:
# installs docker.io/containerd/podman, starts private daemons in a network namespace of
# its own; ~2 minutes of checks). BERTH_CLIENT_TESTS=0 skips it (needs root). The daemons
# are third-party software with timing of their own: a failing matrix is run once more,
# and only a failure that repeats fails the run.
if [ "${BERTH_CLIENT_TESTS:-1}" = 1 ] && [ "$(id -u)" -eq 0 ]; then
    echo "== tests/clients/run.sh"
    tests/clients/install.sh
    cargo build --release -p berth-cli
    if ! tests/clients/run.sh; then
        echo "== the client matrix failed; running it once more"
        tests/clients/run.sh
    fi
fi
