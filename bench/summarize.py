#!/usr/bin/env python3
"""summarize.py OUTDIR — markdown tables from one bench/run.sh result directory.

Reads the hyperfine JSON exports (run-N, run-iso-N, phases[-iso]-PHASE, variants, exec),
rss-NAME.txt (GNU time max RSS, kB), strace-NAME-K.txt (strace -c) and tasks-NAME.txt.
Times are medians in ms; ratios are to crun (the fastest C runtime: the bar to meet).
"""
import glob
import json
import os
import statistics
import sys

REF = "crun"


def load(path):
    """command name -> list of run times (s)."""
    with open(path) as f:
        return {r["command"]: r["times"] for r in json.load(f)["results"]}


def pooled(paths):
    out = {}
    for p in paths:
        for name, times in load(p).items():
            out.setdefault(name, []).extend(times)
    return out


def med_ms(times):
    return statistics.median(times) * 1000.0 if times else None


def fmt(x, digits=2):
    return "-" if x is None else f"{x:.{digits}f}"


def ratio(x, ref):
    return "-" if x is None or not ref else f"{x / ref:.2f}"


def strace_total(path):
    try:
        with open(path) as f:
            for line in f:
                p = line.split()
                if p and p[-1] == "total":
                    return int(p[3])
    except (OSError, ValueError, IndexError):
        pass
    return None


def detail(title, runs):
    lines = [f"#### {title}", "",
             "| command | median ms | mean ± sd ms | min ms | max ms | runs | median / crun |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    ref = med_ms(runs.get(REF, []))
    for name, t in runs.items():
        ms = [x * 1000.0 for x in t]
        sd = statistics.stdev(ms) if len(ms) > 1 else 0.0
        lines.append(f"| {name} | {fmt(med_ms(t))} | {statistics.mean(ms):.2f} ± {sd:.2f} | "
                     f"{min(ms):.2f} | {max(ms):.2f} | {len(ms)} | {ratio(med_ms(t), ref)} |")
    return "\n".join(lines) + "\n"


def main(d):
    names = open(os.path.join(d, "runtimes.txt")).read().split()
    sections = []  # (column title, {runtime: median ms})
    details = []

    for sec, title in (("run", "run"), ("run-iso", "run iso")):
        files = sorted(glob.glob(os.path.join(d, f"{sec}-[0-9]*.json")))
        if files:
            runs = pooled(files)
            sections.append((title, {n: med_ms(runs.get(n, [])) for n in names}))
            details.append(detail(f"{sec}: `run` of /bin/true, pooled over {len(files)} pass(es)", runs))
    for sec, suffix in (("phases", ""), ("phases-iso", " iso")):
        for phase in ("create", "start", "delete"):
            p = os.path.join(d, f"{sec}-{phase}.json")
            if os.path.exists(p):
                runs = load(p)
                sections.append((phase + suffix, {n: med_ms(runs.get(n, [])) for n in names}))
                details.append(detail(f"{sec}: {phase}", runs))
    p = os.path.join(d, "exec.json")
    if os.path.exists(p):
        runs = load(p)
        sections.append(("exec", {n: med_ms(runs.get(n, [])) for n in names}))
        details.append(detail("exec /bin/true into a running container", runs))

    out = ["## berth-runtime vs runc vs crun", ""]
    meta = os.path.join(d, "meta.txt")
    if os.path.exists(meta):
        out += ["```", open(meta).read().rstrip(), "```", ""]

    if sections:
        out += ["### time (median ms; ×crun = median / crun's)", "",
                "| runtime | " + " | ".join(f"{t} | ×crun" for t, _ in sections) + " |",
                "|---|" + "---:|---:|" * len(sections)]
        for n in names:
            cells = []
            for _, m in sections:
                cells += [fmt(m.get(n)), ratio(m.get(n), m.get(REF))]
            out.append(f"| {n} | " + " | ".join(cells) + " |")
        out.append("")

    p = os.path.join(d, "variants.json")
    if os.path.exists(p):
        runs = load(p)
        out += ["### variants of `run` (median ms; ×crun of the same variant)", "",
                "| runtime | no netns | ×crun | default (netns) | ×crun | limits (mem+pids) | ×crun | netns cost | limits cost |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        m = {k: med_ms(v) for k, v in runs.items()}
        for n in names:
            a, b, c = (m.get(f"{n}/{v}") for v in ("nonetns", "default", "limits"))
            ra, rb, rc = (m.get(f"{REF}/{v}") for v in ("nonetns", "default", "limits"))
            cost = lambda x, y: "-" if x is None or y is None else f"{x - y:+.2f}"
            out.append(f"| {n} | {fmt(a)} | {ratio(a, ra)} | {fmt(b)} | {ratio(b, rb)} | {fmt(c)} | "
                       f"{ratio(c, rc)} | {cost(b, a)} | {cost(c, b)} |")
        out.append("")
        details.append(detail("variants", runs).replace("median / crun", "median / crun (same variant: see above)"))

    res = {}
    for n in names:
        rss = []
        p = os.path.join(d, f"rss-{n}.txt")
        if os.path.exists(p):
            rss = [int(x) for x in open(p).read().split()]
        sc = [strace_total(p) for p in sorted(glob.glob(os.path.join(d, f"strace-{n}-[0-9]*.txt")))]
        sc = [x for x in sc if x is not None]
        tasks = None
        p = os.path.join(d, f"tasks-{n}.txt")
        if os.path.exists(p):
            tasks = int(open(p).read().split()[0])
        res[n] = (statistics.median(rss) if rss else None, rss,
                  statistics.median(sc) if sc else None, sc, tasks)
    if any(v[0] is not None or v[2] is not None for v in res.values()):
        ref = res.get(REF, (None,) * 5)
        out += ["### resources of one `run` of /bin/true", "",
                "| runtime | max RSS kB (median) | ×crun | RSS runs | syscalls (strace -f -c, median) | ×crun | syscall runs | tasks |",
                "|---|---:|---:|---|---:|---:|---|---:|"]
        for n in names:
            rss, rl, sc, sl, tasks = res[n]
            out.append(f"| {n} | {fmt(rss, 0)} | {ratio(rss, ref[0])} | {' '.join(map(str, rl))} | "
                       f"{fmt(sc, 0)} | {ratio(sc, ref[2])} | {' '.join(map(str, sl))} | {tasks if tasks is not None else '-'} |")
        out.append("")

    p = os.path.join(d, "notes.txt")
    if os.path.exists(p):
        out += ["### notes", ""] + [f"- {l}" for l in open(p).read().splitlines() if l] + [""]
    if details:
        out += ["### details", ""] + details
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
