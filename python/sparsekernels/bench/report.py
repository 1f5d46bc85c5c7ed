"""Output of a harness run: terminal table, JSON lines, markdown report (plots: plots.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from sparsekernels.bench import marks

BOUND_FP32 = 1e-5  # docs: fp32 relative error bound; 16-bit rows are held to 2x torch dense's error
_EPS = {"float16": 2.0**-11, "bfloat16": 2.0**-8}


def check(row: dict) -> str:
    """'ok' when our error is within the project's bound against the float64 reference (and, for SpGEMM, the
    output pattern is the reference's), 'WRONG' when not, 'failed' when ours did not run. The 16-bit bound is
    2x the error of the row's dense baseline (`dense_baseline`: torch_dense, or dense_mask for SDDMM)."""
    if "err" not in row:
        return "failed"
    if row.get("pattern_ok") is False:
        return "WRONG"
    if row["dtype"] == "float32":
        bound = BOUND_FP32
    else:
        dense = row.get("baselines", {}).get(row.get("dense_baseline", "torch_dense"), {}).get("err")
        bound = 2 * max(dense or 0.0, _EPS[row["dtype"]])
    err = row["err"]
    return "ok" if err is not None and not math.isnan(err) and err <= bound else "WRONG"


def _fmt_baseline(b: dict) -> str:
    if "error" in b:
        return "failed"
    s = b.get("speedup")
    return "-" if s is None or (isinstance(s, float) and math.isnan(s)) else f"{s:.2f}x"


def baseline_names(rows: list[dict]) -> list[str]:
    names: list[str] = []
    for r in rows:
        for n in r.get("baselines", {}):
            if n not in names:
                names.append(n)
    return names


def _num(r: dict, key: str, fmt: str, scale: float = 1.0) -> str:
    v = r.get(key)
    return fmt.format(v * scale) if isinstance(v, (int, float)) and not math.isnan(v) else "-"


def compare_cell(r: dict) -> str:
    c = r.get("compare")
    if c is None:
        return "-"
    status = c["status"]
    if status == "new":
        return "new"
    ratio = c.get("t_ratio")
    text = f"{ratio:.2f}x" if ratio is not None else ""
    if c.get("regression"):
        return f"REGRESSION {c['reason']}"
    if status == "faster":
        return f"{text} faster"
    return text or status


def scaling_cell(r: dict) -> str:
    s = r.get("scaling")
    if not s:
        return "-"
    return ", ".join(f"{v:.2f}x@{t}" for t, v in s.items())


def table_rows(rows: list[dict]):
    names = baseline_names(rows)
    with_compare = any("compare" in r for r in rows)
    with_targets = any(r.get("targets") for r in rows)
    with_scaling = any("scaling" in r for r in rows)
    header = ["case", "thr", "ours (us)", *[f"vs {n}" for n in names], "GB/s", "% bw", "GFLOP/s", "% peak",
              "check"]
    if with_scaling:
        header.insert(3, "t1 / t")
    if with_targets:
        header.append("targets (measured, mark)")
    if with_compare:
        header.append("vs old (time ratio)")
    body = []
    for r in rows:
        line = [
            r["case"],
            str(r["threads"]) if r.get("threads") else "-",
            _num(r, "t_us", "{:.1f}") if "t_us" in r else "failed",
            *[_fmt_baseline(r["baselines"][n]) if n in r.get("baselines", {}) else "-" for n in names],
            _num(r, "GBps", "{:.3g}"),
            _num(r, "bw_frac", "{:.2g}", 100),
            _num(r, "TFLOPs", "{:.3g}", 1000),
            _num(r, "flop_frac", "{:.2g}", 100),
            check(r),
        ]
        if with_scaling:
            line.insert(3, scaling_cell(r))
        if with_targets:
            line.append(marks.cell(r))
        if with_compare:
            line.append(compare_cell(r))
        body.append(line)
    return header, body


def print_table(rows: list[dict], meta: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    header, body = table_rows(rows)
    t = Table(title=f"sparsekernels bench: {meta['suite']} on {meta['device_name']} "
                    f"({meta['threads']} threads); speedup = baseline time / ours")
    for h in header:
        t.add_column(h, justify="left" if h == "case" else "right", no_wrap=True)
    for b in body:
        style = "bold red" if b[-1].startswith("REGRESSION") or "WRONG" in b else None
        if style is None and "targets (measured, mark)" in header and "not met" in b[header.index(
                "targets (measured, mark)")]:
            style = "yellow"
        t.add_row(*b, style=style)
    console = Console()
    # the table is wide; crop nothing, even when piped
    need = sum(max(len(h), *(len(b[i]) for b in body)) + 3 for i, h in enumerate(header)) + 1 if body else 0
    console.width = max(console.width, 180, need)
    console.print(t)


def failures(rows: list[dict]) -> list[tuple[str, str, str]]:
    out = [(r["case"], "sparsekernels", r["error"]) for r in rows if "error" in r]
    out += [(r["case"], n, b["error"]) for r in rows for n, b in r.get("baselines", {}).items() if "error" in b]
    return out


def write_outputs(out_dir: Path, rows: list[dict], meta: dict, plots: list[str] | None = None) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    with open(out_dir / "results.jsonl", "w") as f:
        for r in rows:
            f.write(json.dumps(dict(r, check=check(r))) + "\n")
    c = meta["ceilings"]
    lines = [
        f"# sparsekernels bench: suite `{meta['suite']}`", "",
        f"- device: {meta['device_name']}; threads: {meta['threads']}; CPU ISA: {meta['cpu_isa']}",
        f"- torch {meta['torch']}; sparsekernels commit {meta['commit']}; {meta['date']}",
        f"- ceilings measured in this run: copy {c['copy_GBps']:.1f} GB/s (read + write), "
        f"dense matmul {c['matmul_TFLOPs']:.3f} TFLOP/s ({c.get('matmul_dtype', 'float32')})",
        f"- timing: {meta.get('timing', '')}",
        f"- run: {meta.get('wall_s', '?')} s wall; 1-minute load average {meta.get('load1_start', '?')} at the "
        f"start, {meta.get('load1_end', '?')} at the end (per row: `load1`, `wall_s` in results.jsonl; a load "
        f"above 0 from other processes makes multi-thread times noisy)",
        "- speedup = baseline time / our time (> 1: sparsekernels is faster); GB/s counts the bytes the format "
        "moves (format arrays + dense operand + output; SpGEMM: both operands + the product); GFLOP/s counts "
        "useful flops (2 x nnz x N; SpGEMM: 2 x partial products); % bw and % peak are fractions of the "
        "ceilings above; thr = CPU threads of the row; check = our error against the float64 reference "
        "within the project's bound (SpGEMM also: same output pattern)",
    ]
    for note in meta.get("notes", []):
        lines.append(f"- {note}")
    if meta.get("compare"):
        cm = meta["compare"]
        lines.append(f"- compared with `{cm['old']}` (commit {cm.get('old_commit', '?')}): "
                     f"{cm['regressions']} regressions (> {cm['threshold']:.0%} slower, or ok -> WRONG / failed), "
                     f"{cm['matched']} rows matched, {cm['new']} new")
    lines.append("")
    for suite in _suites_in_order(rows):
        srows = [r for r in rows if r.get("suite") == suite] if suite else rows
        if len(_suites_in_order(rows)) > 1:
            lines += [f"## {suite}", ""]
        header, body = table_rows(srows)
        lines += ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|",
                  *["| " + " | ".join(b) + " |" for b in body], ""]
    lines += targets_section(rows)
    regressions = [r for r in rows if r.get("compare", {}).get("regression")]
    if regressions:
        lines += ["## Regressions", ""] + [f"- **{r['case']}**: {r['compare']['reason']}" for r in regressions] + [""]
    fails = failures(rows)
    if fails:
        lines += ["## Failed measurements", ""] + [f"- {c_} / {n}: {e}" for c_, n, e in fails] + [""]
    if plots:
        lines += ["## Plots", ""] + [f"![{Path(p).stem}]({Path(p).name})" for p in plots] + [""]
    (out_dir / "report.md").write_text("\n".join(lines))


def targets_section(rows: list[dict]) -> list[str]:
    """Markdown: every target of every row, with the measured value and the mark, and the totals."""
    marked = [r for r in rows if r.get("targets")]
    if not marked:
        return []
    c = marks.summary(marked)
    lines = ["## Targets", "",
             f"{c[marks.MET]} met, {c[marks.NOT_MET]} not met, {c[marks.NA]} n/a (not measurable in this run); "
             "each mark is computed from this run's measurements (ratio = baseline time / ours; copy bw = "
             "achieved GB/s on the bytes the format moves / copy ceiling; threads = t(1 thread) / t(T threads)).",
             "", "| case | target | measured | mark | note |", "|---|---|---|---|---|"]
    for r in marked:
        for m in r["targets"]:
            mark = m["mark"] if m["mark"] != marks.NOT_MET else "**not met**"
            lines.append(f"| {r['case']} | {m['target']} | {marks.fmt_got(m)} | {mark} | "
                         f"{m.get('why', '').replace('|', '/')} |")
    return lines + [""]


def _suites_in_order(rows: list[dict]) -> list:
    seen: list = []
    for r in rows:
        s = r.get("suite")
        if s not in seen:
            seen.append(s)
    return seen or [None]
