"""python -m sparsekernels.bench --suite quick|decode|prefill --device cpu|cuda --out DIR"""

from __future__ import annotations

import argparse
import datetime
import platform
import subprocess
import sys
from pathlib import Path

import torch

import sparsekernels as sk
from sparsekernels.bench import report
from sparsekernels.bench.runner import run_case
from sparsekernels.bench.suites import PLANNED, SUITES
from sparsekernels.bench.timing import measure_ceilings


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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m sparsekernels.bench", description=__doc__)
    p.add_argument("--suite", default="quick", help=f"one of {', '.join(SUITES)}")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"])
    p.add_argument("--out", default="bench-out", help="directory for results.jsonl, report.md, meta.json")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    p.add_argument("--limit", type=int, default=None, help="run only the first N rows of the suite")
    args = p.parse_args(argv)
    if args.suite not in SUITES:
        planned = f" ('{args.suite}' arrives with its kernels)" if args.suite in PLANNED else ""
        p.error(f"unknown suite '{args.suite}'{planned}; available: {', '.join(SUITES)}")
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device is available")
    if args.threads:
        torch.set_num_threads(args.threads)

    from rich.progress import Progress

    cases = SUITES[args.suite](args.device)[: args.limit]
    meta = {
        "suite": args.suite, "device": args.device, "device_name": _device_name(args.device),
        "threads": torch.get_num_threads(), "cpu_isa": sk.cpu_isa(), "torch": torch.__version__,
        "sparsekernels": sk.build_info(), "commit": _commit(), "python": sys.version.split()[0],
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    rows = []
    with Progress(transient=True) as progress:
        task = progress.add_task("measuring ceilings", total=len(cases) + 1)
        meta["ceilings"] = measure_ceilings(args.device)
        progress.advance(task)
        for case in cases:
            progress.update(task, description=case.label)
            rows.append(run_case(case, args.device, meta["ceilings"]))
            progress.advance(task)
    report.print_table(rows, meta)
    out = Path(args.out)
    report.write_outputs(out, rows, meta)
    print(f"wrote {out}/results.jsonl, {out}/report.md, {out}/meta.json")
    wrong = [r["case"] for r in rows if report.check(r) == "WRONG"]
    if wrong:
        print(f"ERROR: {len(wrong)} rows exceed the error bound: {wrong}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
