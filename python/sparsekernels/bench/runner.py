"""Runs one case: builds inputs, times ours and the baselines, checks every timed output.

Ours and every baseline are built by a *factory* ``make(*operands) -> (fn, nbytes)``: fn is a zero-argument
callable computing the product, nbytes the bytes it reads (its own operand representation + the dense input).
On CUDA the factory is called again on cloned operands until the copies together exceed 2x L2
(timing.copies_needed) and the timed calls cycle through them; on the CPU one copy is timed with
torch.utils.benchmark. A baseline that cannot be built or fails maps to {"error": ...} in the row.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

import sparsekernels as sk
from sparsekernels.bench import timing
from sparsekernels.bench.suites import Case, SpGEMMCase

# threads that "all threads" means (set by __main__ from torch's count at start)
ALL_THREADS = torch.get_num_threads()


def _nb(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


def _short(e: BaseException) -> str:
    text = f"{type(e).__name__}: {e}".strip()
    return (text.splitlines()[0] if text else type(e).__name__)[:200]


def _rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    if ref.numel() == 0:
        return 0.0
    out = out.to_dense() if out.layout != torch.strided else out
    if tuple(out.shape) != tuple(ref.shape):
        raise ValueError(f"output shape {tuple(out.shape)} != reference {tuple(ref.shape)}")
    return ((out.double().cpu() - ref).abs().max() / ref.abs().max().clamp_min(1e-30)).item()


def _measure(device: str, make: Callable, operands: tuple, check: Callable) -> dict:
    """Build fn on operands, check its output (check(out) -> dict with at least 'err'), then time it (on CUDA
    over rotated copies of the operands). Returns {'t_us', 'err', ..., 'copies'} or {'error'}."""
    try:
        fn, nbytes = make(*operands)
        res = check(fn())
        if device == "cuda":
            n = timing.copies_needed(nbytes)
            fns = [fn] + [make(*(x.clone() for x in operands))[0] for _ in range(n - 1)]
            t = timing.time_cuda(fns)
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
        wc = w.to_sparse_csr()
        return (lambda: wc @ b), _nb(wc.crow_indices()) + _nb(wc.col_indices()) + _nb(wc.values()) + _nb(b)

    out["torch_csr"] = torch_csr
    if case.fmt == "bsr":
        def torch_bsr(w, b):
            wb = w.to_sparse_bsr(case.blocksize)
            return (lambda: wb @ b), _nb(wb.crow_indices()) + _nb(wb.col_indices()) + _nb(wb.values()) + _nb(b)

        out["torch_bsr"] = torch_bsr
    if device == "cpu":
        def scipy_csr(w, b):
            if case.dtype != torch.float32:
                raise TypeError(f"scipy.sparse has no {case.dtype} matmul")
            import scipy.sparse

            w_sp = scipy.sparse.csr_array(w.numpy())
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


def run_spmm(case: Case, device: str, ceilings: dict, seed: int = 0) -> dict:
    row: dict = {"case": case.label, "op": "spmm", "format": case.fmt, "m": case.m, "k": case.k, "n": case.n,
                 "sparsity": case.sparsity, "dtype": str(case.dtype).replace("torch.", ""), "source": case.source,
                 "threads": torch.get_num_threads() if device == "cpu" else None, "baselines": {}}
    g = torch.Generator().manual_seed(seed)
    try:
        w32, facts = _weight(case, g)
        row.update(facts)
        w = w32.to(case.dtype)
        b_cpu = torch.randn(case.k, case.n, generator=g).to(case.dtype)
        ref = w.double() @ b_cpu.double()
        a = _pack(case, w)
    except Exception as e:  # noqa: BLE001
        row["error"] = f"input: {_short(e)}"
        return row
    nnz_true = int((w != 0).sum())
    row.update(nnz=nnz_true, format_bytes=a.format_nbytes, dense_bytes=_nb(w))
    if device == "cuda":
        a, w, b = a.to("cuda"), w.to("cuda"), b_cpu.to("cuda")
    else:
        b = b_cpu

    def check(out):
        return {"err": _rel_err(out, ref)}

    def ours(a_, b_):
        return (lambda: ours_spmm(a_, b_)), a_.format_nbytes + _nb(b_)

    res = _measure(device, ours, (a, b), check)
    row.update(res)
    moved = a.format_nbytes + _nb(b) + case.m * case.n * b.element_size()
    _metrics(row, ceilings, moved, 2 * nnz_true * case.n)
    results = {name: _measure(device, make, (w, b), check) for name, make in _spmm_baselines(case, device).items()}
    _finish_baselines(row, results)
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
    else:
        row = run_spmm(case, device, ceilings, seed)
    if device == "cuda":
        torch.cuda.empty_cache()
    return row
