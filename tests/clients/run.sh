#!/usr/bin/env bash
# run.sh — berth-runtime as a drop-in runtime under docker, podman and containerd, next to
# runc: the same checks through each client with each runtime, then a table
#   check | runc | berth-runtime   (PASS / FAIL: reason / SKIP: reason)
#
#   tests/clients/run.sh [--runtime PATH] [--ref PATH] [--only docker|podman|containerd]
#                        [--checks REGEX] [--keep] [--out DIR]
#
# --runtime: berth-runtime to test (default target/x86_64-unknown-linux-gnu/release/
# berth-runtime; copied into the work dir, so a rebuild during the run changes nothing);
# --ref: the reference runtime (default: runc from PATH); --only: one client (repeatable);
# --checks: only the checks whose "client check" name matches the (extended) regex;
# --keep: leave the work dir (logs, argv logs, daemon state) in place; --out DIR: copy the
# logs, argv logs and table there at the end. About 2-4 minutes for all three clients.
#
# Everything it starts is its own: containerd, dockerd and podman with state under one work
# dir (/tmp/bc.XXXXXX, short on purpose: podman's runroot holds unix sockets), in a network
# namespace of its own (unshare -n; docker0, podman's bridges and their iptables rules exist
# only there; the only addresses used are 127.0.0.1 and container names). The runtimes are
# registered through argv-logging wrappers ($WORK/bin/rt-ref, $WORK/bin/rt-berth, log in
# $WORK/argv-*.log). Images are made locally from Debian's static busybox: docker import,
# podman import, and a hand-made OCI archive for ctr image import. On exit (trap) every
# daemon is stopped by its pid and the work dir is removed.
# Needs root and the packages of tests/clients/install.sh. Exit status: 1 when a check that
# passes with the reference runtime fails with berth-runtime, else 0.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=daemons.sh
. "$HERE/daemons.sh"
RUNTIME=$ROOT/target/x86_64-unknown-linux-gnu/release/berth-runtime
REF=$(command -v runc || true)
ONLY=()
KEEP=0
OUT=""
CHECKS=""
while [ $# -gt 0 ]; do
    case "$1" in
        --runtime) RUNTIME=$2; shift 2 ;;
        --ref) REF=$2; shift 2 ;;
        --only) ONLY+=("$2"); shift 2 ;;
        --keep) KEEP=1; shift ;;
        --checks) CHECKS=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
        *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
[ ${#ONLY[@]} -eq 0 ] && ONLY=(docker podman containerd)

if [ "$(id -u)" -ne 0 ]; then
    echo "run.sh: needs root" >&2
    exit 2
fi
for b in dockerd containerd ctr podman runc busybox unshare ip curl jq; do
    command -v "$b" >/dev/null || { echo "run.sh: $b missing (tests/clients/install.sh)" >&2; exit 2; }
done
[ -x "$RUNTIME" ] || { echo "run.sh: no runtime at $RUNTIME (cargo build --release -p berth-cli)" >&2; exit 2; }
RUNTIME=$(readlink -f "$RUNTIME")
REF=$(readlink -f "$REF")

# A network namespace of our own for everything (daemons, bridges, iptables rules).
if [ -z "${BERTH_CLIENTS_NETNS:-}" ]; then
    exec unshare --net env BERTH_CLIENTS_NETNS=1 bash "$0" --runtime "$RUNTIME" --ref "$REF" \
        $(for o in "${ONLY[@]}"; do printf -- '--only %s ' "$o"; done) \
        $([ "$KEEP" = 1 ] && echo --keep) ${OUT:+--out "$OUT"} ${CHECKS:+--checks "$CHECKS"}
fi
ip link set lo up

DOCKER=/usr/bin/docker # not a newer client that may sit earlier in PATH
W=$(mktemp -d /tmp/bc.XXXXXX)
chmod 755 "$W"
mkdir -p "$W/bin" "$W/logs"
cd "$W" # conmon (cgroup v1) drops an "oom" file in its working directory
PIDS=()          # daemons we started, stopped in reverse order
CTR_NS=bc$$      # containerd namespace of the ctr checks (its runc root: /run/containerd/runc/NS)
START=$(date +%s)

log() { echo "[$(($(date +%s) - START))s] $*" >&2; }

PRE_CGROUPS=$(client_cgroups "$CTR_NS")
cleanup() {
    set +e
    # a runtime stuck in `create` (and its container init: same argv) holds up `rm -f`
    # and its daemon's shutdown: end those first
    for p in $(pgrep -f -- "^$W/bin/berth-runtime |^$REF .*--root $W/" 2>/dev/null); do
        kill -9 "$p" 2>/dev/null
    done
    if [ -S "$W/d.sock" ]; then
        ids=$($DOCKER -H "unix://$W/d.sock" ps -aq 2>/dev/null)
        [ -n "$ids" ] && timeout 60 $DOCKER -H "unix://$W/d.sock" rm -f $ids >/dev/null 2>&1
    fi
    if [ -f "$W/podman/containers.conf" ]; then
        podman_raw rm -af -t 0 >/dev/null 2>&1
        for n in $(podman_raw network ls -q 2>/dev/null); do
            [ "$n" = podman ] || podman_raw network rm -f "$n" >/dev/null 2>&1
        done
    fi
    if [ -S "$W/c.sock" ]; then
        for t in $(ctr --address "$W/c.sock" -n "$CTR_NS" task ls -q 2>/dev/null); do
            timeout 20 ctr --address "$W/c.sock" -n "$CTR_NS" task kill -s KILL "$t" >/dev/null 2>&1
            timeout 20 ctr --address "$W/c.sock" -n "$CTR_NS" task rm -f "$t" >/dev/null 2>&1
        done
        for c in $(ctr --address "$W/c.sock" -n "$CTR_NS" c ls -q 2>/dev/null); do
            ctr --address "$W/c.sock" -n "$CTR_NS" c rm "$c" >/dev/null 2>&1
        done
    fi
    local i
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        kill "${PIDS[i]}" 2>/dev/null
        for _ in $(seq 100); do kill -0 "${PIDS[i]}" 2>/dev/null || break; sleep 0.1; done
        kill -9 "${PIDS[i]}" 2>/dev/null
    done
    # containerd shims outlive containerd (their -address names our socket), and so may a
    # runtime or a container init stuck in `create` (its argv names our work dir): stop them
    for p in $(pgrep -f -- "-address $W/c.sock|$W/bin/" 2>/dev/null); do
        kill -9 "$p" 2>/dev/null
    done
    sleep 0.5
    if [ -n "$OUT" ]; then
        mkdir -p "$OUT"
        cp -r "$W/logs" "$W"/argv-*.log "$OUT/" 2>/dev/null
        [ -f "$W/table.txt" ] && cp "$W/table.txt" "$OUT/"
    fi
    # unmount whatever the daemons left mounted under the work dir, deepest first
    grep -o " $W[^ ]*" /proc/self/mounts | sort -r | while read -r m; do umount -l "$m"; done
    rm -rf "/run/containerd/runc/$CTR_NS"
    remove_new_cgroups "$PRE_CGROUPS" "$CTR_NS"
    if [ "$KEEP" = 1 ]; then
        echo "run.sh: kept $W" >&2
    else
        rm -rf "$W" 2>/dev/null || echo "run.sh: could not remove all of $W" >&2
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- runtimes (argv-logging)
cp "$RUNTIME" "$W/bin/berth-runtime"
for t in ref berth; do
    real=$REF
    [ "$t" = berth ] && real=$W/bin/berth-runtime
    cat >"$W/bin/rt-$t" <<EOF
#!/bin/bash
{ printf '%s' "\$(date +%T.%N | cut -c1-12)"; printf ' %q' "\$@"; echo; } >>$W/argv-$t.log
exec $real "\$@"
EOF
    chmod 755 "$W/bin/rt-$t"
done
RTNAME=(ref berth)
declare -A RTLABEL=([ref]="$(basename "$REF")" [berth]=berth-runtime)

# ---------------------------------------------------------------- results
declare -A RES
ORDER=()
record() { # client:check tag result
    local key=$1 tag=$2 res=$3
    [[ " ${ORDER[*]} " == *" $key "* ]] || ORDER+=("$key")
    RES[$key/$tag]=$res
}
# check CLIENT NAME FUNC: runs FUNC with $T (ref|berth) set; FUNC returns 0 pass, 1 fail
# (reason in $WHY), 2 skip (reason in $WHY)
check() {
    local client=$1 name=$2 fn=$3 rc
    [ -n "$CHECKS" ] && ! [[ "$client $name" =~ $CHECKS ]] && return 0
    WHY=""
    "$fn" >"$W/logs/$client-${name//[^A-Za-z0-9-]/_}-$T.out" 2>&1
    rc=$?
    case $rc in
        0) record "$client:$name" "$T" PASS ;;
        2) record "$client:$name" "$T" "SKIP: $WHY" ;;
        *) [ -z "$WHY" ] && WHY="rc=$rc"
           WHY=$(printf '%s' "$WHY" | tr '\n\t|' '   ' | cut -c1-160)
           record "$client:$name" "$T" "FAIL: $WHY" ;;
    esac
    log "$client $name (${RTLABEL[$T]}): ${RES[$client:$name/$T]}"
}
# expect "WHAT" CMD...: runs CMD, keeps its output in $OUTP; a failing CMD fails the check
OUTP=""
run() { OUTP=$("$@" 2>&1); local rc=$?; echo "\$ $* -> rc=$rc"; echo "$OUTP"; return $rc; }
fail() { WHY="$*${OUTP:+: $(printf '%s' "$OUTP" | tail -n 3)}"; return 1; }
has() { grep -q -- "$1" <<<"$OUTP"; }

# ---------------------------------------------------------------- image material
make_rootfs() {
    local r=$W/rootfs
    "$ROOT/scripts/busybox-rootfs.sh" "$r" >/dev/null
    cat >"$r/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$r/etc/group"
    mkdir -p "$r/www"
    echo berth-ok >"$r/www/index.html"
    tar --numeric-owner -C "$r" -cf "$W/rootfs.tar" .
    # an OCI image archive for ctr image import
    oci_archive "$W/rootfs.tar" docker.io/library/bbtest:latest "$W/bbtest-oci.tar"
    mkdir -p "$W/bind"
}

# ---------------------------------------------------------------- docker
DR() { D run --runtime "rt-$T" "$@"; }
dcg() { # CONTAINER CONTROLLER FILE: a file of the container's cgroup, seen from the host
    local id; id=$(D inspect -f '{{.Id}}' "$1")
    cat "/sys/fs/cgroup/$2/docker/$id/$3"
}

d_run_rm() { run DR --rm bbtest echo hello-from-docker || fail "run"; has hello-from-docker || fail "no output"; }
d_exit_code() {
    run DR --rm bbtest sh -c 'exit 42'; local rc=$?
    [ $rc -eq 42 ] || fail "exit $rc, want 42"
}
d_tty() { run timeout -k 5 20 $DOCKER -H "unix://$W/d.sock" run --runtime "rt-$T" --rm -t bbtest tty || fail "run -t"; has /dev/pts/ || fail "not a tty"; }
d_detach() { run DR -d --name "dd-$T" bbtest sh -c 'echo started-ok; exec sleep 1000' || fail "run -d"; sleep 0.5
    run D inspect -f '{{.State.Status}}' "dd-$T"; has running || fail "not running"; }
d_top() { run D top "dd-$T" || fail "top"; has "sleep 1000" || fail "no sleep in top"; }
d_exec() {
    run D exec -u nobody -w /tmp -e FOO=bar "dd-$T" sh -c 'echo "$(id -u) $(pwd) $FOO"' || fail "exec"
    has "65534 /tmp bar" || fail "wrong uid/cwd/env"
}
d_exec_tty() { run timeout -k 5 20 $DOCKER -H "unix://$W/d.sock" exec -t "dd-$T" tty || fail "exec -t"; has /dev/pts/ || fail "not a tty"; }
d_logs() { run D logs "dd-$T" || fail "logs"; has started-ok || fail "no output in logs"; }
d_pause() {
    run D pause "dd-$T" || fail "pause"
    run D inspect -f '{{.State.Status}}' "dd-$T"; has paused || fail "not paused"
    run cat "$(dcg_path "dd-$T" freezer)/freezer.state"; has FROZEN || fail "freezer not FROZEN"
    run D unpause "dd-$T" || fail "unpause"
    run D exec "dd-$T" echo alive || fail "exec after unpause"
}
dcg_path() { echo "/sys/fs/cgroup/$2/docker/$(D inspect -f '{{.Id}}' "$1")"; }
d_update() {
    run D update --memory 64m --memory-swap -1 --pids-limit 50 --cpu-shares 512 "dd-$T" || fail "update"
    run dcg "dd-$T" memory memory.limit_in_bytes; [ "$OUTP" = 67108864 ] || fail "memory.limit_in_bytes=$OUTP"
    run dcg "dd-$T" pids pids.max; [ "$OUTP" = 50 ] || fail "pids.max=$OUTP"
    run dcg "dd-$T" cpu cpu.shares; [ "$OUTP" = 512 ] || fail "cpu.shares=$OUTP"
    run D exec "dd-$T" cat /sys/fs/cgroup/memory/memory.limit_in_bytes
    [ "$OUTP" = 67108864 ] || fail "in the container: memory.limit_in_bytes=$OUTP"
}
d_stats() {
    run D stats --no-stream --format '{{.MemUsage}} {{.PIDs}}' "dd-$T" || fail "stats"
    [[ "$OUTP" =~ ^[1-9][0-9.]*[KMG]i?B\ /.*\ [1-9] ]] || fail "no usage/pids"
}
d_stop_rm() {
    run D stop -t 2 "dd-$T" || fail "stop"
    run D inspect -f '{{.State.Status}} {{.State.ExitCode}}' "dd-$T"; has "exited 137" || fail "state after stop"
    run D rm "dd-$T" || fail "rm"
}
d_kill_restart() {
    run DR -d --name "dk-$T" bbtest sleep 1000 || fail "run -d"
    run D kill "dk-$T" || fail "kill"
    run D inspect -f '{{.State.Status}} {{.State.ExitCode}}' "dk-$T"; has "exited 137" || fail "state after kill"
    run D start "dk-$T" || fail "start after kill"
    run D restart -t 1 "dk-$T" || fail "restart"
    run D inspect -f '{{.State.Status}}' "dk-$T"; has running || fail "not running after restart"
    run D rm -f "dk-$T" || fail "rm -f"
}
d_restart_policy() {
    run DR -d --name "dp-$T" --restart on-failure:2 bbtest sh -c 'exit 3' || fail "run"
    for _ in $(seq 50); do
        run D inspect -f '{{.RestartCount}} {{.State.Status}}' "dp-$T"
        has "2 exited" && break; sleep 0.2
    done
    has "2 exited" || fail "restart count/status"
    D rm -f "dp-$T" >/dev/null
}
d_oom() {
    run DR --name "do-$T" --memory 32m --memory-swap 32m bbtest sh -c 'tail /dev/zero'; local rc=$?
    run D inspect -f '{{.State.OOMKilled}} {{.State.ExitCode}}' "do-$T"
    D rm -f "do-$T" >/dev/null
    [ $rc -eq 137 ] || fail "exit $rc, want 137"
    has "true 137" || fail "OOMKilled/ExitCode"
}
d_pids_limit() {
    run DR --rm --pids-limit 10 bbtest sh -c 'cat /sys/fs/cgroup/pids/pids.max; for i in $(seq 20); do sleep 3 & done; wait'
    has '^10$' || fail "pids.max in the container"
    has "fork" || fail "20 forks succeeded"
}
d_restricted() {
    run DR --rm --read-only --cap-drop ALL --user 65534:65534 --hostname h-berth bbtest \
        sh -c 'hostname; id -u; touch /x || echo ro-ok; grep CapEff /proc/self/status' || fail "run"
    has h-berth || fail hostname; has '^65534$' || fail uid; has ro-ok || fail "root writable"
    has 'CapEff:.0000000000000000' || fail "caps left"
}
d_bind() {
    rm -f "$W/bind/d-$T"; echo from-host >"$W/bind/host-file"
    run DR --rm -v "$W/bind:/data" bbtest sh -c 'cat /data/host-file; echo x >/data/d-'"$T" || fail "rw bind"
    has from-host || fail "host file not seen"; [ -f "$W/bind/d-$T" ] || fail "file not on the host"
    run DR --rm -v "$W/bind:/data:ro" bbtest sh -c 'touch /data/y || echo ro-ok'; has ro-ok || fail ":ro bind writable"
}
d_init() { run DR --rm --init bbtest ps -o pid,comm || fail run; has '^ *1 .*init' || fail "pid 1 is not docker-init"; }
d_net_none() { run DR --rm --network none bbtest ip -o link || fail run
    [ "$(grep -c . <<<"$OUTP")" = 1 ] && has ': lo:' || fail "interfaces"; }
d_net_host() { run DR --rm --network host bbtest ip -o link || fail run; has docker0 || fail "host interfaces not seen"; }
d_port() {
    local port=18080; [ "$T" = berth ] && port=18081
    run DR -d --name "dh-$T" -p "127.0.0.1:$port:80" bbtest httpd -f -p 80 -h /www || fail "run -p"
    for _ in $(seq 30); do OUTP=$(curl -s -m 2 "http://127.0.0.1:$port/") && break; sleep 0.2; done
    D rm -f "dh-$T" >/dev/null
    has berth-ok || fail "no answer on 127.0.0.1:$port"
}
# a shell line fetching http://NAME/ in a container: the static busybox's wget crashes in
# glibc's NSS for names, so resolve with nslookup (its own DNS client) and fetch by address
by_name() {
    local script='for i in 1 2 3 4 5 6; do
  a=$(nslookup NAME 2>/dev/null | sed -n "/^Name:/,\$ s/^Address: *\([0-9.]*\).*/\1/p" | head -n 1)
  [ -n "$a" ] && printf "GET / HTTP/1.0\r\n\r\n" | nc -w 2 "$a" 80 | grep berth-ok && exit 0
  sleep 0.5
done
nslookup NAME; exit 1'
    echo "${script//NAME/$1}"
}
d_user_net() {
    D network create "bn-$T" >/dev/null
    run DR -d --name "srv-$T" --network "bn-$T" bbtest httpd -f -p 80 -h /www || { D network rm "bn-$T"; fail "server"; }
    run DR --rm --network "bn-$T" bbtest sh -c "$(by_name "srv-$T")"
    local rc=$?
    D rm -f "srv-$T" >/dev/null; D network rm "bn-$T" >/dev/null
    [ $rc -eq 0 ] && has berth-ok || fail "client could not reach srv-$T by name"
}

docker_checks() {
    for T in "${RTNAME[@]}"; do
        check docker "run --rm" d_run_rm
        check docker "exit code" d_exit_code
        check docker "run -t" d_tty
        check docker "run -d" d_detach
        check docker "top" d_top
        check docker "exec -u -w -e" d_exec
        check docker "exec -t" d_exec_tty
        check docker "logs" d_logs
        check docker "pause/unpause" d_pause
        check docker "update mem/pids/cpu" d_update
        check docker "stats --no-stream" d_stats
        check docker "stop + rm" d_stop_rm
        check docker "kill + start/restart" d_kill_restart
        check docker "--restart on-failure" d_restart_policy
        check docker "--memory OOM kill" d_oom
        check docker "--pids-limit" d_pids_limit
        check docker "read-only/cap-drop/user/hostname" d_restricted
        check docker "bind mounts" d_bind
        check docker "--init" d_init
        check docker "--network none" d_net_none
        check docker "--network host" d_net_host
        check docker "-p on the bridge" d_port
        check docker "user network by name" d_user_net
    done
}

# ---------------------------------------------------------------- podman
podman_raw() {
    timeout 120 env CONTAINERS_CONF="$W/podman/containers.conf" \
        CONTAINERS_STORAGE_CONF="$W/podman/storage.conf" \
        CONTAINERS_REGISTRIES_CONF="$W/podman/registries.conf" podman --cgroup-manager cgroupfs "$@"
}
P() { podman_raw --runtime "$W/bin/rt-$T" "$@"; }
Pt() { timeout -k 5 20 env CONTAINERS_CONF="$W/podman/containers.conf" \
        CONTAINERS_STORAGE_CONF="$W/podman/storage.conf" \
        CONTAINERS_REGISTRIES_CONF="$W/podman/registries.conf" \
        podman --cgroup-manager cgroupfs --runtime "$W/bin/rt-$T" "$@"; }
setup_podman() {
    # podman 4.3 (root) raises nofile and nproc to 1048576 unless told: above this host's hard
    # limits, and without CAP_SYS_RESOURCE no runtime may raise them
    local NOFILE NPROC
    NOFILE=$(ulimit -Hn); NPROC=$(ulimit -Hu)
    [ "$NOFILE" = unlimited ] || [ "$NOFILE" -gt 1048576 ] && NOFILE=1048576
    # (nproc: the shell's hard limit was still refused for conmon's child; 4096 is plenty)
    [ "$NPROC" = unlimited ] || [ "$NPROC" -gt 4096 ] && NPROC=4096
    mkdir -p "$W/podman"/{networks,tmp}
    cat >"$W/podman/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$NOFILE:$NOFILE", "nproc=$NPROC:$NPROC"]
log_driver = "k8s-file"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$W/podman/events.log"
tmp_dir = "$W/podman/tmp"
volume_path = "$W/podman/volumes"
[engine.runtimes]
rt-ref = ["$W/bin/rt-ref"]
rt-berth = ["$W/bin/rt-berth"]
[network]
network_backend = "netavark"
network_config_dir = "$W/podman/networks"
EOF
    cat >"$W/podman/storage.conf" <<EOF
[storage]
driver = "overlay"
runroot = "$W/pr"
graphroot = "$W/podman/root"
EOF
    echo 'unqualified-search-registries = []' >"$W/podman/registries.conf"
    T=ref
    P import --change 'CMD ["sh"]' "$W/rootfs.tar" localhost/bbtest:latest >"$W/logs/podman-import.log" 2>&1
}
PR() { P run "$@"; }
pcg() { echo "/sys/fs/cgroup/$2/libpod_parent/libpod-$(P inspect -f '{{.Id}}' "$1")"; }

p_run_rm() { run PR --rm bbtest echo hello-from-podman || fail run; has hello-from-podman || fail "no output"; }
p_exit_code() { run PR --rm bbtest sh -c 'exit 42'; local rc=$?; [ $rc -eq 42 ] || fail "exit $rc, want 42"; }
p_tty() { run Pt run --rm -t bbtest tty || fail "run -t"; has /dev/pts/ || fail "not a tty"; }
p_detach() { run PR -d --name "pd-$T" bbtest sh -c 'echo started-ok; exec sleep 1000' || fail "run -d"; sleep 0.5
    run P inspect -f '{{.State.Status}}' "pd-$T"; has running || fail "not running"; }
p_top() { run P top "pd-$T" || fail top; has "sleep 1000" || fail "no sleep in top"; }
p_exec() {
    run P exec -u nobody -w /tmp -e FOO=bar "pd-$T" sh -c 'echo "$(id -u) $(pwd) $FOO"' || fail exec
    has "65534 /tmp bar" || fail "wrong uid/cwd/env"
}
p_exec_tty() { run Pt exec -t "pd-$T" tty || fail "exec -t"; has /dev/pts/ || fail "not a tty"; }
p_logs() { run P logs "pd-$T" || fail logs; has started-ok || fail "no output in logs"; }
p_pause() {
    run P pause "pd-$T" || fail pause
    run P inspect -f '{{.State.Status}}' "pd-$T"; has paused || fail "not paused"
    run P unpause "pd-$T" || fail unpause
    run P exec "pd-$T" echo alive || fail "exec after unpause"
}
p_update() {
    P update --help >/dev/null 2>&1 || { WHY="podman $(podman --version | cut -d' ' -f3) has no update"; return 2; }
    # podman 4.3's update has no --pids-limit
    run P update --memory 64m --cpu-shares 512 "pd-$T" || fail update
    run P exec "pd-$T" cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.shares
    has '^67108864$' && has '^512$' || fail "limits not applied"
}
p_stats() {
    run P stats --no-stream --format '{{.MemUsage}} {{.PIDs}}' "pd-$T" || fail stats
    [[ "$OUTP" =~ ^[1-9][0-9.]*[kKMG]i?B\ /.*\ [1-9] ]] || fail "no usage/pids"
}
p_stop_rm() {
    run P stop -t 2 "pd-$T" || fail stop
    run P inspect -f '{{.State.Status}} {{.State.ExitCode}}' "pd-$T"; has "exited 137" || fail "state after stop"
    run P rm "pd-$T" || fail rm
}
p_kill_restart() {
    run PR -d --name "pk-$T" bbtest sleep 1000 || fail "run -d"
    run P kill "pk-$T" || fail kill
    run P wait "pk-$T"
    run P inspect -f '{{.State.Status}} {{.State.ExitCode}}' "pk-$T"; has "exited 137" || fail "state after kill"
    run P start "pk-$T" || fail "start after kill"
    run P restart -t 1 "pk-$T" || fail restart
    run P inspect -f '{{.State.Status}}' "pk-$T"; has running || fail "not running after restart"
    run P rm -f -t 0 "pk-$T" || fail "rm -f"
}
p_oom() {
    run PR --name "po-$T" --memory 32m --memory-swap 32m bbtest sh -c 'tail /dev/zero'; local rc=$?
    run P inspect -f '{{.State.OOMKilled}} {{.State.ExitCode}}' "po-$T"
    P rm -f "po-$T" >/dev/null
    [ $rc -eq 137 ] || fail "exit $rc, want 137"
    if has "false 137"; then
        WHY="exit 137, but podman 4.3 reports OOMKilled=false here with any runtime (conmon, cgroup v1)"
        return 2
    fi
    has "true 137" || fail "OOMKilled/ExitCode"
}
p_pids_limit() {
    run PR --rm --pids-limit 10 bbtest sh -c 'cat /sys/fs/cgroup/pids/pids.max; for i in $(seq 20); do sleep 3 & done; wait'
    has '^10$' || fail "pids.max in the container"; has fork || fail "20 forks succeeded"
}
p_restricted() {
    run PR --rm --read-only --cap-drop ALL --user 65534:65534 --hostname h-berth bbtest \
        sh -c 'hostname; id -u; touch /x || echo ro-ok; grep CapEff /proc/self/status' || fail run
    has h-berth || fail hostname; has '^65534$' || fail uid; has ro-ok || fail "root writable"
    has 'CapEff:.0000000000000000' || fail "caps left"
}
p_bind() {
    rm -f "$W/bind/p-$T"; echo from-host >"$W/bind/host-file"
    run PR --rm -v "$W/bind:/data" bbtest sh -c 'cat /data/host-file; echo x >/data/p-'"$T" || fail "rw bind"
    has from-host || fail "host file not seen"; [ -f "$W/bind/p-$T" ] || fail "file not on the host"
    run PR --rm -v "$W/bind:/data:ro" bbtest sh -c 'touch /data/y || echo ro-ok'; has ro-ok || fail ":ro bind writable"
}
p_init() { run PR --rm --init bbtest ps -o pid,comm || fail run; has '^ *1 .*init' || fail "pid 1 is not catatonit"; }
p_net_none() { run PR --rm --network none bbtest ip -o link || fail run
    [ "$(grep -c . <<<"$OUTP")" = 1 ] && has ': lo:' || fail interfaces; }
p_net_host() { run PR --rm --network host bbtest ip -o link || fail run; has ': lo:' && [ "$(grep -c . <<<"$OUTP")" -ge 1 ] || fail "host interfaces"
    [ "$(grep -c . <<<"$OUTP")" = "$(ip -o link | grep -c .)" ] || fail "not the host's interfaces"; }
p_port() {
    local port=18090; [ "$T" = berth ] && port=18091
    run PR -d --name "ph-$T" -p "127.0.0.1:$port:80" bbtest httpd -f -p 80 -h /www || fail "run -p"
    for _ in $(seq 30); do OUTP=$(curl -s -m 2 "http://127.0.0.1:$port/") && break; sleep 0.2; done
    P rm -f -t 0 "ph-$T" >/dev/null
    has berth-ok || fail "no answer on 127.0.0.1:$port"
}
p_slirp() {
    local port=18092; [ "$T" = berth ] && port=18093
    run PR -d --name "ps-$T" --network slirp4netns -p "127.0.0.1:$port:80" bbtest httpd -f -p 80 -h /www || fail "run slirp4netns"
    for _ in $(seq 30); do OUTP=$(curl -s -m 2 "http://127.0.0.1:$port/") && break; sleep 0.2; done
    local ok=1; has berth-ok || ok=0
    run P exec "ps-$T" ip -o link
    P rm -f -t 0 "ps-$T" >/dev/null
    [ $ok = 1 ] || fail "no answer on 127.0.0.1:$port"
    has tap0 || fail "no tap0 in the container"
}
p_user_net() {
    P network create "pn-$T" >/dev/null
    run PR -d --name "psrv-$T" --network "pn-$T" bbtest httpd -f -p 80 -h /www || { P network rm -f "pn-$T"; fail server; }
    run PR --rm --network "pn-$T" bbtest sh -c "$(by_name "psrv-$T")"
    local rc=$?
    P rm -f -t 0 "psrv-$T" >/dev/null; P network rm -f "pn-$T" >/dev/null
    [ $rc -eq 0 ] && has berth-ok || fail "client could not reach psrv-$T by name"
}
p_build() {
    mkdir -p "$W/build-$T"
    cat >"$W/build-$T/Dockerfile" <<'EOF'
FROM localhost/bbtest:latest
RUN echo one >/one
RUN mkdir -p /opt/x && echo two >/opt/x/two
RUN cat /one /opt/x/two >/both && id -u >>/both
CMD ["cat", "/both"]
EOF
    run P build --pull=never -t "localhost/bbbuilt-$T" "$W/build-$T" || fail build
    run PR --rm "localhost/bbbuilt-$T" || fail "run the built image"
    P rmi -f "localhost/bbbuilt-$T" >/dev/null 2>&1
    [ "$(tr '\n' ' ' <<<"$OUTP")" = "one two 0 " ] || fail "wrong content"
}

podman_checks() {
    for T in "${RTNAME[@]}"; do
        check podman "run --rm" p_run_rm
        check podman "exit code" p_exit_code
        check podman "run -t" p_tty
        check podman "run -d" p_detach
        check podman "top" p_top
        check podman "exec -u -w -e" p_exec
        check podman "exec -t" p_exec_tty
        check podman "logs" p_logs
        check podman "pause/unpause" p_pause
        check podman "update mem/cpu" p_update
        check podman "stats --no-stream" p_stats
        check podman "stop + rm" p_stop_rm
        check podman "kill + start/restart" p_kill_restart
        check podman "--memory OOM kill" p_oom
        check podman "--pids-limit" p_pids_limit
        check podman "read-only/cap-drop/user/hostname" p_restricted
        check podman "bind mounts" p_bind
        check podman "--init" p_init
        check podman "--network none" p_net_none
        check podman "--network host" p_net_host
        check podman "-p on the bridge" p_port
        check podman "slirp4netns + -p" p_slirp
        check podman "user network by name" p_user_net
        check podman "build (3 RUN steps)" p_build
    done
}

# ---------------------------------------------------------------- containerd (ctr)
C() { timeout 90 ctr --address "$W/c.sock" -n "$CTR_NS" "$@"; }
IMG=docker.io/library/bbtest:latest
CR() { C run --runc-binary "$W/bin/rt-$T" "$@"; }
ccg() { echo "/sys/fs/cgroup/$2/$CTR_NS/$1"; }

c_run_rm() { run CR --rm "$IMG" "cr-$T" echo hello-from-ctr || fail run; has hello-from-ctr || fail "no output"; }
c_exit_code() { run CR --rm "$IMG" "ce-$T" sh -c 'exit 42'; local rc=$?; [ $rc -eq 42 ] || fail "exit $rc, want 42"; }
c_tty() {
    run script -qec "timeout -k 5 20 ctr --address $W/c.sock -n $CTR_NS run --runc-binary $W/bin/rt-$T --rm -t $IMG ct-$T tty" /dev/null </dev/null || fail "run -t"
    has /dev/pts/ || fail "not a tty"
}
c_detach() { run CR -d "$IMG" "cd-$T" sleep 1000 || fail "run -d"; sleep 0.3
    run C task ls; grep -q "cd-$T .*RUNNING" <<<"$OUTP" || fail "not RUNNING"; }
c_ps() { run C task ps "cd-$T" || fail "task ps"; [ "$(grep -c '^[0-9]' <<<"$OUTP")" -ge 1 ] || fail "no pids"; }
c_exec() {
    run C task exec --exec-id e1 --user 65534 --cwd /tmp "cd-$T" env FOO=bar sh -c 'echo "$(id -u) $(pwd) $FOO"' || fail exec
    has "65534 /tmp bar" || fail "wrong uid/cwd/env"
}
c_pause() {
    run C task pause "cd-$T" || fail pause
    run C task ls; grep -q "cd-$T .*PAUSED" <<<"$OUTP" || fail "not PAUSED"
    run C task resume "cd-$T" || fail resume
    run C task exec --exec-id e2 "cd-$T" echo alive || fail "exec after resume"
}
c_metrics() {
    run C task metrics --format json "cd-$T" || fail metrics
    jq -e '.memory.usage.usage > 0 and .pids.current > 0' <<<"$OUTP" >/dev/null || fail "no memory/pids usage"
}
c_kill_delete() {
    run C task kill -s KILL "cd-$T" || fail kill
    for _ in $(seq 30); do run C task ls; grep -q "cd-$T .*STOPPED" <<<"$OUTP" && break; sleep 0.2; done
    grep -q "cd-$T .*STOPPED" <<<"$OUTP" || fail "not STOPPED"
    run C task delete "cd-$T" || fail "task delete"
    run C container delete "cd-$T" || fail "container delete"
}
c_memory() {
    run CR -d --memory-limit 67108864 "$IMG" "cm-$T" sleep 1000 || fail run
    run cat "$(ccg "cm-$T" memory)/memory.limit_in_bytes"
    C task kill -s KILL "cm-$T" >/dev/null; sleep 0.3; C task delete -f "cm-$T" >/dev/null 2>&1; C container delete "cm-$T" >/dev/null 2>&1
    [ "$OUTP" = 67108864 ] || fail "memory.limit_in_bytes=$OUTP"
}
c_net_host() { run CR --rm --net-host "$IMG" "cn-$T" ip -o link || fail run
    [ "$(grep -c . <<<"$OUTP")" = "$(ip -o link | grep -c .)" ] || fail "not the host's interfaces"; }

containerd_checks() {
    C image import "$W/bbtest-oci.tar" >"$W/logs/ctr-import.log" 2>&1
    for T in "${RTNAME[@]}"; do
        check containerd "run --rm" c_run_rm
        check containerd "exit code" c_exit_code
        check containerd "run -t" c_tty
        check containerd "run -d" c_detach
        check containerd "task ps" c_ps
        check containerd "task exec" c_exec
        check containerd "task pause/resume" c_pause
        check containerd "task metrics" c_metrics
        check containerd "task kill + delete" c_kill_delete
        check containerd "--memory-limit" c_memory
        check containerd "--net-host" c_net_host
    done
}

# ---------------------------------------------------------------- main
make_rootfs
start_containerd || exit 1
log "work dir $W; runtimes: ${RTLABEL[ref]}=$REF, berth-runtime=$RUNTIME"
for client in "${ONLY[@]}"; do
    case $client in
        docker) start_dockerd bbtest:latest --add-runtime "rt-ref=$W/bin/rt-ref" \
                    --add-runtime "rt-berth=$W/bin/rt-berth" && docker_checks ;;
        podman) setup_podman && podman_checks ;;
        containerd) containerd_checks ;;
        *) echo "run.sh: unknown client $client" >&2 ;;
    esac
done

{
    printf '| check | %s | berth-runtime |\n|---|---|---|\n' "${RTLABEL[ref]}"
    for k in "${ORDER[@]}"; do
        printf '| %s | %s | %s |\n' "${k/:/ }" "${RES[$k/ref]:-}" "${RES[$k/berth]:-}"
    done
} | tee "$W/table.txt"
# berth-runtime's column: failed = fails where the reference passes; skipped = SKIP, or
# failing with the reference too (a client or host limit, not berth's)
pass=0 regress=0 skip=0 both=0
for k in "${ORDER[@]}"; do
    case "${RES[$k/berth]:-}" in
        PASS) pass=$((pass + 1)) ;;
        SKIP*) skip=$((skip + 1)) ;;
        *) if [ "${RES[$k/ref]:-}" = PASS ]; then regress=$((regress + 1)); else both=$((both + 1)); fi ;;
    esac
done
echo
echo "berth-runtime under docker/podman/containerd: $regress check(s) fail where ${RTLABEL[ref]} passes, $both fail with both; $(($(date +%s) - START))s"
echo "clients: $pass passed, $regress failed, $((skip + both)) skipped"
[ $regress -eq 0 ]
