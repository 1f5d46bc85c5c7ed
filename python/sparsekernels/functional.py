"""Operations on format tensors beyond SpMM: SpGEMM and SDDMM."""

from __future__ import annotations

import torch

from sparsekernels.formats import CSRTensor, SparseFormatTensor, to_csr


def _csr_operand(fn: str, a, name: str) -> CSRTensor:
    if isinstance(a, CSRTensor):
        if a.transposed:
            raise NotImplementedError(f"{fn}: a transposed CSR operand ('{name}') is not supported yet")
        return a
    if isinstance(a, SparseFormatTensor):
        raise NotImplementedError(f"{fn}: '{name}' is {type(a).__name__}; only CSR is implemented (sk.to_csr)")
    if isinstance(a, torch.Tensor) and a.layout == torch.sparse_csr:
        return to_csr(a)
    raise TypeError(f"{fn}: '{name}' must be a sparsekernels CSRTensor or a torch CSR tensor, got {type(a).__name__}")


def spgemm(a, b) -> CSRTensor:
    """C = A @ B for sparse A [m, k] and B [k, n] in CSR; C is CSR with sorted columns (a structural product:
    entries that cancel to zero are kept)."""
    a = _csr_operand("spgemm", a, "a")
    b = _csr_operand("spgemm", b, "b")
    (m, k), (kb, n) = a._mk, b._mk
    if k != kb:
        raise ValueError(f"spgemm: shapes {(m, k)} and {(kb, n)} cannot be multiplied")
    if a.dtype != b.dtype:
        raise TypeError(f"spgemm: 'a' and 'b' must have the same dtype, got {a.dtype} and {b.dtype}")
    parts = torch.ops.sparse.csr_spgemm(a.row_ptr, a.col_idx, a.values, b.row_ptr, b.col_idx, b.values, n)
    return CSRTensor((m, n), parts)


def sddmm(a, x: torch.Tensor, y: torch.Tensor) -> CSRTensor:
    """(x @ y.T) sampled at the pattern of A: a CSR tensor with A's pattern whose values are
    dot(x[i], y[j]) for each stored (i, j). x is [m, d], y is [n, d] for A of shape [m, n]."""
    a = _csr_operand("sddmm", a, "a")
    for name, t in (("x", x), ("y", y)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"sddmm: '{name}' must be a torch.Tensor, got {type(t).__name__}")
    m, n = a._mk
    if x.dim() != 2 or y.dim() != 2 or x.shape[0] != m or y.shape[0] != n or x.shape[1] != y.shape[1]:
        raise ValueError(
            f"sddmm: for A of shape {(m, n)} need x [{m}, d] and y [{n}, d], got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    values = torch.ops.sparse.csr_sddmm(a.row_ptr, a.col_idx, x, y)
    return CSRTensor((m, n), (a.row_ptr, a.col_idx, values))
