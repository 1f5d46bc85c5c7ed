"""Float64 dense references for every op: the ground truth the tests compare with."""

from __future__ import annotations

import torch


def spmm(a_dense: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """A @ b in float64 (A given densely)."""
    return a_dense.double() @ b.double()


def sddmm(pattern: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(x @ y.T) at the non-zero positions of the dense boolean `pattern`, float64, dense."""
    return (x.double() @ y.double().T) * pattern.to(torch.float64)


def spgemm(a_dense: torch.Tensor, b_dense: torch.Tensor) -> torch.Tensor:
    return a_dense.double() @ b_dense.double()


def dtype_tolerance(dtype: torch.dtype) -> float:
    """Unit round-off of a dtype (fp32 accumulation is assumed for 16-bit types)."""
    return {torch.float32: 2.0**-24, torch.float16: 2.0**-11, torch.bfloat16: 2.0**-8}[dtype]
