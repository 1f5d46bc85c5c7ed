"""Runs one case: builds inputs, times ours and the baselines, checks every timed output.

Ours and every baseline are built by a *factory* ``make(*operands) -> (fn, nbytes)``: fn is a zero-argument
callable computing the product, nbytes the bytes it reads (its own operand representation + the dense input).
On CUDA the factory is called again on cloned operands until the copies together exceed 2x L2
(timing.copies_needed) and the timed calls cycle through them; on the CPU (torch.utils.benchmark) SpMM rows do
the same until the copies exceed 2x the last-level cache (timing.cpu_copies_needed; one copy when it alone
does), the other rows time one copy. A baseline that cannot be built or fails maps to {"error": ...} in the row.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

import sparsekernels as sk
from sparsekernels.bench import marks, timing
from sparsekernels.bench.suites import Case, SDDMMCase, SpGEMMCase, ThreadScalingCase

# threads that "all threads" means (set by __main__ from torch's count at start)
ALL_THREADS = torch.get_num_threads()


def _nb(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


def _short(e: BaseException) -> str:
    text = f"{type(e).__name__}: {e}".strip()
    return (text.splitlines()[0] if text else type(e).__name__)[:200]


@contextmanager
def _num_threads(device: str, threads: int):
    """CPU: run the block with `threads` threads (0: leave the count as it is), restoring it after."""
    if device != "cpu" or not threads:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    if ref.numel() == 0:
        return 0.0
    out = out.to_dense() if out.layout != torch.strided else out
    if tuple(out.shape) != tuple(ref.shape):
        raise ValueError(f"output shape {tuple(out.shape)} != reference {tuple(ref.shape)}")
    return ((out.double().cpu() - ref).abs().max() / ref.abs().max().clamp_min(1e-30)).item()


def _measure(device: str, make: Callable, operands: tuple, check: Callable, rotate_cpu: bool = False) -> dict:
    """Build fn on operands, check its output (check(out) -> dict with at least 'err'), then time it (on CUDA,
    and on the CPU with rotate_cpu, over rotated copies of the operands). Returns {'t_us', 'err', ...,
    'copies'} or {'error'}."""
    global _MEMO_OFF
    try:
        fn, nbytes = make(*operands)
        res = check(fn())
        if device == "cuda":
            n = timing.copies_needed(nbytes)
            fns = [fn] + [make(*(x.clone() for x in operands))[0] for _ in range(n - 1)]
            t = timing.time_cuda(fns)
            res["copies"] = n
            del fns
        elif rotate_cpu and (n := timing.cpu_copies_needed(nbytes)) > 1:
            _MEMO_OFF += 1  # the copies' conversions are not kept: they would evict the shared ones
            try:
                fns = [fn] + [make(*(x.clone() for x in operands))[0] for _ in range(n - 1)]
            finally:
                _MEMO_OFF -= 1
            t = timing.time_cpu(fns)
            res["copies"] = n
            del fns
        else:
            t = timing.time_cpu(fn)
        res["t_us"] = t * 1e6
        return res
    except Exception as e:  # noqa: BLE001  (reported in the row)
        return {"error": _short(e)}


def _finish_baselines(row: dict, results: dict) -> None:
    t_ours = row.get("t_us")
    for name, b in results.items():
        if "t_us" in b:
            b["speedup"] = b["t_us"] / t_ours if t_ours else math.nan
    row["baselines"] = results


def _metrics(row: dict, ceilings: dict, nbytes_moved: int, flops: int) -> None:
    row["bytes_moved"] = int(nbytes_moved)
    row["flops"] = int(flops)
    row["intensity"] = flops / nbytes_moved if nbytes_moved else 0.0
    if "t_us" in row and row["t_us"] > 0:
        t = row["t_us"] * 1e-6
        row["GBps"] = nbytes_moved / t / 1e9
        row["bw_frac"] = row["GBps"] / ceilings["copy_GBps"]
        row["TFLOPs"] = flops / t / 1e12
        row["flop_frac"] = row["TFLOPs"] / ceilings["matmul_TFLOPs"]


# ------------------------------------------------------------------------------------------------ SpMM


def ours_spmm(a, b):
    """The op under test (a module-level name so that tests can substitute a broken one)."""
    return torch.ops.sparse.spmm(a, b)


def ours_spgemm(a, b):
    return sk.spgemm(a, b)


def _prune(case: Case, w: torch.Tensor) -> torch.Tensor:
    if case.fmt == "sparse24":
        return sk.prune_n_m(w, 2, 4)
    if case.fmt == "bsr":
        return sk.prune_blocks(w, case.blocksize, case.sparsity)
    return sk.prune_magnitude(w, case.sparsity)


def _pack(case: Case, w: torch.Tensor):
    return {"csr": sk.to_csr, "bitmap": sk.to_bitmap, "sparse24": sk.to_sparse24,
            "bsr": lambda x: sk.to_bsr(x, case.blocksize)}[case.fmt](w)


def _weight(case: Case, g: torch.Generator) -> tuple[torch.Tensor, dict]:
    """The pruned dense fp32 weight of a case and facts about where it came from."""
    from sparsekernels.bench import dlmc

    if case.source == "random":
        return _prune(case, torch.randn(case.m, case.k, generator=g)), {}
    if case.source == "minilm-rows":
        w = dlmc.synthetic_weight(case.m, case.k, case.sparsity)
        pool = dlmc.row_density_pool(case.sparsity) * case.k
        src = {"minilm_row_nnz_cv": float(pool.std() / pool.mean()) if pool.mean() > 0 else 0.0}
        return w, {**src, **dlmc.row_stats(w)}
    if case.source.startswith("minilm:"):
        w = dlmc.minilm_weight(case.source.split(":", 1)[1], case.sparsity)
        return w, dlmc.row_stats(w)
    raise ValueError(f"unknown weight source '{case.source}'")


def _spmm_baselines(case: Case, device: str) -> dict[str, Callable]:
    """name -> factory(w, b) -> (fn, nbytes): the ways a user would compute w @ b without sparsekernels."""
    out: dict[str, Callable] = {}

    def dense(w, b):
        return (lambda: w @ b), _nb(w) + _nb(b)

    out["torch_dense"] = dense

    def torch_csr(w, b):
        wc = _memo(("torch_csr",), w, w.to_sparse_csr)
        return (lambda: wc @ b), _nb(wc.crow_indices()) + _nb(wc.col_indices()) + _nb(wc.values()) + _nb(b)

    out["torch_csr"] = torch_csr
    if case.fmt == "bsr":
        def torch_bsr(w, b):
            wb = _memo(("torch_bsr", case.blocksize), w, lambda: w.to_sparse_bsr(case.blocksize))
            return (lambda: wb @ b), _nb(wb.crow_indices()) + _nb(wb.col_indices()) + _nb(wb.values()) + _nb(b)

        out["torch_bsr"] = torch_bsr
    if device == "cpu":
        def scipy_csr(w, b):
            if case.dtype != torch.float32:
                raise TypeError(f"scipy.sparse has no {case.dtype} matmul")
            import scipy.sparse

            w_sp = _memo(("scipy",), w, lambda: scipy.sparse.csr_array(w.numpy()))
            b_np = b.numpy()
            nbytes = w_sp.data.nbytes + w_sp.indices.nbytes + w_sp.indptr.nbytes + b_np.nbytes
            return (lambda: torch.from_numpy(w_sp @ b_np)), nbytes

        out["scipy"] = scipy_csr
    else:
        out.update(_cuda_spmm_baselines(case))
    return out


def _cuda_spmm_baselines(case: Case) -> dict[str, Callable]:
    out: dict[str, Callable] = {}
    if case.fmt == "bsr":
        def triton_bsr(w, b):
            from torch.sparse._triton_ops import bsr_dense_mm  # private; missing in some builds

            wb = w.to_sparse_bsr(case.blocksize)
            return (lambda: bsr_dense_mm(wb, b)), _nb(wb.crow_indices()) + _nb(wb.col_indices()) + _nb(
                wb.values()) + _nb(b)

        out["torch_triton_bsr"] = triton_bsr
    if case.fmt == "sparse24":
        def semi_inner_bytes(ws) -> int:
            names, _ = ws.__tensor_flatten__()
            return sum(_nb(getattr(ws, n)) for n in names if isinstance(getattr(ws, n, None), torch.Tensor))

        def cusparselt(w, b):
            # compressed once (plan and compression cached in the tensor); torch still runs cuSPARSELt's
            # matmul setup inside each call, which is part of what a torch user pays
            from torch.sparse import to_sparse_semi_structured

            ws = to_sparse_semi_structured(w)
            return (lambda: ws @ b), semi_inner_bytes(ws) + _nb(b)

        def cusparselt_convert(w, b):
            # what a user pays converting per call: compression + matmul
            from torch.sparse import to_sparse_semi_structured

            return (lambda: to_sparse_semi_structured(w) @ b), _nb(w) + _nb(b)

        def cutlass_24(w, b):
            from torch.sparse import SparseSemiStructuredTensorCUTLASS

            ws = SparseSemiStructuredTensorCUTLASS.from_dense(w)
            return (lambda: ws @ b), semi_inner_bytes(ws) + _nb(b)

        out["cusparselt"] = cusparselt
        out["cusparselt_convert"] = cusparselt_convert
        out["cutlass_24"] = cutlass_24

    def cupyx_csr(w, b):
        import cupy
        import cupyx.scipy.sparse as cpsp

        wc = w.to_sparse_csr()
        data = cupy.from_dlpack(wc.values().contiguous())
        indices = cupy.from_dlpack(wc.col_indices().to(torch.int32))
        indptr = cupy.from_dlpack(wc.crow_indices().to(torch.int32))
        a = cpsp.csr_matrix((data, indices, indptr), shape=tuple(w.shape))
        bc = cupy.from_dlpack(b.contiguous())
        stream = torch.cuda.current_stream().cuda_stream

        def fn():
            with cupy.cuda.ExternalStream(stream):
                return torch.from_dlpack(a @ bc)

        return fn, data.nbytes + indices.nbytes + indptr.nbytes + _nb(b)

    out["cupyx_csr"] = cupyx_csr
    return out


@dataclass
class _Prepared:
    """A case's inputs, ready to time: ours as a factory on `operands`, the baselines on `base_operands`."""

    row: dict
    ours: Callable
    operands: tuple
    check: Callable
    moved: int  # bytes the format moves (for GB/s)
    flops: int  # useful flops
    baselines: dict = field(default_factory=dict)
    base_operands: tuple = ()
    base_check: Callable | None = None
    rotate_cpu: bool = False  # time over operand copies exceeding the CPU's last-level cache (SpMM rows)


# pruned random weights of the last cases (the same weight serves several N / dtypes / formats of a suite):
# key -> (weight, generator state after drawing it), so that what is drawn next stays the same
_WEIGHT_CACHE: dict = {}
_WEIGHT_CACHE_SIZE = 4


def _random_weight(case, g: torch.Generator) -> torch.Tensor:
    kind = {"sparse24": ("2:4",), "bsr": ("bsr", case.blocksize, case.sparsity)}.get(case.fmt,
                                                                                      ("magnitude", case.sparsity))
    key = (case.m, case.k, kind, g.initial_seed())
    hit = _WEIGHT_CACHE.get(key)
    if hit is not None:
        g.set_state(hit[1])
        return hit[0]
    w = _prune(case, torch.randn(case.m, case.k, generator=g))
    _WEIGHT_CACHE[key] = (w, g.get_state())
    while len(_WEIGHT_CACHE) > _WEIGHT_CACHE_SIZE:
        _WEIGHT_CACHE.pop(next(iter(_WEIGHT_CACHE)))
    return w


# conversions of a CPU weight that several rows share (dtype copies, packed formats, torch / scipy CSR, nnz):
# (tag, id(source)) -> (source, value); a hit needs the very same source object (kept alive by the entry)
_MEMO: dict = {}
_MEMO_SIZE = 12
_MEMO_OFF = 0  # > 0 while rotated copies are built (their conversions are used once)


def _memo(tag, src: torch.Tensor, fn: Callable):
    if src.device.type != "cpu" or _MEMO_OFF:  # rotations clone operands on purpose: never share their conversions
        return fn()
    key = (tag, id(src))
    hit = _MEMO.get(key)
    if hit is not None and hit[0] is src:
        return hit[1]
    value = fn()
    _MEMO[key] = (src, value)
    while len(_MEMO) > _MEMO_SIZE:
        _MEMO.pop(next(iter(_MEMO)))
    return value


def _select(baselines: dict, wanted: tuple, always: str) -> dict:
    if not wanted:
        return baselines
    return {n: f for n, f in baselines.items() if n in wanted or n == always}


def _prepare_spmm(case: Case, device: str, seed: int = 0) -> _Prepared | dict:
    """The case's inputs and checks, or the row with an 'error' when the inputs cannot be built."""
    row: dict = {"case": case.label, "op": "spmm", "format": case.fmt, "m": case.m, "k": case.k, "n": case.n,
                 "sparsity": case.sparsity, "dtype": str(case.dtype).replace("torch.", ""), "source": case.source,
                 "threads": torch.get_num_threads() if device == "cpu" else None, "baselines": {}}
    if case.fmt == "bsr":
        row["blocksize"] = list(case.blocksize)
    g = torch.Generator().manual_seed(seed)
    try:
        if case.source == "random":
            w32, facts = _random_weight(case, g), {}
        else:
            w32, facts = _weight(case, g)
        row.update(facts)
        w = _memo(("dtype", case.dtype), w32, lambda: w32.to(case.dtype))
        b_cpu = torch.randn(case.k, case.n, generator=g).to(case.dtype)
        ref = w.double() @ b_cpu.double()
        a = _memo(("pack", case.fmt, case.blocksize), w, lambda: _pack(case, w))
    except Exception as e:  # noqa: BLE001
        row["error"] = f"input: {_short(e)}"
        return row
    nnz_true = _memo(("nnz",), w, lambda: int((w != 0).sum()))
    row.update(nnz=nnz_true, format_bytes=a.format_nbytes, dense_bytes=_nb(w))
    if device == "cuda":
        a, w, b = a.to("cuda"), w.to("cuda"), b_cpu.to("cuda")
    else:
        b = b_cpu

    def check(out):
        return {"err": _rel_err(out, ref)}

    def ours(a_, b_):
        return (lambda: ours_spmm(a_, b_)), a_.format_nbytes + _nb(b_)

    moved = a.format_nbytes + _nb(b) + case.m * case.n * b.element_size()
    return _Prepared(row, ours, (a, b), check, moved, 2 * nnz_true * case.n,
                     _select(_spmm_baselines(case, device), case.baselines, "torch_dense"), (w, b), check,
                     rotate_cpu=True)


def _run_prepared(p: _Prepared, device: str, ceilings: dict) -> dict:
    row = p.row
    row.update(_measure(device, p.ours, p.operands, p.check, p.rotate_cpu))
    _metrics(row, ceilings, p.moved, p.flops)
    results = {name: _measure(device, make, p.base_operands, p.base_check or p.check, p.rotate_cpu)
               for name, make in p.baselines.items()}
    _finish_baselines(row, results)
    return row


def run_spmm(case: Case, device: str, ceilings: dict, seed: int = 0) -> dict:
    p = _prepare_spmm(case, device, seed)
    return p if isinstance(p, dict) else _run_prepared(p, device, ceilings)


# ----------------------------------------------------------------------------------------------- SDDMM


def ours_sddmm(a, x, y):
    """The op under test: (x @ y.T) at a's stored pattern, as the format's values tensor."""
    if a.FORMAT == "csr":
        return sk.sddmm(a, x, y).values
    if a.FORMAT == "bsr":
        r, c = a.blocksize
        return torch.ops.sparse.bsr_sddmm(a.block_row_ptr, a.block_col_idx, x, y, r, c)
    if a.FORMAT == "bitmap":
        return torch.ops.sparse.bitmap_sddmm(a.group_offsets, a.bitmaps, x, y, a.values.numel())
    if a.FORMAT == "sparse24":
        return torch.ops.sparse.sparse24_sddmm(a.meta, x, y)
    raise ValueError(f"no SDDMM for format {a.FORMAT}")


def _stored_mask(a) -> torch.Tensor:
    """Dense bool [m, k]: True where the format stores a slot (BSR: every element of a stored block; 2:4: both
    slots of each group of 4, zeros included)."""
    ones = a._with((*a._inner()[:-1], torch.ones_like(a._values_tensor())))
    return ones.to_dense() != 0


def _sddmm_baselines(device: str) -> dict[str, Callable]:
    """name -> factory(x, y, flat, pattern_csr) -> (fn, nbytes); fn returns the sampled values in row-major
    order of the pattern (a tensor) or a torch sparse CSR tensor holding them."""

    def dense_mask(x, y, flat, pattern):  # noqa: ARG001
        # the baseline: the dense product, then the pattern's entries gathered from it
        return (lambda: torch.matmul(x, y.T).take(flat)), _nb(x) + _nb(y) + _nb(flat)

    def sampled_addmm(x, y, flat, pattern):  # noqa: ARG001
        # torch's SDDMM: beta * pattern + alpha * (x @ y.T) at the pattern (torch sparse CSR)
        return (lambda: torch.sparse.sampled_addmm(pattern, x, y.T, beta=0.0, alpha=1.0)), \
            _nb(pattern.crow_indices()) + _nb(pattern.col_indices()) + _nb(pattern.values()) + _nb(x) + _nb(y)

    # scipy.sparse has no sampled dense-dense product (SDDMM): no scipy baseline
    del device
    return {"dense_mask": dense_mask, "torch_sampled_addmm": sampled_addmm}


def _prepare_sddmm(case: SDDMMCase, device: str, seed: int = 0) -> _Prepared | dict:
    row: dict = {"case": case.label, "op": "sddmm", "format": case.fmt, "m": case.m, "k": case.k, "d": case.d,
                 "sparsity": case.sparsity, "dtype": str(case.dtype).replace("torch.", ""), "source": "random",
                 "threads": torch.get_num_threads() if device == "cpu" else None, "baselines": {},
                 "dense_baseline": "dense_mask"}
    if case.fmt == "bsr":
        row["blocksize"] = list(case.blocksize)
    g = torch.Generator().manual_seed(seed)
    try:
        a = _pack(case, _random_weight(case, g).to(case.dtype))
        x = torch.randn(case.m, case.d, generator=g).to(case.dtype)
        y = torch.randn(case.k, case.d, generator=g).to(case.dtype)
        mask = _stored_mask(a)
        flat = mask.reshape(-1).nonzero().squeeze(1)
        full = x.double() @ y.double().T
        ref_vals = full.reshape(-1)[flat]
        ref = full * mask  # dense, 0 off the pattern
        pattern = torch.sparse_csr_tensor(*_csr_of_flat(flat, case.m, case.k),
                                          torch.ones(flat.numel(), dtype=case.dtype), (case.m, case.k),
                                          check_invariants=False)  # built from sorted positions just above
    except Exception as e:  # noqa: BLE001
        row["error"] = f"input: {_short(e)}"
        return row
    nnz = int(flat.numel())
    row.update(nnz=nnz, format_bytes=a.format_nbytes)
    if device == "cuda":
        a, x, y, flat, pattern = a.to("cuda"), x.to("cuda"), y.to("cuda"), flat.to("cuda"), pattern.to("cuda")

    def check(out):  # ours: the format's values tensor, read back through the format
        return {"err": _rel_err(a._with((*a._inner()[:-1], out)).to_dense(), ref)}

    def base_check(out):  # baselines: the pattern's values in row-major order
        if out.layout == torch.sparse_csr:
            if not torch.equal(out.crow_indices().cpu(), pattern.crow_indices().cpu()) or \
                    not torch.equal(out.col_indices().cpu(), pattern.col_indices().cpu()):
                return {"err": math.inf, "pattern_ok": False}
            out = out.values()
        return {"err": _rel_err(out, ref_vals)}

    def ours(a_, x_, y_):
        return (lambda: ours_sddmm(a_, x_, y_)), a_.format_nbytes + _nb(x_) + _nb(y_)

    # reads the pattern's index arrays, x and y; writes the values
    moved = a.format_nbytes + _nb(x) + _nb(y)
    return _Prepared(row, ours, (a, x, y), check, moved, 2 * nnz * case.d,
                     _select(_sddmm_baselines(device), case.baselines, "dense_mask"), (x, y, flat, pattern),
                     base_check)


def _csr_of_flat(flat: torch.Tensor, m: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """crow_indices, col_indices (int64) of the row-major flat positions `flat` in an m x k matrix."""
    rows = torch.div(flat, max(k, 1), rounding_mode="floor")
    crow = torch.zeros(m + 1, dtype=torch.int64)
    crow[1:] = torch.bincount(rows, minlength=m).cumsum(0)
    return crow, flat - rows * k


def run_sddmm(case: SDDMMCase, device: str, ceilings: dict, seed: int = 0) -> dict:
    p = _prepare_sddmm(case, device, seed)
    return p if isinstance(p, dict) else _run_prepared(p, device, ceilings)


# ------------------------------------------------------------------------------------------ thread scaling


def scaling_threads(all_threads: int) -> list[int]:
    """Thread counts a scaling row is timed at: 1, the counts issue 5 names (2, 16) that the machine has, all."""
    return sorted({t for t in (1, 2, 16, all_threads) if t <= all_threads})


def run_scaling(case: ThreadScalingCase, device: str, ceilings: dict, seed: int = 0) -> dict:
    """Ours on the inner case at each of scaling_threads(); t_us and the metrics at all threads, `scaling` =
    {T: t(1) / t(T)}. Baselines are not timed (the row's metric is ours against ours)."""
    inner = case.case
    prepare = _prepare_sddmm if isinstance(inner, SDDMMCase) else _prepare_spmm
    p = prepare(inner, device, seed)
    row = p if isinstance(p, dict) else p.row
    row.update(case=case.label, scaling_of=inner.label, threads=ALL_THREADS if device == "cpu" else None)
    if isinstance(p, dict):
        return row
    if device != "cpu":
        row["error"] = "thread scaling rows are CPU-only"
        return row
    times, errs = {}, []
    for t in scaling_threads(ALL_THREADS):
        with _num_threads(device, t):
            res = _measure(device, p.ours, p.operands, p.check, p.rotate_cpu)
        if "error" in res:
            row["error"] = f"{t} threads: {res['error']}"
            return row
        times[t] = res["t_us"]
        errs.append(res["err"])
    row["t_us_by_threads"] = {str(t): v for t, v in times.items()}
    row["t_us"] = times[max(times)]
    row["err"] = max(errs)
    row["scaling"] = {str(t): times[1] / v for t, v in times.items() if t != 1}
    _metrics(row, ceilings, p.moved, p.flops)
    return row


# ---------------------------------------------------------------------------------------------- SpGEMM


def _scipy_of_torch_csr(t: torch.Tensor):
    import scipy.sparse

    t = t.cpu()
    if t.layout != torch.sparse_csr:
        t = t.to_sparse_csr()
    return scipy.sparse.csr_array((t.values().double().numpy(), t.col_indices().numpy(), t.crow_indices().numpy()),
                                  shape=tuple(t.shape))


def _spgemm_check(c, ref, canonicalize: bool) -> dict:
    """Compare a scipy CSR product with the float64 scipy reference: pattern (row_ptr and sorted column
    indices identical; scipy drops exact zeros, random data makes none) and values (max abs error over max
    abs reference). canonicalize: sort / merge duplicates first (baselines; ours must already be sorted)."""
    c = c.tocsr()
    try:  # a corrupt product (ours must never make one) is a wrong answer, not a crash in scipy
        c.check_format(full_check=True)
    except ValueError as e:
        return {"err": math.inf, "pattern_ok": False, "nnz_out": int(c.nnz), "invalid": str(e)[:200]}
    if canonicalize:
        c.sum_duplicates()
    pattern_ok = bool(c.shape == ref.shape and np.array_equal(np.asarray(c.indptr, np.int64), ref.indptr)
                      and np.array_equal(np.asarray(c.indices, np.int64), ref.indices))
    scale = max(float(np.abs(ref.data).max()) if ref.nnz else 0.0, 1e-30)
    if pattern_ok:
        diff = float(np.abs(c.data.astype(np.float64) - ref.data).max()) if ref.nnz else 0.0
    else:
        d = (c.astype(np.float64) - ref) if c.shape == ref.shape else None
        diff = float(abs(d).max()) if d is not None and d.nnz else (0.0 if d is not None else math.inf)
    return {"err": diff / scale, "pattern_ok": pattern_ok, "nnz_out": int(c.nnz)}


def _spgemm_baselines(device: str, a_sp, b_sp) -> dict[str, Callable]:
    """name -> factory(a_dev, b_dev) -> (fn returning a scipy-convertible result, nbytes); a_dev / b_dev are
    our CSR tensors (on the device) that the baseline converts from."""
    out: dict[str, Callable] = {}

    def csr_bytes(t):
        return _nb(t.crow_indices()) + _nb(t.col_indices()) + _nb(t.values())

    def torch_csr(a, b):
        ta, tb = a.to_torch(), b.to_torch()
        # torch's sparse CSR @ sparse CSR: MKL on the CPU, cuSPARSE on CUDA
        return (lambda: ta @ tb), csr_bytes(ta) + csr_bytes(tb)

    out["torch_csr"] = torch_csr
    if device == "cpu":
        def scipy_csr(a, b):  # noqa: ARG001 (scipy keeps its own copies of the operands)
            return (lambda: a_sp @ b_sp), sum(x.nbytes for s in (a_sp, b_sp) for x in (s.data, s.indices, s.indptr))

        out["scipy"] = scipy_csr
    else:
        def cupyx_csr(a, b):
            import cupy
            import cupyx.scipy.sparse as cpsp

            def conv(t):
                return cpsp.csr_matrix((cupy.from_dlpack(t.values), cupy.from_dlpack(t.col_idx.to(torch.int32)),
                                        cupy.from_dlpack(t.row_ptr.to(torch.int32))), shape=tuple(t.shape))

            ca, cb = conv(a), conv(b)
            stream = torch.cuda.current_stream().cuda_stream

            def fn():
                with cupy.cuda.ExternalStream(stream):
                    return ca @ cb

            return fn, sum(x.nbytes for s in (ca, cb) for x in (s.data, s.indices, s.indptr))

        out["cupyx_csr"] = cupyx_csr
    return out


def _to_scipy_any(c):
    """scipy CSR of a product returned by ours (CSRTensor), torch (sparse CSR), scipy or cupyx."""
    import scipy.sparse

    if isinstance(c, sk.CSRTensor):
        t = c.to("cpu") if c.device.type != "cpu" else c
        return scipy.sparse.csr_array((t.values.double().numpy(), t.col_idx.numpy(), t.row_ptr.numpy()),
                                      shape=tuple(t.shape))
    if isinstance(c, torch.Tensor):
        return _scipy_of_torch_csr(c)
    if scipy.sparse.issparse(c):
        return c
    if hasattr(c, "get"):  # cupyx sparse
        return c.get()
    raise TypeError(f"cannot read a product of type {type(c).__name__}")


def run_spgemm(case: SpGEMMCase, device: str, ceilings: dict) -> dict:
    from sparsekernels.bench import graphs

    threads_before = torch.get_num_threads()
    threads = case.threads or ALL_THREADS
    row: dict = {"case": case.label, "op": "spgemm", "format": "csr", "graph": case.graph, "scale": case.scale,
                 "product": case.product, "edge_factor": case.edge_factor, "sparsity": case.sparsity,
                 "dtype": str(case.dtype).replace("torch.", ""), "threads": threads if device == "cpu" else None,
                 "baselines": {}}
    try:
        a_sp, b_sp = graphs.operands(case)
        ref = a_sp.astype(np.float64) @ b_sp.astype(np.float64)
        ref = ref.tocsr()
        ref.sort_indices()
        ref.indptr, ref.indices = ref.indptr.astype(np.int64), ref.indices.astype(np.int64)
        a, b = sk.to_csr(a_sp), sk.to_csr(b_sp)
    except Exception as e:  # noqa: BLE001
        row["error"] = f"input: {_short(e)}"
        return row
    pp = graphs.partial_products(a_sp, b_sp)
    row.update(m=a_sp.shape[0], k=a_sp.shape[1], n=b_sp.shape[1], nnz_a=int(a_sp.nnz), nnz_b=int(b_sp.nnz),
               nnz_c=int(ref.nnz), partial_products=pp)
    if device == "cuda":
        a, b = a.to("cuda"), b.to("cuda")
    if device == "cpu":
        torch.set_num_threads(threads)
    try:
        def ours(a_, b_):
            return (lambda: ours_spgemm(a_, b_)), a_.format_nbytes + b_.format_nbytes

        row.update(_measure(device, ours, (a, b), lambda c: _spgemm_check(_to_scipy_any(c), ref, False)))
        c_bytes = row.get("nnz_out", ref.nnz) * (a.values.element_size() + a.col_idx.element_size()) + \
            (a_sp.shape[0] + 1) * a.row_ptr.element_size()
        _metrics(row, ceilings, a.format_nbytes + b.format_nbytes + c_bytes, 2 * pp)
        results = {name: _measure(device, make, (a, b), lambda c: _spgemm_check(_to_scipy_any(c), ref, True))
                   for name, make in _spgemm_baselines(device, a_sp, b_sp).items()}
        if "scipy" in results and "error" not in results["scipy"]:
            results["scipy"]["note"] = "scipy.sparse is single-threaded"
        _finish_baselines(row, results)
    finally:
        torch.set_num_threads(threads_before)
    return row


def run_case(case, device: str, ceilings: dict, seed: int = 0) -> dict:
    if isinstance(case, SpGEMMCase):
        row = run_spgemm(case, device, ceilings)
    elif isinstance(case, ThreadScalingCase):
        row = run_scaling(case, device, ceilings, seed)
    else:
        with _num_threads(device, case.threads):
            run = run_sddmm if isinstance(case, SDDMMCase) else run_spmm
            row = run(case, device, ceilings, seed)
    if getattr(case, "targets", ()):
        row["targets"] = marks.evaluate(row, case.targets, ceilings)
    if device == "cuda":
        torch.cuda.empty_cache()
    return row
