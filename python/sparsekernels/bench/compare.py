"""--compare OLD: match this run's rows with an older results.jsonl by (suite, case label) and mark
regressions: our time more than THRESHOLD slower, or a check that went from ok to WRONG (or to failed)."""

from __future__ import annotations

import json
from pathlib import Path

THRESHOLD = 0.10


def load(path: str | Path) -> tuple[list[dict], dict]:
    """Rows and meta of an older run: a results.jsonl file or the directory holding it."""
    p = Path(path)
    if p.is_dir():
        p = p / "results.jsonl"
    if not p.is_file():
        raise FileNotFoundError(f"--compare: no results.jsonl at {path}")
    rows = [json.loads(line) for line in p.read_text().splitlines() if line.strip()]
    meta_path = p.parent / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    return rows, meta


def annotate(rows: list[dict], old_rows: list[dict], old_meta: dict, threshold: float = THRESHOLD) -> dict:
    """Adds row['compare'] = {status, regression, reason, t_ratio, old_t_us, old_check} to every row and
    returns a summary {matched, new, regressions}."""
    from sparsekernels.bench.report import check

    default_suite = old_meta.get("suite")
    by_key: dict = {}
    by_case: dict = {}
    for r in old_rows:
        by_key[(r.get("suite", default_suite), r["case"])] = r
        by_case.setdefault(r["case"], []).append(r)
    summary = {"matched": 0, "new": 0, "regressions": 0}
    for r in rows:
        old = by_key.get((r.get("suite"), r["case"]))
        if old is None and len(by_case.get(r["case"], [])) == 1:
            old = by_case[r["case"]][0]  # older files without a suite field
        if old is None:
            r["compare"] = {"status": "new", "regression": False}
            summary["new"] += 1
            continue
        summary["matched"] += 1
        old_check = old.get("check") or check(old)
        new_check = check(r)
        c = {"old_t_us": old.get("t_us"), "old_check": old_check, "regression": False, "status": "same"}
        if old.get("t_us") and r.get("t_us"):
            c["t_ratio"] = r["t_us"] / old["t_us"]
            if c["t_ratio"] > 1 + threshold:
                c.update(status="slower", regression=True, reason=f"{c['t_ratio']:.2f}x the old time "
                         f"({old['t_us']:.1f} -> {r['t_us']:.1f} us)")
            elif c["t_ratio"] < 1 / (1 + threshold):
                c["status"] = "faster"
        if old_check == "ok" and new_check != "ok":
            c.update(status=new_check, regression=True,
                     reason=f"check went from ok to {new_check}" + (f"; {c['reason']}" if "reason" in c else ""))
        if c["regression"]:
            summary["regressions"] += 1
        r["compare"] = c
    return summary
