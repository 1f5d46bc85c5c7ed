"""Output of a harness run: terminal table, JSON lines, markdown report."""

from __future__ import annotations

import json
from pathlib import Path

BOUND_FP32 = 1e-5  # docs: fp32 relative error bound; 16-bit rows are held to 2x torch dense's error


def check(row: dict) -> str:
    """'ok' when our error is within the project's bound against the float64 reference, else 'WRONG'."""
    if "err" not in row:
        return "failed"
    dense = row["baselines"].get("torch_dense", {}).get("err")
    if row["dtype"] == "float32":
        bound = BOUND_FP32
    else:
        bound = 2 * max(dense or 0.0, {"float16": 2.0**-11, "bfloat16": 2.0**-8}[row["dtype"]])
    return "ok" if row["err"] <= bound else "WRONG"


def _fmt_baseline(b: dict) -> str:
    if "error" in b:
        return "failed"
    return f"{b['speedup']:.2f}x"


def baseline_names(rows: list[dict]) -> list[str]:
    names: list[str] = []
    for r in rows:
        for n in r["baselines"]:
            if n not in names:
                names.append(n)
    return names


def table_rows(rows: list[dict]):
    names = baseline_names(rows)
    header = ["case", "ours (us)", *[f"vs {n}" for n in names], "GB/s", "% bw", "check"]
    body = []
    for r in rows:
        body.append([
            r["case"],
            f"{r['t_us']:.1f}" if "t_us" in r else "failed",
            *[_fmt_baseline(r["baselines"][n]) if n in r["baselines"] else "-" for n in names],
            f"{r['GBps']:.1f}" if "GBps" in r else "-",
            f"{100 * r['bw_frac']:.0f}" if "bw_frac" in r else "-",
            check(r),
        ])
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
        t.add_row(*b)
    console = Console()
    console.width = max(console.width, 160)  # the table is wide; wrap nothing when piped
    console.print(t)


def write_outputs(out_dir: Path, rows: list[dict], meta: dict) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    with open(out_dir / "results.jsonl", "w") as f:
        for r in rows:
            f.write(json.dumps(dict(r, check=check(r))) + "\n")
    header, body = table_rows(rows)
    lines = [
        f"# sparsekernels bench: suite `{meta['suite']}`", "",
        f"- device: {meta['device_name']}; threads: {meta['threads']}; CPU ISA: {meta['cpu_isa']}",
        f"- torch {meta['torch']}; sparsekernels commit {meta['commit']}; {meta['date']}",
        f"- ceilings measured in this run: copy {meta['ceilings']['copy_GBps']:.1f} GB/s (read + write), "
        f"dense matmul {meta['ceilings']['matmul_TFLOPs']:.3f} TFLOP/s",
        "- speedup = baseline time / our time (> 1: sparsekernels is faster); GB/s counts the bytes the format "
        "moves (format arrays + dense operand + output); check = our error against the float64 reference "
        "within the project's bound", "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
        *["| " + " | ".join(b) + " |" for b in body],
    ]
    failures = [(r["case"], n, b["error"]) for r in rows for n, b in r["baselines"].items() if "error" in b]
    failures += [(r["case"], "sparsekernels", r["error"]) for r in rows if "error" in r]
    if failures:
        lines += ["", "## Failed measurements", ""] + [f"- {c} / {n}: {e}" for c, n, e in failures]
    (out_dir / "report.md").write_text("\n".join(lines) + "\n")
