#!/usr/bin/env bash
# bench/clients.sh — start latency through the clients: `docker run --rm --network none IMG
# true` and `ctr run --rm IMG ID true`, with runc, crun and berth-runtime side by side.
#
# usage: bench/clients.sh [--runtime PATH] [--runs N] [--warmup N] [--passes N]
#                         [--only docker|containerd] [--argv-log] [--keep] [--out DIR]
#   --runtime PATH  berth-runtime to measure (default target/x86_64-unknown-linux-gnu/release/
#                   berth-runtime; copied into the work dir first, so a rebuild changes nothing)
#   --runs N        timed runs per command (default 25); --warmup N (default 3)
#   --passes N      N hyperfine invocations per client (default 1), the runtimes' order
#                   rotated each pass (hyperfine times one command after the other, so load
#                   that comes and goes favours whoever runs in the quiet part); the table
#                   then has a row per pass and the median of the pass medians
#   --only CLIENT   docker or containerd (repeatable; default both)
#   --argv-log      register each runtime through a bash wrapper that logs each call's start
#                   time, duration, exit status and argv (argv-NAME.log): for diagnosis only,
#                   every call then costs an extra bash start (a few ms)
#   --keep          leave the work dir; --out DIR: copy results (hyperfine JSON/markdown,
#                   table, daemon logs, argv logs) there. Default out: bench/results/clients-<ts>
#   env RUNC, CRUN  the runtimes compared with (default: runc and crun from PATH)
#
# One private containerd and one dockerd (state under a mktemp work dir), all in a network
# namespace of their own (as tests/clients/run.sh does) AND a private mount namespace in
# which /sys/fs/cgroup/unified/cgroup.controllers reads empty (an empty file bound over it):
# on this hybrid-cgroup host crun 1.8 refuses to run otherwise ("cgroups in hybrid mode not
# supported"); every runtime and daemon sees that same namespace. /run/containerd is a
# tmpfs of its own there too (the shims' runc roots and fifos don't meet anyone else's).
# dockerd: cgroupfs driver, --default-ulimit nofile=10240:10240, --oom-score-adjust 0,
# runtimes runc (default), crun and berth (--add-runtime). ctr: --runc-binary per command.
# Image: Debian's static busybox (docker import; a hand-made OCI archive for ctr import).
# Each client is ONE hyperfine invocation holding the three runtimes. On exit every daemon
# is stopped by its pid, mounts under the work dir are undone and the work dir removed.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=../tests/clients/daemons.sh
. "$ROOT/tests/clients/daemons.sh"
RUNTIME=$ROOT/target/x86_64-unknown-linux-gnu/release/berth-runtime
RUNS=25
WARMUP=3
PASSES=1
ONLY=()
ARGVLOG=0
KEEP=0
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --runtime) RUNTIME=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        --warmup) WARMUP=$2; shift 2 ;;
        --passes) PASSES=$2; shift 2 ;;
        --only) ONLY+=("$2"); shift 2 ;;
        --argv-log) ARGVLOG=1; shift ;;
        --keep) KEEP=1; shift ;;
        --out) OUT=$2; shift 2 ;;
        -h|--help) sed -n '2,32p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "clients.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
[ ${#ONLY[@]} -eq 0 ] && ONLY=(docker containerd)

if [ "$(id -u)" -ne 0 ]; then
    echo "clients.sh: needs root" >&2
    exit 2
fi
RUNC=$(command -v "${RUNC:-runc}") || { echo "clients.sh: runc missing" >&2; exit 2; }
CRUN=$(command -v "${CRUN:-crun}") || { echo "clients.sh: crun missing" >&2; exit 2; }
for b in dockerd containerd ctr busybox unshare ip hyperfine jq; do
    command -v "$b" >/dev/null || { echo "clients.sh: $b missing (tests/clients/install.sh; hyperfine)" >&2; exit 2; }
done
[ -x /usr/bin/docker ] || { echo "clients.sh: /usr/bin/docker missing (docker.io)" >&2; exit 2; }
[ -x "$RUNTIME" ] || { echo "clients.sh: no runtime at $RUNTIME (cargo build --release -p berth-cli)" >&2; exit 2; }
RUNTIME=$(readlink -f "$RUNTIME")
RUNC=$(readlink -f "$RUNC")
CRUN=$(readlink -f "$CRUN")

# Private network + mount namespaces for everything that follows (daemons included).
if [ -z "${BERTH_CLIENTS_BENCH_NS:-}" ]; then
    OUT=${OUT:-$HERE/results/clients-$(date +%Y%m%d-%H%M%S)}
    mkdir -p "$OUT"
    OUT=$(cd "$OUT" && pwd)
    exec unshare --net --mount --propagation private \
        env BERTH_CLIENTS_BENCH_NS=1 RUNC="$RUNC" CRUN="$CRUN" bash "$0" \
        --runtime "$RUNTIME" --runs "$RUNS" --warmup "$WARMUP" --passes "$PASSES" --out "$OUT" \
        $(for o in "${ONLY[@]}"; do printf -- '--only %s ' "$o"; done) \
        $([ "$ARGVLOG" = 1 ] && echo --argv-log) $([ "$KEEP" = 1 ] && echo --keep)
fi

# ---------------------------------------------------------------- inside the namespaces
ip link set lo up
DOCKER=/usr/bin/docker # not a newer client that may sit earlier in PATH
W=$(mktemp -d /tmp/bcb.XXXXXX)
chmod 755 "$W"
mkdir -p "$W/bin" "$W/logs"
cd "$W"
PIDS=()
CTR_NS=bench
IMG_D=bbbench:latest
IMG_C=docker.io/library/bbbench:latest
START=$(date +%s)
log() { echo "[$(($(date +%s) - START))s] $*" >&2; }

PRE_CGROUPS=$(client_cgroups "$CTR_NS")
cleanup() {
    set +e
    if [ -S "$W/d.sock" ]; then
        ids=$($DOCKER -H "unix://$W/d.sock" ps -aq 2>/dev/null)
        [ -n "$ids" ] && timeout 60 $DOCKER -H "unix://$W/d.sock" rm -f $ids >/dev/null 2>&1
    fi
    if [ -S "$W/c.sock" ]; then
        for t in $(ctr --address "$W/c.sock" -n "$CTR_NS" task ls -q 2>/dev/null); do
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
    # shims outlive containerd (their -address names our socket)
    for p in $(pgrep -f -- "-address $W/c.sock" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
    sleep 0.3
    if [ -n "$OUT" ]; then
        mkdir -p "$OUT/logs"
        cp "$W"/logs/* "$OUT/logs/" 2>/dev/null
        cp "$W"/argv-*.log "$OUT/" 2>/dev/null
        [ -f "$W/logs/summary.md" ] && cp "$W/logs/summary.md" "$OUT/"
    fi
    grep -o " $W[^ ]*" /proc/self/mounts | sort -r | while read -r m; do umount -l "$m"; done
    mountpoint -q /run/containerd && umount -l /run/containerd
    [ -n "${CGBOUND:-}" ] && umount "$CONTROLLERS" 2>/dev/null
    remove_new_cgroups "$PRE_CGROUPS" "$CTR_NS"
    if [ "$KEEP" = 1 ]; then
        echo "clients.sh: kept $W" >&2
    else
        rm -rf "$W" 2>/dev/null || echo "clients.sh: could not remove all of $W" >&2
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# crun 1.8 and hybrid cgroups: hide cgroup2's controllers (hugetlb here) from everyone
CONTROLLERS=/sys/fs/cgroup/unified/cgroup.controllers
CGNOTE="cgroup layout used as is"
if [ -e "$CONTROLLERS" ] && [ -n "$(cat "$CONTROLLERS")" ]; then
    CGNOTE="hybrid cgroups: cgroup2's controllers ($(tr '\n' ' ' <"$CONTROLLERS" | sed 's/ $//')) hidden from all runtimes"
    : >"$W/empty"
    mount --bind "$W/empty" "$CONTROLLERS" && CGBOUND=1
fi
mkdir -p /run/containerd
mount -t tmpfs -o mode=711 tmpfs /run/containerd

# ---------------------------------------------------------------- runtimes
cp "$RUNTIME" "$W/bin/berth-runtime"
RTS=(runc crun berth)
declare -A REAL=([runc]=$RUNC [crun]=$CRUN [berth]=$W/bin/berth-runtime)
declare -A BIN
# docker's name of each runtime ("runc" is dockerd's built-in one and can't be redefined)
declare -A DNAME=([runc]=runc [crun]=crun [berth]=berth)
[ "$ARGVLOG" = 1 ] && DNAME[runc]=runc-log
for t in "${RTS[@]}"; do
    if [ "$ARGVLOG" = 1 ]; then
        # start time (s.us), duration (ms), exit status, argv; not exec'd, to time the call
        cat >"$W/bin/rt-$t" <<EOF
#!/bin/bash
t0=\$EPOCHREALTIME
${REAL[$t]} "\$@"
rc=\$?
t1=\$EPOCHREALTIME
{ printf '%s %.3fms rc=%d' \$t0 "\$(( (\${t1/./} - \${t0/./}) ))e-3" \$rc; printf ' %q' "\$@"; echo; } >>$W/argv-$t.log
exit \$rc
EOF
        chmod 755 "$W/bin/rt-$t"
        BIN[$t]=$W/bin/rt-$t
    else
        BIN[$t]=${REAL[$t]}
    fi
done

# ---------------------------------------------------------------- image
make_image() {
    local r=$W/rootfs
    "$ROOT/scripts/busybox-rootfs.sh" "$r" >/dev/null || return 1
    tar --numeric-owner -C "$r" -cf "$W/rootfs.tar" .
    oci_archive "$W/rootfs.tar" "$IMG_C" "$W/bbbench-oci.tar"
}

C() { timeout 90 ctr --address "$W/c.sock" -n "$CTR_NS" "$@"; }

# ---------------------------------------------------------------- timing
HF=(hyperfine --warmup "$WARMUP" --runs "$RUNS" --style basic --output null)
declare -A MED SD ORDER
# bench CLIENT PASS: one hyperfine invocation over the three runtimes (order rotated by PASS)
bench() {
    local client=$1 p=$2 t args=() cmd k order=()
    for ((k = 0; k < ${#RTS[@]}; k++)); do order+=("${RTS[(k + p - 1) % ${#RTS[@]}]}"); done
    ORDER[$client/$p]="${order[*]}"
    for t in "${order[@]}"; do
        case $client in
            # (unique id per run: $$ of hyperfine's sh -c)
            docker) cmd="$DOCKER -H unix://$W/d.sock run --rm --network none --runtime=${DNAME[$t]} $IMG_D true" ;;
            containerd) cmd="ctr --address $W/c.sock -n $CTR_NS run --rm --runc-binary ${BIN[$t]} $IMG_C id-\$\$ true" ;;
        esac
        args+=(-n "$t" "$cmd")
    done
    # sanity: each command once, outside the timing, so a failure shows its error
    local i
    for ((i = 2; i < ${#args[@]}; i += 3)); do
        if ! sh -c "${args[i]}" >"$W/logs/sanity-$client-${args[i-1]}.out" 2>&1; then
            log "$client/${args[i-1]}: sanity run failed: $(tail -n 3 "$W/logs/sanity-$client-${args[i-1]}.out")"
            return 1
        fi
    done
    log "$client: pass $p/$PASSES (${order[*]}), hyperfine, $RUNS runs (+$WARMUP warmup) per runtime"
    local j=$W/logs/$client-p$p.json
    "${HF[@]}" --export-json "$j" --export-markdown "${j%.json}.md" "${args[@]}" \
        2>&1 | tee "$W/logs/$client-p$p-hyperfine.txt" >&2 || return 1
    if [ "$ARGVLOG" = 1 ]; then
        for t in "${RTS[@]}"; do
            [ -f "$W/argv-$t.log" ] && cat "$W/argv-$t.log" >>"$W/argv-$client-$t.log" && rm "$W/argv-$t.log"
        done
    fi
    for t in "${RTS[@]}"; do
        MED[$client/$p/$t]=$(jq -r --arg n "$t" '.results[] | select(.command == $n) | .median * 1000' "$j")
        SD[$client/$p/$t]=$(jq -r --arg n "$t" '.results[] | select(.command == $n) | (.stddev // 0) * 1000' "$j")
    done
}
bench_passes() { # CLIENT
    local p t
    for ((p = 1; p <= PASSES; p++)); do bench "$1" "$p" || return 1; done
    for t in "${RTS[@]}"; do
        MED[$1/all/$t]=$(for ((p = 1; p <= PASSES; p++)); do echo "${MED[$1/$p/$t]}"; done | sort -g |
            awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }')
    done
}

# ---------------------------------------------------------------- main
make_image || exit 1
start_containerd || exit 1
log "work dir $W; $CGNOTE"
[ "$ARGVLOG" = 1 ] && log "--argv-log: runtimes called through bash wrappers (figures not comparable)"
DONE=()
for client in "${ONLY[@]}"; do
    case $client in
        docker) start_dockerd "$IMG_D" --add-runtime "crun=${BIN[crun]}" \
                    --add-runtime "berth=${BIN[berth]}" \
                    $([ "$ARGVLOG" = 1 ] && echo --add-runtime "runc-log=${BIN[runc]}") \
                    && bench_passes docker && DONE+=(docker) ;;
        containerd) C image import "$W/bbbench-oci.tar" >"$W/logs/ctr-import.log" 2>&1 &&
                    bench_passes containerd && DONE+=(containerd) ;;
        *) echo "clients.sh: unknown client $client" >&2 ;;
    esac
done

{
    echo "## start latency through the clients (median ms; ×crun = median / crun's)"
    echo
    echo '```'
    echo "date: $(date -Is); kernel: $(uname -r); cpus: $(nproc); load: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "runs: $RUNS, warmup: $WARMUP, passes: $PASSES$([ "$ARGVLOG" = 1 ] && echo ', argv-log wrappers ON')"
    echo "runc: $RUNC ($($RUNC --version | head -n1))"
    echo "crun: $CRUN ($($CRUN --version | head -n1))"
    echo "berth: $RUNTIME ($(stat -c %s "$RUNTIME") bytes, sha256 $(sha256sum "$RUNTIME" | cut -c1-12))"
    echo "docker: $($DOCKER --version); containerd: $(containerd --version | cut -d' ' -f3)"
    echo "$CGNOTE"
    echo '```'
    echo
    echo "| client | pass (order) | runc | crun | berth | runc/crun | berth/crun |"
    echo "|---|---|---:|---:|---:|---:|---:|"
    for c in "${DONE[@]}"; do
        for ((p = 1; p <= PASSES; p++)); do
            printf '| %s | %s | %.1f ± %.1f | %.1f ± %.1f | %.1f ± %.1f | %.2f | %.2f |\n' "$c" \
                "$p (${ORDER[$c/$p]// /,})" \
                "${MED[$c/$p/runc]}" "${SD[$c/$p/runc]}" "${MED[$c/$p/crun]}" "${SD[$c/$p/crun]}" \
                "${MED[$c/$p/berth]}" "${SD[$c/$p/berth]}" \
                "$(awk "BEGIN { print ${MED[$c/$p/runc]} / ${MED[$c/$p/crun]} }")" \
                "$(awk "BEGIN { print ${MED[$c/$p/berth]} / ${MED[$c/$p/crun]} }")"
        done
        [ "$PASSES" -gt 1 ] && printf '| %s | **median of passes** | %.1f | %.1f | %.1f | **%.2f** | **%.2f** |\n' "$c" \
            "${MED[$c/all/runc]}" "${MED[$c/all/crun]}" "${MED[$c/all/berth]}" \
            "$(awk "BEGIN { print ${MED[$c/all/runc]} / ${MED[$c/all/crun]} }")" \
            "$(awk "BEGIN { print ${MED[$c/all/berth]} / ${MED[$c/all/crun]} }")"
    done
    echo
    echo "(cells: median ± stddev in ms; commands: \`docker run --rm --network none --runtime=X $IMG_D true\`,"
    echo "\`ctr run --rm --runc-binary PATH $IMG_C id-\$\$ true\`)"
    if [ "$ARGVLOG" = 1 ]; then
        echo
        echo "### runtime calls (argv-log wrappers): median ms of each verb, calls per container"
        echo
        echo "| client | runtime | verb | calls/run | median ms | sum of medians × calls/run |"
        echo "|---|---|---|---:|---:|---:|"
        for c in "${DONE[@]}"; do
            for t in "${RTS[@]}"; do
                [ -f "$W/argv-$c-$t.log" ] || continue
                awk -v c="$c" -v t="$t" -v n="$(((RUNS + WARMUP + 1) * PASSES))" '
                    { verb = "?"; for (i = 4; i <= NF; i++) if ($i ~ /^(create|start|delete|kill|state|run|exec|ps|features|pause|resume|update|--version)$/) { verb = $i; break }
                      d = $2; sub(/ms$/, "", d); v[verb, ++k[verb]] = d + 0 }
                    END { for (x in k) { m = k[x]; for (i = 1; i <= m; i++) a[i] = v[x, i]
                            # insertion sort, then the median
                            for (i = 2; i <= m; i++) { y = a[i]; j = i - 1; while (j > 0 && a[j] > y) { a[j + 1] = a[j]; j-- } a[j + 1] = y }
                            med = (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
                            printf "| %s | %s | %s | %.2f | %.2f | %.2f |\n", c, t, x, m / n, med, med * m / n } }' \
                    "$W/argv-$c-$t.log" | sort -t'|' -k4,4
            done
        done
    fi
} | tee "$W/logs/summary.md"
[ -n "$OUT" ] && log "results in $OUT"
[ ${#DONE[@]} -eq ${#ONLY[@]} ]
