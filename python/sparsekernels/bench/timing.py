"""Timing: medians after warm-up. CPU via torch.utils.benchmark, CUDA via CUDA events, with inputs rotated
so the working set exceeds the last-level cache (CPU, SpMM rows) or L2 (CUDA)."""

from __future__ import annotations

import itertools
import math
import statistics
from typing import Callable

import torch
import torch.utils.benchmark as tbench

# CPU measurement budget (seconds per measurement); the CLI's --min-time / --max-time set these.
CPU_MIN_RUN_TIME = 0.3
CPU_MAX_RUN_TIME = 3.0
# CUDA: rotated copies must exceed this many times the L2 size; at most MAX_COPIES copies.
L2_FACTOR = 2
MAX_COPIES = 256
DEFAULT_L2_BYTES = 50 * 2**20  # H100's L2 where the device does not say


# CPU: operands smaller than this many times the last-level cache are timed over rotated copies that together
# exceed it, so that no call finds its inputs left in the cache by the previous one (an LLM's decode reads each
# layer's weights once per token; a 4096 x 4096 format of 20 MB would otherwise stay in a 32 MB L3 between calls
# while the 64 MB dense weight does not).
CPU_LLC_FACTOR = 2
DEFAULT_LLC_BYTES = 32 * 2**20
# at most this many copies on the CPU (building each costs a clone and a baseline's conversion): operands of at
# least 2 MiB still exceed 2 x a 32 MiB cache together
CPU_MAX_COPIES = 32


def llc_bytes() -> int:
    """Size of this CPU's last-level cache (the highest cache level sysfs lists for cpu0), else
    DEFAULT_LLC_BYTES."""
    import glob
    import os

    best = (0, 0)
    for d in glob.glob("/sys/devices/system/cpu/cpu0/cache/index*"):
        try:
            with open(os.path.join(d, "level")) as f:
                level = int(f.read())
            with open(os.path.join(d, "size")) as f:
                text = f.read().strip()
        except (OSError, ValueError):
            continue
        mult = {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1:].upper(), 1)
        digits = text[:-1] if mult != 1 else text
        if digits.isdigit():
            best = max(best, (level, int(digits) * mult))
    return best[1] or DEFAULT_LLC_BYTES


def cpu_copies_needed(bytes_per_copy: int, llc: int | None = None) -> int:
    """How many operand copies to rotate on the CPU: 1 when one copy already exceeds CPU_LLC_FACTOR x the
    last-level cache, else enough to exceed it together (at most CPU_MAX_COPIES)."""
    limit = CPU_LLC_FACTOR * (llc_bytes() if llc is None else llc)
    if int(bytes_per_copy) > limit:
        return 1
    return min(CPU_MAX_COPIES, math.floor(limit / max(int(bytes_per_copy), 1)) + 1)


def time_cpu(fn: Callable[[], object] | list[Callable[[], object]], min_run_time: float | None = None,
             max_run_time: float | None = None, best: bool = False) -> float:
    """Median seconds per call of fn on the CPU (torch.utils.benchmark, thread count as set in torch): blocks
    of calls until the median is stable to 10 % or max_run_time is spent; with best, the fastest block's
    time per call instead (for ceilings: what the machine can do, not what a noisy moment let it). A list of
    equivalent calls on different operand copies is cycled, one call per timed call."""
    min_run_time = CPU_MIN_RUN_TIME if min_run_time is None else min_run_time
    max_run_time = CPU_MAX_RUN_TIME if max_run_time is None else max_run_time
    if isinstance(fn, list):
        fns = fn
        for f in fns[1:]:
            f()  # warm-up of every copy
        nxt = itertools.cycle(fns).__next__
        fn = lambda: nxt()()  # noqa: E731
    fn()  # warm-up (and lazy initialisation)
    timer = tbench.Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    m = timer.adaptive_autorange(min_run_time=min_run_time, max_run_time=max(max_run_time, min_run_time))
    return min(m.times) if best else m.median


def l2_bytes() -> int:
    """L2 cache size of the current CUDA device (DEFAULT_L2_BYTES where torch does not report it)."""
    try:
        size = int(torch.cuda.get_device_properties(torch.cuda.current_device()).L2_cache_size)
        return size if size > 0 else DEFAULT_L2_BYTES
    except Exception:  # noqa: BLE001
        return DEFAULT_L2_BYTES


def copies_needed(bytes_per_copy: int, l2: int | None = None) -> int:
    """How many input copies to rotate so that together they exceed L2_FACTOR x L2 (at least 2, at most
    MAX_COPIES)."""
    l2 = l2_bytes() if l2 is None else l2
    need = math.floor(L2_FACTOR * l2 / max(int(bytes_per_copy), 1)) + 1
    return max(2, min(MAX_COPIES, need))


def time_cuda(fns: list[Callable[[], object]], reps: int = 50, warmup: int = 3) -> float:
    """Median seconds per call on CUDA (CUDA events around each call, after warm-up); `fns` are equivalent
    calls on different input copies, cycled so that consecutive calls do not find their inputs in L2."""
    if not fns:
        raise ValueError("time_cuda: no function to time")
    for f in fns:  # every copy once: lazy init, allocator warm-up
        f()
    for i in range(warmup):
        fns[i % len(fns)]()
    torch.cuda.synchronize()
    reps = max(reps, len(fns))
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    for i in range(reps):
        f = fns[i % len(fns)]
        starts[i].record()
        f()
        ends[i].record()
    torch.cuda.synchronize()
    return statistics.median(s.elapsed_time(e) * 1e-3 for s, e in zip(starts, ends))


def measure_ceilings(device: str) -> dict:
    """Memory bandwidth (copy of a 256 MiB buffer, read + write bytes) and dense matmul rate (fp32 on CPU,
    fp16 on CUDA), measured now on this machine (CPU: the fastest block of calls; CUDA: the median)."""
    n_bytes = 256 * 2**20
    src = torch.empty(n_bytes // 4, device=device).uniform_()
    dst = torch.empty_like(src)
    if device == "cuda":
        t_copy = time_cuda([lambda: dst.copy_(src)], reps=20)
        a = torch.randn(8192, 8192, device=device, dtype=torch.float16)
        t_mm = time_cuda([lambda: a @ a], reps=10)
        flops = 2 * 8192**3
        mm_dtype = "float16"
    else:
        # the fastest block of calls: a ceiling is what the machine can do (a median taken in a noisy moment
        # moved the dense rate from 0.149 to 0.090 TFLOP/s between two runs an hour apart, and with it which
        # rows count as memory-bound)
        budget = min(0.5, CPU_MAX_RUN_TIME)
        t_copy = time_cpu(lambda: dst.copy_(src), min_run_time=budget, max_run_time=max(budget, 1.0), best=True)
        a = torch.randn(2048, 2048)
        t_mm = time_cpu(lambda: a @ a, min_run_time=budget, max_run_time=max(budget, 1.0), best=True)
        flops = 2 * 2048**3
        mm_dtype = "float32"
    return {"copy_GBps": 2 * n_bytes / t_copy / 1e9, "matmul_TFLOPs": flops / t_mm / 1e12, "matmul_dtype": mm_dtype}
