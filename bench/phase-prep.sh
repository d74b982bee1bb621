#!/usr/bin/env bash
# phase-prep.sh PHASE RUNTIME_CMD BUNDLE ID [SLEEP] — the hyperfine --prepare step of the
# phase comparisons: deletes container ID if the previous timed run left it, then brings a
# fresh container ID to the state the timed command needs:
#   create: nothing (the timed command creates it)
#   start:  created
#   delete: started, and its /bin/true has exited
# then sleeps SLEEP seconds if given (isolated mode). The timed commands run without a
# shell (hyperfine -N), so they get a fixed id per runtime and phase that this step recycles.
set -euo pipefail
PHASE=$1 RT=$2 BUNDLE=$3 ID=$4 SLEEP=${5:-}
$RT delete -f "$ID" >/dev/null 2>&1 || true
case $PHASE in
    create) ;;
    start) $RT create --bundle "$BUNDLE" "$ID" </dev/null >/dev/null ;;
    delete)
        $RT create --bundle "$BUNDLE" "$ID" </dev/null >/dev/null
        $RT start "$ID"
        stopped=0
        for _ in $(seq 1 2000); do
            if $RT state "$ID" 2>/dev/null | grep -Eq '"status": *"stopped"'; then
                stopped=1
                break
            fi
            sleep 0.005
        done
        if [ $stopped = 0 ]; then
            echo "phase-prep.sh: $ID did not stop" >&2
            exit 1
        fi ;;
    *) echo "phase-prep.sh: unknown phase $PHASE" >&2; exit 2 ;;
esac
if [ -n "$SLEEP" ]; then
    sleep "$SLEEP"
fi
