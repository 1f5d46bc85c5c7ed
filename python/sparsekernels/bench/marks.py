"""Target marks: whether a row meets the requirements its case carries (suites.Target), decided from the
numbers measured in the same run (our time, the baselines' times, the bandwidth against the copy ceiling
of the run, the thread-scaling ratio), never from stored outcomes.

A mark is a dict ``{target, baseline, need, got, mark, why}``: mark is "met" (got >= need), "not met"
(got < need, or ours failed or gave a wrong result) or "n/a" (the ratio could not be measured in this run:
the baseline failed or did not run, the machine lacks the thread count, or a bandwidth target on a row
that the run's own ceilings put on the compute-bound side of the roofline); `why` says which.
"""

from __future__ import annotations

import math

MET, NOT_MET, NA = "met", "not met", "n/a"


def ridge(ceilings: dict) -> float:
    """Arithmetic intensity (flop / byte) where the run's copy-bandwidth slope meets its dense matmul rate."""
    return ceilings["matmul_TFLOPs"] * 1e12 / (ceilings["copy_GBps"] * 1e9)


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _measured(row: dict, target, ceilings: dict) -> tuple[float | None, str]:
    """(measured value, reason it is missing / not applicable; '' when it applies)."""
    name = target.baseline
    if name == "copy_bw":
        got = row.get("bw_frac")
        if not _finite(got):
            return None, "no bandwidth measured"
        if target.memory_bound_only:
            r = ridge(ceilings)
            if row.get("intensity", 0.0) >= r:
                return got, (f"compute-bound in this run: intensity {row['intensity']:.3g} >= ridge "
                             f"{r:.3g} flop/B")
        return got, ""
    if name.startswith("threads:"):
        t = name.split(":", 1)[1]
        got = row.get("scaling", {}).get(t)
        if not _finite(got):
            return None, f"not timed at {t} threads (the run had {row.get('threads')})"
        return got, ""
    b = row.get("baselines", {}).get(name)
    if b is None:
        return None, f"{name} did not run"
    if "error" in b:
        return None, f"{name} failed: {b['error']}"
    got = b.get("speedup")
    if not _finite(got):
        return None, f"no {name} ratio"
    return got, ""


def evaluate(row: dict, targets, ceilings: dict) -> list[dict]:
    """One mark per target of the row (see the module docstring)."""
    from sparsekernels.bench.report import check

    status = check(row)
    out = []
    for t in targets:
        m = {"target": t.text, "baseline": t.baseline, "need": t.ratio, "got": None}
        got, why = (None, "") if status == "failed" else _measured(row, t, ceilings)
        m["got"] = got
        if status == "failed":
            m.update(mark=NOT_MET, why=f"ours failed: {row.get('error', '')}".strip())
        elif status == "WRONG":
            m.update(mark=NOT_MET, why="ours gave a wrong result (check WRONG)")
        elif why:
            m.update(mark=NA, why=why)
        elif got >= t.ratio:
            m.update(mark=MET, why="")
        else:
            m.update(mark=NOT_MET, why="")
        out.append(m)
    return out


def fmt_got(m: dict) -> str:
    g = m.get("got")
    if not _finite(g):
        return "-"
    return f"{g:.0%}" if m["baseline"] == "copy_bw" else f"{g:.2f}x"


def cell(row: dict) -> str:
    """The table cell: every target of the row, 'measured mark (requirement)'."""
    parts = []
    for m in row.get("targets", []):
        parts.append(f"{m['mark']} {fmt_got(m)} ({m['target']})")
    return "; ".join(parts) if parts else "-"


def summary(rows: list[dict]) -> dict:
    counts = {MET: 0, NOT_MET: 0, NA: 0}
    for r in rows:
        for m in r.get("targets", []):
            counts[m["mark"]] = counts.get(m["mark"], 0) + 1
    return counts
