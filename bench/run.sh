#!/usr/bin/env bash
# bench/run.sh — berth-runtime side by side with runc and crun.
#
# usage: bench/run.sh [--quick] [--isolated] [--runtime PATH] [--sections LIST]
#                     [--runs N] [--warmup N] [--passes N] [--out DIR]
#   --runtime PATH  berth-runtime to measure (default ./target/x86_64-unknown-linux-gnu/release/berth-runtime,
#                   built with `cargo build --release -p berth-cli` when missing)
#   --quick         30 runs per command, 1 pass, fewer RSS/strace samples
#   --isolated      only the "single start after a quiet spell" figures: run-iso,phases-iso
#   --sections      comma list of: run, run-iso, phases, phases-iso, variants, exec, rss, strace
#                   (default: all of them)
#   env RUNC, CRUN  the runtimes compared with (default: runc and crun from PATH)
#
# Every timed comparison is ONE hyperfine invocation holding all runtimes. *-iso sections
# precede each timed run with `sleep 0.1` (hyperfine --prepare): the first move into a v1
# cgroup after a quiet spell waits for an RCU grace period (~14 ms), which back-to-back runs
# mostly don't pay. Each runtime gets its own --root state dir and unique container ids.
#
# Everything runs in one private mount namespace where /sys/fs/cgroup/unified/
# cgroup.controllers reads empty: on this hybrid-cgroup host crun 1.8 otherwise refuses to
# run ("cgroups in hybrid mode not supported"). All runtimes see the same namespace.
#
# Results: bench/results/<timestamp>/ (summary.md, hyperfine JSON/markdown, raw files).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
ALL_SECTIONS=run,run-iso,phases,phases-iso,variants,exec,rss,strace

usage() { sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; }

QUICK=0
RUNTIME=$REPO/target/x86_64-unknown-linux-gnu/release/berth-runtime
SECTIONS=$ALL_SECTIONS
RUNS="" WARMUP="" PASSES="" OUT=""
while [ $# -gt 0 ]; do
    case $1 in
        --quick) QUICK=1 ;;
        --isolated) SECTIONS=run-iso,phases-iso ;;
        --runtime) RUNTIME=$2; shift ;;
        --sections) SECTIONS=$2; shift ;;
        --runs) RUNS=$2; shift ;;
        --warmup) WARMUP=$2; shift ;;
        --passes) PASSES=$2; shift ;;
        --out) OUT=$2; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "bench/run.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
if [ "$QUICK" = 1 ]; then
    : "${RUNS:=30}" "${WARMUP:=3}" "${PASSES:=1}"; RSS_N=5; STRACE_N=2
else
    : "${RUNS:=100}" "${WARMUP:=5}" "${PASSES:=2}"; RSS_N=10; STRACE_N=3
fi

# ---- outside the namespace: packages, the binary, the output dir, then re-exec --------
if [ "${BERTH_BENCH_NS:-}" != 1 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "bench/run.sh: run as root" >&2
        exit 1
    fi
    "$REPO/scripts/install-deps.sh"
    if [ ! -x "$RUNTIME" ]; then
        if [ "$RUNTIME" = "$REPO/target/x86_64-unknown-linux-gnu/release/berth-runtime" ]; then
            (cd "$REPO" && cargo build --release -p berth-cli)
        else
            echo "bench/run.sh: $RUNTIME is not an executable" >&2
            exit 1
        fi
    fi
    RUNTIME=$(readlink -f "$RUNTIME")
    OUT=${OUT:-$HERE/results/$(date +%Y%m%d-%H%M%S)}
    mkdir -p "$OUT"
    OUT=$(cd "$OUT" && pwd)
    exec unshare -m --propagation private env BERTH_BENCH_NS=1 \
        bash "$0" --runtime "$RUNTIME" --sections "$SECTIONS" --runs "$RUNS" \
        --warmup "$WARMUP" --passes "$PASSES" --out "$OUT" $([ "$QUICK" = 1 ] && echo --quick)
fi

# ---- inside the private mount namespace ---------------------------------------------
WORK=$(mktemp -d /tmp/berth-bench.XXXXXX)
CONTROLLERS=/sys/fs/cgroup/unified/cgroup.controllers
if [ -e "$CONTROLLERS" ] && [ -n "$(cat "$CONTROLLERS")" ]; then
    CGNOTE="hybrid cgroups: cgroup2's controllers ($(tr '\n' ' ' < "$CONTROLLERS")) hidden from all runtimes"
    : > "$WORK/empty"
    mount --bind "$WORK/empty" "$CONTROLLERS"
else
    CGNOTE="cgroup layout used as is"
fi

exec > >(tee -a "$OUT/log.txt") 2>&1
has() { [[ ",$SECTIONS," == *",$1,"* ]]; }
note() { echo "NOTE: $*"; echo "$*" >> "$OUT/notes.txt"; }

# NAMES[i]: label, BINS[i]: binary, RT[i]: the command with its own state dir
declare -a NAMES=() BINS=() RT=()
add_runtime() {
    local name=$1 bin=$2
    if ! bin=$(command -v "$bin"); then
        note "$name not found: left out"
        return
    fi
    NAMES+=("$name"); BINS+=("$bin")
    mkdir -p "$WORK/state/$name"
    RT+=("$bin --root $WORK/state/$name")
}
add_runtime berth "$RUNTIME"
add_runtime runc "${RUNC:-runc}"
add_runtime crun "${CRUN:-crun}"
RUNC_BIN=$(command -v "${RUNC:-runc}") || { echo "bench needs runc (for runc spec)" >&2; exit 1; }

cleanup() {
    set +e
    for i in "${!NAMES[@]}"; do
        for id in $(${RT[$i]} list -q 2>/dev/null); do
            ${RT[$i]} delete -f "$id" >/dev/null 2>&1
        done
    done
}
on_exit() {
    cleanup
    rm -rf "$WORK"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

echo "== berth bench $(date -Is)"
echo "out: $OUT  runs: $RUNS  warmup: $WARMUP  passes: $PASSES  sections: $SECTIONS"
echo "kernel: $(uname -r)  cpus: $(nproc)  load: $(cut -d' ' -f1-3 /proc/loadavg)  $CGNOTE"
for i in "${!NAMES[@]}"; do
    echo "${NAMES[$i]}: ${BINS[$i]} ($(${BINS[$i]} --version 2>&1 | head -1))"
done
{
    echo "date: $(date -Is)"
    echo "kernel: $(uname -r), cpus: $(nproc), load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "runs: $RUNS, warmup: $WARMUP, passes: $PASSES"
    for i in "${!NAMES[@]}"; do
        echo "${NAMES[$i]}: ${BINS[$i]} ($(${BINS[$i]} --version 2>&1 | head -1)), $(stat -c %s "$(readlink -f "${BINS[$i]}")") bytes"
    done
} > "$OUT/meta.txt"
printf '%s\n' "${NAMES[@]}" > "$OUT/runtimes.txt"
# CPU use of everything else over one second (the load average lags by minutes)
cpu_busy() {
    local _ u n s i w q sq st t1 i1
    read -r _ u n s i w q sq st _ < /proc/stat; t1=$((u + n + s + i + w + q + sq + st)); i1=$((i + w))
    sleep 1
    read -r _ u n s i w q sq st _ < /proc/stat
    echo $(( 100 * ((u + n + s + i + w + q + sq + st - t1) - (i + w - i1)) / (u + n + s + i + w + q + sq + st - t1) ))
}
busy=$(cpu_busy)
echo "cpu busy before start: $busy%" | tee -a "$OUT/meta.txt"
if [ "$busy" -gt 15 ]; then
    note "the machine was busy at start ($busy% cpu used by other processes): figures may be noisy"
fi

# ---- bundles -------------------------------------------------------------------------
B=$WORK/bundles
for v in default nonetns limits; do
    RUNC=$RUNC_BIN "$HERE/mkbundle.sh" "$B/$v" "$v" '["/bin/true"]'
done
RUNC=$RUNC_BIN "$HERE/mkbundle.sh" "$B/sleep" default '["/bin/sleep","100000"]'

# ---- sanity: every runtime runs every bundle once; failures leave it out where needed ---
declare -A OK=()
for i in "${!NAMES[@]}"; do
    n=${NAMES[$i]}
    for v in default nonetns limits; do
        if timeout -s KILL 20 ${RT[$i]} run --bundle "$B/$v" "sanity-$n-$v" </dev/null \
            >"$OUT/sanity-$n-$v.out" 2>"$OUT/sanity-$n-$v.err"; then
            OK[$n/$v]=1
        else
            note "$n: run of the $v bundle failed, left out of comparisons using it: $(head -c 300 "$OUT/sanity-$n-$v.err")"
        fi
    done
    echo "sanity $n: $(for v in default nonetns limits; do printf '%s=%s ' "$v" "${OK[$n/$v]:+ok}"; done)"
done
cleanup

HF=(hyperfine --warmup "$WARMUP" --runs "$RUNS" --style basic --output null)
FAILED=0
# hf NAME ARGS... : one hyperfine invocation, exported as NAME.json/.md; cleanup after.
hf() {
    local name=$1; shift
    if ! "${HF[@]}" --export-json "$OUT/$name.json" --export-markdown "$OUT/$name.md" "$@"; then
        note "section $name: hyperfine failed (a command exited non-zero); see log.txt"
        rm -f "$OUT/$name.json"
        FAILED=1
    fi
    cleanup
}
# runtimes that ran bundle $1 in the sanity check, in order (reversed when $2 is even)
order() {
    local i list=()
    for i in "${!NAMES[@]}"; do
        [ -n "${OK[${NAMES[$i]}/$1]:-}" ] && list+=("$i")
    done
    if [ $(( ${2:-1} % 2 )) = 0 ]; then printf '%s\n' "${list[@]}" | tac; else printf '%s\n' "${list[@]}"; fi
}

# ---- run: full `run` of /bin/true (create + start + wait + delete) -------------------
for sec in run run-iso; do
    has $sec || continue
    np=$PASSES
    for pass in $(seq 1 "$np"); do
        args=()
        for i in $(order default "$pass"); do
            prep=true; [ $sec = run-iso ] && prep="sleep 0.1"
            args+=(--prepare "$prep" -n "${NAMES[$i]}" "exec ${RT[$i]} run --bundle $B/default r-${NAMES[$i]}-\$\$")
        done
        echo; echo "== $sec pass $pass/$np: <rt> run --bundle default r-<rt>-\$\$ (load $(cut -d' ' -f1 /proc/loadavg))"
        hf "$sec-$pass" "${args[@]}"
    done
done

# ---- phases: create / start / delete, one hyperfine invocation per phase -------------
# Timed without a shell (hyperfine -N): these take 2-5 ms, below what hyperfine can
# calibrate a shell's start-up out of. So each runtime has one id per phase, which the
# prepare step (phase-prep.sh) deletes and re-creates before every timed run.
for sec in phases phases-iso; do
    has $sec || continue
    slp=""; [ $sec = phases-iso ] && slp=0.1
    for phase in create start delete; do
        args=()
        for i in $(order default); do
            n=${NAMES[$i]}; id=ph-$n-$phase-$$
            prep="$HERE/phase-prep.sh $phase '${RT[$i]}' $B/default $id $slp"
            case $phase in
                create) cmd="${RT[$i]} create --bundle $B/default $id" ;;
                start)  cmd="${RT[$i]} start $id" ;;
                delete) cmd="${RT[$i]} delete $id" ;;
            esac
            args+=(--prepare "$prep" -n "$n" "$cmd")
        done
        echo; echo "== $sec: $phase"
        hf "$sec-$phase" -N "${args[@]}"
    done
done

# ---- variants: cost of the network namespace and of memory+pids limits ---------------
if has variants; then
    args=()
    for i in "${!NAMES[@]}"; do
        n=${NAMES[$i]}
        for v in nonetns default limits; do
            [ -n "${OK[$n/$v]:-}" ] || continue
            args+=(-n "$n/$v" "exec ${RT[$i]} run --bundle $B/$v v-$n-\$\$")
        done
    done
    echo; echo "== variants: nonetns / default / limits"
    hf variants "${args[@]}"
fi

# ---- exec: /bin/true into a running container (runtimes without `exec` are skipped) --
if has exec; then
    args=()
    for i in "${!NAMES[@]}"; do
        n=${NAMES[$i]}
        if ! ${BINS[$i]} exec --help >/dev/null 2>&1; then
            note "exec: $n has no exec verb yet: left out of the exec comparison"
            continue
        fi
        ${RT[$i]} run -d --bundle "$B/sleep" "ex-$n" </dev/null >/dev/null 2>&1 || {
            note "exec: $n could not start the sleep container"; continue; }
        args+=(-n "$n" "${RT[$i]} exec ex-$n /bin/true")
    done
    if [ ${#args[@]} -gt 2 ]; then
        echo; echo "== exec: <rt> exec ex-<rt> /bin/true"
        # No shell needed (no per-run id): -N, so a ~3 ms command isn't lost in hyperfine's
        # shell-startup correction.
        hf exec -N "${args[@]}"
    else
        note "exec: fewer than two runtimes support exec: section skipped"
        cleanup
    fi
fi

# ---- rss: peak RSS of a full run (GNU time -v: max over the runtime and its children) --
if has rss; then
    echo; echo "== rss: /usr/bin/time -v <rt> run ($RSS_N runs each)"
    for i in $(order default); do
        n=${NAMES[$i]}
        for k in $(seq 1 "$RSS_N"); do
            /usr/bin/time -v ${RT[$i]} run --bundle "$B/default" "rss-$n-$k" </dev/null 2>&1 >/dev/null \
                | awk -F': ' '/Maximum resident set size/ {print $2}'
        done > "$OUT/rss-$n.txt"
        echo "$n max RSS kB: $(tr '\n' ' ' < "$OUT/rss-$n.txt")"
    done
    cleanup
fi

# ---- strace: syscalls (strace -f -c) and tasks (pids in a full -f trace) of a full run --
if has strace; then
    echo; echo "== strace -f -c <rt> run ($STRACE_N runs each)"
    for i in $(order default); do
        n=${NAMES[$i]}
        for k in $(seq 1 "$STRACE_N"); do
            strace -f -c -o "$OUT/strace-$n-$k.txt" ${RT[$i]} run --bundle "$B/default" "st-$n-$k" </dev/null >/dev/null 2>&1 || true
        done
        strace -f -o "$WORK/trace-$n" ${RT[$i]} run --bundle "$B/default" "st-$n-full" </dev/null >/dev/null 2>&1 || true
        awk '{print $1}' "$WORK/trace-$n" | sort -u | wc -l > "$OUT/tasks-$n.txt"
        echo "$n syscalls: $(for k in $(seq 1 "$STRACE_N"); do awk '$NF=="total"{printf "%s ", $4}' "$OUT/strace-$n-$k.txt"; done) tasks: $(cat "$OUT/tasks-$n.txt")"
    done
    cleanup
fi

echo
python3 "$HERE/summarize.py" "$OUT" | tee "$OUT/summary.md"
echo "results: $OUT"
exit $FAILED
