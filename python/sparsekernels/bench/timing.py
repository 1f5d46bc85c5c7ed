"""Timing: medians after warm-up. CPU via torch.utils.benchmark, CUDA via CUDA events with
inputs rotated so the working set exceeds L2."""

from __future__ import annotations

import statistics
from typing import Callable

import torch
import torch.utils.benchmark as tbench


def time_cpu(fn: Callable[[], object], min_run_time: float = 0.3, max_run_time: float = 3.0) -> float:
    """Median seconds per call of fn on the CPU (torch.utils.benchmark, thread count as set in torch): blocks
    of calls until the median is stable to 10 % or max_run_time is spent."""
    fn()  # warm-up (and lazy initialisation)
    timer = tbench.Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    return timer.adaptive_autorange(min_run_time=min_run_time, max_run_time=max_run_time).median


def time_cuda(fns: list[Callable[[], object]], reps: int = 50) -> float:
    """Median seconds per call on CUDA; `fns` are equivalent calls on different input copies, cycled so that
    consecutive calls do not find their inputs in L2."""
    for f in fns:
        f()
    torch.cuda.synchronize()
    times = []
    for i in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        f = fns[i % len(fns)]
        start.record()
        f()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) * 1e-3)
    return statistics.median(times)


def measure_ceilings(device: str) -> dict:
    """Memory bandwidth (copy of a 256 MiB buffer, read + write bytes) and dense matmul rate (fp32 on CPU,
    fp16 on CUDA), measured now on this machine."""
    n_bytes = 256 * 2**20
    src = torch.randn(n_bytes // 4, device=device)
    dst = torch.empty_like(src)
    if device == "cuda":
        t_copy = time_cuda([lambda: dst.copy_(src)], reps=20)
        a = torch.randn(8192, 8192, device=device, dtype=torch.float16)
        t_mm = time_cuda([lambda: a @ a], reps=10)
        flops = 2 * 8192**3
    else:
        t_copy = time_cpu(lambda: dst.copy_(src), min_run_time=0.5)
        a = torch.randn(2048, 2048)
        t_mm = time_cpu(lambda: a @ a, min_run_time=0.5)
        flops = 2 * 2048**3
    return {"copy_GBps": 2 * n_bytes / t_copy / 1e9, "matmul_TFLOPs": flops / t_mm / 1e12}
