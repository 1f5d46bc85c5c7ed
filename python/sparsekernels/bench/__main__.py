"""python -m sparsekernels.bench --suite quick|decode|prefill|dlmc|spgemm|sddmm|targets|minilm|attention|all
--device cpu|cuda --out DIR"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
import warnings
from pathlib import Path

import torch

import sparsekernels as sk
from sparsekernels.bench import compare, marks, report, runner, timing
from sparsekernels.bench.suites import ALL, EMPTY_REASON, PLANNED, SUITES


def _commit() -> str:
    try:
        root = Path(sk.__file__).resolve().parents[2]
        return subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except Exception:  # noqa: BLE001
        return "unknown"


def _device_name(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name()
    name = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return name


def _load() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m sparsekernels.bench", description=__doc__)
    p.add_argument("--suite", default="quick", help=f"one of {', '.join(SUITES)}, or all")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"])
    p.add_argument("--out", default="bench-out",
                   help="directory for results.jsonl, report.md, meta.json and the PNG plots")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    p.add_argument("--limit", type=int, default=None, help="run only the first N rows of each suite")
    p.add_argument("--compare", metavar="OLD", default=None,
                   help="an older results.jsonl (or its directory): mark rows > 10%% slower or no longer ok")
    p.add_argument("--fail-on-regression", action="store_true",
                   help="exit with status 2 when --compare finds a regression")
    p.add_argument("--min-time", type=float, default=timing.CPU_MIN_RUN_TIME,
                   help="CPU: minimum seconds per measurement (default %(default)s)")
    p.add_argument("--max-time", type=float, default=timing.CPU_MAX_RUN_TIME,
                   help="CPU: maximum seconds per measurement (default %(default)s)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
    warnings.filterwarnings("ignore", message="Sparse BSR tensor support is in beta state")
    suites = list(ALL) if args.suite == "all" else [args.suite]
    if args.suite != "all" and args.suite not in SUITES:
        planned = f" ('{args.suite}' arrives with its kernels)" if args.suite in PLANNED else ""
        p.error(f"unknown suite '{args.suite}'{planned}; available: {', '.join(SUITES)}, all")
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device is available")
    old = None
    if args.compare:
        try:
            old = compare.load(args.compare)
        except (OSError, ValueError) as e:
            p.error(str(e))
    if args.threads:
        torch.set_num_threads(args.threads)
    runner.ALL_THREADS = torch.get_num_threads()
    timing.CPU_MIN_RUN_TIME, timing.CPU_MAX_RUN_TIME = args.min_time, args.max_time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    plan = []
    notes = []
    for name in suites:
        cases = SUITES[name](args.device)[: args.limit]
        if not cases and name in EMPTY_REASON:
            print(f"suite {name}: {EMPTY_REASON[name]}", file=sys.stderr)
            notes.append(f"suite `{name}`: {EMPTY_REASON[name]}")
        plan += [(name, c) for c in cases]
    meta = {
        "suite": args.suite, "suites": suites, "device": args.device, "device_name": _device_name(args.device),
        "threads": torch.get_num_threads(), "cpu_isa": sk.cpu_isa(), "torch": torch.__version__,
        "sparsekernels": sk.build_info(), "commit": _commit(), "python": sys.version.split()[0],
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "timing": (f"CPU: torch.utils.benchmark adaptive_autorange median, {args.min_time}-{args.max_time} s per "
                   f"measurement, {torch.get_num_threads()} threads unless the row says otherwise; SpMM rows "
                   f"rotated over operand copies exceeding {timing.CPU_LLC_FACTOR}x the last-level cache "
                   f"({timing.llc_bytes() / 2**20:.0f} MiB)"
                   if args.device == "cpu" else
                   f"CUDA events, median of >= 50 calls after warm-up, inputs rotated over copies exceeding "
                   f"{timing.L2_FACTOR}x L2 ({timing.l2_bytes() / 2**20:.0f} MiB)"),
        "notes": notes,
    }
    rows = []
    # every finished row is also appended here at once, so that a run stopped early (a time limit on the GPU
    # machine) leaves what it measured; removed when the run writes its outputs
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    partial = out / "results.partial.jsonl"
    partial.write_text("")
    meta["load1_start"] = _load()
    t_start = time.perf_counter()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  transient=True) as progress:
        task = progress.add_task("measuring ceilings", total=len(plan) + 1)
        meta["ceilings"] = timing.measure_ceilings(args.device)
        progress.advance(task)
        n_done = 0
        for suite, case in plan:
            progress.update(task, description=f"[{suite}] {case.label}")
            if hasattr(case, "rows"):  # a whole-model suite: its rows come finished
                try:
                    rows += [{"suite": suite, **r} for r in case.rows(args.device)]
                except ImportError as e:  # the model's weights package is not installed
                    print(f"suite {suite}: {e}", file=sys.stderr)
                    meta["notes"].append(f"suite `{suite}`: not run: {e}")
            else:
                load = _load()
                t0 = time.perf_counter()
                row = runner.run_case(case, args.device, meta["ceilings"])
                # wall time of the whole row (inputs, reference, every measurement) and the 1-minute load
                # average when it started: a loaded machine is the usual reason for odd numbers
                rows.append({"suite": suite, **row, "wall_s": round(time.perf_counter() - t0, 2), "load1": load})
            with open(partial, "a") as f:
                for r in rows[n_done:]:
                    f.write(json.dumps(r, default=str) + "\n")
            n_done = len(rows)
            progress.advance(task)
    meta["load1_end"] = _load()
    meta["wall_s"] = round(time.perf_counter() - t_start, 1)
    if old is not None:
        summary = compare.annotate(rows, *old)
        meta["compare"] = {"old": str(args.compare), "old_commit": old[1].get("commit", "?"),
                           "threshold": compare.THRESHOLD, **summary}
    written: list[str] = []
    if not args.no_plots and rows:
        from sparsekernels.bench import plots

        written, plot_errors = plots.write_plots(out, rows, meta)
        for e in plot_errors:
            print(f"warning: plot failed: {e}", file=sys.stderr)
            notes.append(f"plot failed: {e}")
    report.print_table(rows, meta)
    report.write_outputs(out, rows, meta, written)
    partial.unlink(missing_ok=True)
    print(f"wrote {out}/results.jsonl, {out}/report.md, {out}/meta.json"
          + "".join(f", {Path(w).name}" for w in written))
    if any(r.get("targets") for r in rows):
        c = marks.summary(rows)
        print(f"targets: {c[marks.MET]} met, {c[marks.NOT_MET]} not met, {c[marks.NA]} n/a", file=sys.stderr)
    status = 0
    wrong = [r["case"] for r in rows if report.check(r) == "WRONG"]
    if wrong:
        print(f"ERROR: {len(wrong)} rows exceed the error bound: {wrong}", file=sys.stderr)
        status = 1
    if old is not None:
        n_reg = meta["compare"]["regressions"]
        print(f"compare with {args.compare}: {n_reg} regressions, {meta['compare']['matched']} rows matched, "
              f"{meta['compare']['new']} new", file=sys.stderr)
        if n_reg and args.fail_on_regression and status == 0:
            status = 2
    return status


if __name__ == "__main__":
    sys.exit(main())
