"""PNG plots of a harness run (matplotlib, Agg backend): speedup vs sparsity per shape, a roofline, and
the SpGEMM speedups."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

_FMT_COLOR = {"csr": "tab:blue", "bitmap": "tab:orange", "sparse24": "tab:green", "bsr": "tab:red"}
_DTYPE_STYLE = {"float32": "-", "bfloat16": "--", "float16": ":"}
_DTYPE_MARKER = {"float32": "o", "bfloat16": "s", "float16": "^"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _ok(v) -> bool:
    return isinstance(v, (int, float)) and not math.isnan(v) and v > 0


def _grid(n: int, ncols_max: int = 4):
    ncols = min(ncols_max, n)
    return ncols, math.ceil(n / ncols)


def _source_tag(src: str) -> str:
    if src == "random":
        return ""
    if src == "minilm-rows":
        return " (MiniLM row lengths)"
    return f" ({src.split(':', 1)[1].replace('encoder.layer.', 'L').replace('.', ' ')})"


def speedup_vs_sparsity(rows: list[dict], path: Path, baseline: str = "torch_dense") -> Path | None:
    """One panel per (suite, shape, N, weight source); x = sparsity, y = baseline time / our time (log);
    one line per format / dtype. Rows where ours or the baseline failed are left out of the lines (they are
    in the table)."""
    panels: dict = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if r.get("op") != "spmm" or not _ok(r.get("t_us")):
            continue
        b = r.get("baselines", {}).get(baseline, {})
        if not _ok(b.get("speedup")):
            continue
        key = (r.get("suite") or "", r["m"], r["k"], r["n"], r.get("source", "random"))
        fmt = r["format"] + (" {}x{}".format(*r["blocksize"]) if r.get("blocksize") else "")
        panels[key][(fmt, r["dtype"])].append((r["sparsity"], b["speedup"]))
    if not panels:
        return None
    plt = _plt()
    ncols, nrows = _grid(len(panels))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.3 * nrows), squeeze=False)
    for ax, (key, lines) in zip(axes.flat, panels.items()):
        suite, m, k, n, src = key
        for (fmt, dtype), pts in sorted(lines.items()):
            pts.sort()
            xs, ys = [100 * p[0] for p in pts], [p[1] for p in pts]
            ax.plot(xs, ys, _DTYPE_STYLE.get(dtype, "-"), marker=_DTYPE_MARKER.get(dtype, "o"),
                    color=_FMT_COLOR.get(fmt.split()[0], "gray"), label=f"{fmt} {dtype}", markersize=5)
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_yscale("log", base=2)
        ax.set_title(f"{m}x{k} @ N={n}{_source_tag(src)}" + (f" [{suite}]" if suite else ""), fontsize=9)
        ax.set_xlabel("sparsity (%)", fontsize=8)
        ax.set_ylabel(f"speedup vs {baseline}", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(f"sparsekernels SpMM: speedup vs {baseline} (> 1 = faster than {baseline})", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def roofline(rows: list[dict], ceilings: dict, path: Path) -> Path | None:
    """Achieved GFLOP/s (useful flops) vs arithmetic intensity (useful flops / bytes the format moves) for every
    row of ours, under the bandwidth and matmul ceilings measured in the same run."""
    # thread-scaling rows repeat a row of ours at all threads: left out
    pts = [r for r in rows if _ok(r.get("TFLOPs")) and _ok(r.get("intensity")) and "scaling" not in r]
    if not pts:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 5.2))
    bw = ceilings["copy_GBps"]  # GB/s
    peak = ceilings["matmul_TFLOPs"] * 1e3  # GFLOP/s
    xs_all = [r["intensity"] for r in pts]
    lo, hi = min(xs_all + [peak / bw]) / 4, max(xs_all + [peak / bw]) * 4
    xs = [lo * (hi / lo) ** (i / 200) for i in range(201)]
    ax.plot(xs, [min(peak, bw * x) for x in xs], color="black", linewidth=1.5,
            label=f"ceiling: {bw:.0f} GB/s copy, {peak:.0f} GFLOP/s dense matmul ({ceilings.get('matmul_dtype', '')})")
    seen = set()
    for r in pts:
        op = r.get("op", "spmm")
        fmt = r.get("format", "?")
        label = f"spgemm {r.get('graph', '')}" if op == "spgemm" else f"{op} {fmt}"
        color = "tab:purple" if op == "spgemm" else _FMT_COLOR.get(fmt, "gray")
        marker = {"spgemm": "D", "sddmm": "*"}.get(op, _DTYPE_MARKER.get(r.get("dtype"), "o"))
        ax.scatter(r["intensity"], r["TFLOPs"] * 1e3, color=color, marker=marker, s=22, alpha=0.8,
                   label=None if label in seen else label)
        seen.add(label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (useful flop / byte moved)")
    ax.set_ylabel("achieved GFLOP/s (useful flops)")
    ax.set_title("roofline (markers: o float32, s bfloat16, ^ float16, D spgemm, * sddmm)", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def spgemm_speedups(rows: list[dict], path: Path) -> Path | None:
    """Horizontal bars: baseline time / our time for each SpGEMM row and baseline."""
    srows = [r for r in rows if r.get("op") == "spgemm" and _ok(r.get("t_us"))]
    if not srows:
        return None
    names = []
    for r in srows:
        for n in r.get("baselines", {}):
            if n not in names:
                names.append(n)
    plt = _plt()
    height = 0.8 / max(len(names), 1)
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(srows) * max(1, len(names) / 2) + 1.5))
    for j, name in enumerate(names):
        ys, vals = [], []
        for i, r in enumerate(srows):
            s = r.get("baselines", {}).get(name, {}).get("speedup")
            if _ok(s):
                ys.append(i + j * height)
                vals.append(s)
        ax.barh(ys, vals, height=height, label=f"vs {name}")
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xscale("log", base=2)
    ax.set_yticks([i + height * (len(names) - 1) / 2 for i in range(len(srows))])
    ax.set_yticklabels([r["case"].removeprefix("spgemm ") for r in srows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("speedup (baseline time / ours; > 1 = faster)")
    ax.set_title("sparsekernels SpGEMM (CSR)", fontsize=10)
    ax.grid(True, axis="x", which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def write_plots(out_dir: Path, rows: list[dict], meta: dict) -> tuple[list[str], list[str]]:
    """All plots that have data; returns (written paths, errors). A plot that fails is reported, not fatal."""
    written, errors = [], []
    jobs = [("speedup.png", lambda p: speedup_vs_sparsity(rows, p)),
            ("roofline.png", lambda p: roofline(rows, meta["ceilings"], p)),
            ("spgemm_speedup.png", lambda p: spgemm_speedups(rows, p))]
    for name, job in jobs:
        try:
            p = job(out_dir / name)
            if p is not None:
                written.append(str(p))
        except Exception as e:  # noqa: BLE001
            errors.append(f"{name}: {type(e).__name__}: {e}")
    return written, errors
