# daemons.sh — sourced by tests/clients/run.sh and bench/clients.sh: a local busybox image
# as an OCI archive, and private containerd/dockerd instances under $W (the caller's work
# dir; it provides log, PIDS, DOCKER and $W/logs).

# oci_archive ROOTFS_TAR NAME OUT: a one-layer OCI image archive of ROOTFS_TAR for
# `ctr image import`, named NAME (as containerd's image name annotation).
oci_archive() {
    local tarball=$1 name=$2 out=$3 o=$W/oci L C M ls cs ms
    mkdir -p "$o/blobs/sha256"
    L=$(sha256sum "$tarball" | cut -d' ' -f1); ls=$(stat -c %s "$tarball")
    cp "$tarball" "$o/blobs/sha256/$L"
    printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$L" >"$o/config"
    C=$(sha256sum "$o/config" | cut -d' ' -f1); cs=$(stat -c %s "$o/config"); mv "$o/config" "$o/blobs/sha256/$C"
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' "$C" "$cs" "$L" "$ls" >"$o/manifest"
    M=$(sha256sum "$o/manifest" | cut -d' ' -f1); ms=$(stat -c %s "$o/manifest"); mv "$o/manifest" "$o/blobs/sha256/$M"
    printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"latest"}}]}' "$M" "$ms" "$name" >"$o/index.json"
    echo '{"imageLayoutVersion":"1.0.0"}' >"$o/oci-layout"
    tar -C "$o" -cf "$out" .
}

wait_sock() { # SOCK PID NAME LOG
    for _ in $(seq 300); do
        [ -S "$1" ] && return 0
        kill -0 "$2" 2>/dev/null || break
        sleep 0.1
    done
    echo "$(basename "$0"): $3 did not come up; its log:" >&2
    tail -n 30 "$4" >&2
    return 1
}

start_containerd() {
    mkdir -p "$W/containerd"
    cat >"$W/containerd/config.toml" <<EOC
version = 2
root = "$W/containerd/root"
state = "$W/containerd/state"
oom_score = 0
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$W/c.sock"
[ttrpc]
  address = "$W/c.sock.ttrpc"
[debug]
  level = "info"
[plugins."io.containerd.runtime.v1.linux"]
  shim_debug = false
EOC
    containerd --config "$W/containerd/config.toml" >"$W/logs/containerd.log" 2>&1 &
    PIDS+=($!)
    wait_sock "$W/c.sock" $! containerd "$W/logs/containerd.log"
}

D() { timeout 90 $DOCKER -H "unix://$W/d.sock" "$@"; }
# start_dockerd IMAGE [--add-runtime NAME=PATH]...: a dockerd on our containerd, cgroupfs
# driver, ulimits within this host's hard limits; IMAGE imported from $W/rootfs.tar
start_dockerd() {
    local image=$1; shift
    mkdir -p "$W/docker"
    echo '{}' >"$W/docker/daemon.json"
    dockerd --config-file "$W/docker/daemon.json" \
        --data-root "$W/docker/data" --exec-root "$W/docker/exec" --pidfile "$W/docker/pid" \
        -H "unix://$W/d.sock" --containerd "$W/c.sock" \
        --exec-opt native.cgroupdriver=cgroupfs --default-ulimit nofile=10240:10240 \
        --oom-score-adjust 0 --storage-driver overlay2 --log-level warn "$@" \
        >"$W/logs/dockerd.log" 2>&1 &
    PIDS+=($!)
    wait_sock "$W/d.sock" $! dockerd "$W/logs/dockerd.log" || return 1
    for _ in $(seq 100); do D version >/dev/null 2>&1 && break; sleep 0.2; done
    D import --change 'CMD ["sh"]' "$W/rootfs.tar" "$image" >/dev/null
}

# The cgroup parents the clients make (docker, libpod_parent, containerd's namespace NS)
# that exist now, one per line; cleanup removes the empty ones that weren't there before.
client_cgroups() {
    ls -d /sys/fs/cgroup/*/docker /sys/fs/cgroup/*/libpod_parent /sys/fs/cgroup/*/"$1" \
        /sys/fs/cgroup/docker /sys/fs/cgroup/libpod_parent /sys/fs/cgroup/"$1" 2>/dev/null
}
remove_new_cgroups() { # PRE NS
    local cg
    for cg in $(client_cgroups "$2"); do
        grep -qxF "$cg" <<<"$1" && continue
        find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null
    done
    return 0
}
