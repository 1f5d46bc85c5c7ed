"""Targets across several harness runs of the same suite: each run's measured value of each target (a ratio
measured within that run, or a fraction of that run's copy ceiling), their median, the mark the median
earns, and in how many runs the target was met. On a noisy machine one run's mark can flip either way on
unchanged code; this table says how often it held.

    python -m sparsekernels.bench.across RUN_DIR [RUN_DIR ...] [--out FILE]

RUN_DIR: a directory with results.jsonl (or the file itself). Rows are matched by (suite, case, threads);
a target that a run did not measure (n/a, or the row missing) is left out of that row's median.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from sparsekernels.bench import compare, marks


def _key(row: dict, default_suite) -> tuple:
    return (row.get("suite", default_suite), row["case"], row.get("threads"))


def collect(runs: list[tuple[list[dict], dict]]) -> list[dict]:
    """One entry per (row, target) seen in any run, in first-seen order: {case, threads, target, need,
    baseline, got: [value or None per run], marks: [mark or None per run]}."""
    entries: dict = {}
    for i, (rows, meta) in enumerate(runs):
        for r in rows:
            for m in r.get("targets", []):
                k = (*_key(r, meta.get("suite")), m["target"])
                e = entries.setdefault(k, {"case": r["case"], "threads": r.get("threads"), "target": m["target"],
                                           "need": m["need"], "baseline": m["baseline"],
                                           "got": [None] * len(runs), "marks": [None] * len(runs)})
                e["marks"][i] = m["mark"]
                if m["mark"] != marks.NA and marks._finite(m.get("got")):
                    e["got"][i] = float(m["got"])
    return list(entries.values())


def summarize(entry: dict) -> dict:
    """Adds median, mark (of the median: met / not met; with no value, not met when a run marked it so, e.g.
    ours failed, else n/a) and met_in (runs met / runs that marked it met or not met)."""
    vals = [g for g in entry["got"] if g is not None]
    measured = sum(1 for mk in entry["marks"] if mk in (marks.MET, marks.NOT_MET))
    met = sum(1 for mk in entry["marks"] if mk == marks.MET)
    med = statistics.median(vals) if vals else None
    if med is None:  # nothing measured: not met if a run failed it (ours failed or was wrong), else n/a
        mark = marks.NOT_MET if measured else marks.NA
    else:
        mark = marks.MET if med >= entry["need"] else marks.NOT_MET
    return {**entry, "median": med, "mark": mark, "met_in": (met, measured)}


def _fmt(v, baseline: str) -> str:
    return marks.fmt_got({"got": v, "baseline": baseline})  # "-" for None, as the report's cells


def table(runs: list[tuple[list[dict], dict]], names: list[str]) -> str:
    entries = [summarize(e) for e in collect(runs)]
    lines = [f"# Targets across {len(runs)} runs", ""]
    for name, (_, meta) in zip(names, runs):
        lines.append(f"- {name}: commit {meta.get('commit', '?')}, {meta.get('date', '?')}, "
                     f"copy ceiling {meta.get('ceilings', {}).get('copy_GBps', float('nan')):.1f} GB/s")
    counts = {marks.MET: 0, marks.NOT_MET: 0, marks.NA: 0}
    for e in entries:
        counts[e["mark"]] += 1
    lines += ["", f"By the median: **{counts[marks.MET]} met / {counts[marks.NOT_MET]} not met / "
                  f"{counts[marks.NA]} n/a**; 'met in' counts the runs that measured the target.", ""]
    head = ["case", "thr", "target"] + [f"run {i + 1}" for i in range(len(runs))] + ["median", "mark", "met in"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for e in entries:
        cells = [e["case"], str(e["threads"]), e["target"]] + [_fmt(g, e["baseline"]) for g in e["got"]]
        mark = f"**{e['mark']}**" if e["mark"] == marks.NOT_MET else e["mark"]
        cells += [_fmt(e["median"], e["baseline"]), mark, f"{e['met_in'][0]} of {e['met_in'][1]}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m sparsekernels.bench.across", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="harness output directories (or results.jsonl)")
    p.add_argument("--out", default=None, help="write the markdown table here (default: stdout)")
    args = p.parse_args(argv)
    try:
        runs = [compare.load(r) for r in args.runs]
    except (OSError, ValueError) as e:
        p.error(str(e).replace("--compare: ", ""))
    if not any(r.get("targets") for rows, _ in runs for r in rows):
        p.error("no row of these runs has targets (the targets suite marks them)")
    text = table(runs, args.runs)
    if args.out:
        Path(args.out).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
