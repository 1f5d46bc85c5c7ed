"""Runs one Case: builds inputs, times ours and the baselines, checks every output."""

from __future__ import annotations

import math

import torch

import sparsekernels as sk
from sparsekernels.bench.suites import Case
from sparsekernels.bench.timing import time_cpu, time_cuda


def _prune(case: Case, w: torch.Tensor) -> torch.Tensor:
    if case.fmt == "sparse24":
        return sk.prune_n_m(w, 2, 4)
    if case.fmt == "bsr":
        return sk.prune_blocks(w, case.blocksize, case.sparsity)
    return sk.prune_magnitude(w, case.sparsity)


def _pack(case: Case, w: torch.Tensor):
    return {"csr": sk.to_csr, "bitmap": sk.to_bitmap, "sparse24": sk.to_sparse24,
            "bsr": lambda x: sk.to_bsr(x, case.blocksize)}[case.fmt](w)


def _rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    if ref.numel() == 0:
        return 0.0
    return ((out.double().cpu() - ref).abs().max() / ref.abs().max().clamp_min(1e-30)).item()


def _baselines(case: Case, w: torch.Tensor, b: torch.Tensor, device: str) -> dict:
    """name -> zero-argument callable computing w @ b the way a user would without sparsekernels.
    A baseline whose setup fails maps to the exception, reported in the row."""
    out: dict = {"torch_dense": lambda: w @ b}
    try:
        w_csr = w.to_sparse_csr()
        out["torch_csr"] = lambda: w_csr @ b
    except Exception as e:  # noqa: BLE001  (reported in the row)
        out["torch_csr"] = e
    if case.fmt == "bsr":
        try:
            w_bsr = w.to_sparse_bsr(case.blocksize)
            out["torch_bsr"] = lambda: w_bsr @ b
        except Exception as e:  # noqa: BLE001
            out["torch_bsr"] = e
    if device == "cpu":
        if case.dtype == torch.float32:
            import scipy.sparse

            w_sp = scipy.sparse.csr_array(w.numpy())
            b_np = b.numpy()
            out["scipy"] = lambda: torch.from_numpy(w_sp @ b_np)
        else:
            out["scipy"] = TypeError(f"scipy.sparse has no {case.dtype} matmul")
    return out


def run_case(case: Case, device: str, ceilings: dict, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    w = _prune(case, torch.randn(case.m, case.k, generator=g)).to(case.dtype)
    b_cpu = torch.randn(case.k, case.n, generator=g).to(case.dtype)
    ref = w.double() @ b_cpu.double()
    a = _pack(case, w)
    nnz_true = int((w != 0).sum())
    if device == "cuda":
        a, w, b = a.to("cuda"), w.to("cuda"), b_cpu.to("cuda")
    else:
        b = b_cpu

    def timed(fn):
        if device == "cuda":
            return time_cuda([fn])
        return time_cpu(fn)

    row: dict = {"case": case.label, "format": case.fmt, "m": case.m, "k": case.k, "n": case.n,
                 "sparsity": case.sparsity, "dtype": str(case.dtype).replace("torch.", ""), "nnz": nnz_true,
                 "format_bytes": a.format_nbytes, "dense_bytes": w.numel() * w.element_size()}
    ours = lambda: torch.ops.sparse.spmm(a, b)  # noqa: E731
    try:
        row["err"] = _rel_err(ours(), ref)
        t = timed(ours)
        row["t_us"] = t * 1e6
        moved = a.format_nbytes + b.numel() * b.element_size() + case.m * case.n * b.element_size()
        row["GBps"] = moved / t / 1e9
        row["bw_frac"] = row["GBps"] / ceilings["copy_GBps"]
        row["TFLOPs"] = 2 * nnz_true * case.n / t / 1e12
        row["flop_frac"] = row["TFLOPs"] / ceilings["matmul_TFLOPs"]
    except Exception as e:  # noqa: BLE001
        row["error"] = f"{type(e).__name__}: {e}"
        t = math.nan
    row["baselines"] = {}
    for name, fn in _baselines(case, w, b, device).items():
        if isinstance(fn, Exception):
            row["baselines"][name] = {"error": f"{type(fn).__name__}: {fn}".splitlines()[0][:200]}
            continue
        try:
            err = _rel_err(fn(), ref)
            tb = timed(fn)
            row["baselines"][name] = {"t_us": tb * 1e6, "speedup": tb / t, "err": err}
        except Exception as e:  # noqa: BLE001
            row["baselines"][name] = {"error": f"{type(e).__name__}: {e}".splitlines()[0][:200]}
    return row
