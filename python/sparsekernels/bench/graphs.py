"""Sparse operands for the SpGEMM suite: R-MAT and power-law graphs, pruned weight matrices.

Every generator is seeded (numpy Generator) and returns a scipy.sparse.csr_array of float32 with sorted,
unique column indices and Gaussian values (the pattern is what the graph model decides; the values are
random so that checks compare real arithmetic).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse

RMAT_PROBS = (0.57, 0.19, 0.19, 0.05)  # a, b, c, d (Graph500)


def _to_csr(n: int, rows: np.ndarray, cols: np.ndarray, rng: np.random.Generator, dtype=np.float32):
    a = scipy.sparse.coo_array((np.ones(rows.size, dtype=np.float32), (rows, cols)), shape=(n, n)).tocsr()
    a.sum_duplicates()  # also sorts the column indices
    a.data = rng.standard_normal(a.nnz).astype(dtype)
    return _int32_indices(a)


def rmat(scale: int, edge_factor: int = 8, probs: tuple[float, float, float, float] = RMAT_PROBS, seed: int = 0,
         permute: bool = True):
    """R-MAT graph (Chakrabarti et al.) as an adjacency matrix: 2**scale vertices, edge_factor * 2**scale
    generated edges (duplicates merged, so nnz is a little lower). Each edge descends `scale` levels of the
    adjacency matrix, choosing quadrant (top-left, top-right, bottom-left, bottom-right) with probabilities
    (a, b, c, d). With permute=True the vertex ids are shuffled (as Graph500 does), so hubs are not all at
    the low indices."""
    a, b, c, d = probs
    if min(probs) < 0 or abs(a + b + c + d - 1.0) > 1e-9:
        raise ValueError(f"rmat: probabilities must be >= 0 and sum to 1, got {probs}")
    if scale < 0 or edge_factor < 0:
        raise ValueError(f"rmat: scale and edge_factor must be >= 0, got {scale}, {edge_factor}")
    rng = np.random.default_rng(seed)
    n = 1 << scale
    e = edge_factor * n
    rows = np.zeros(e, dtype=np.int64)
    cols = np.zeros(e, dtype=np.int64)
    for level in range(scale):
        r = rng.random(e)
        row_bit = r >= a + b  # bottom half: c or d
        col_bit = ((r >= a) & (r < a + b)) | (r >= a + b + c)  # right half: b or d
        bit = np.int64(1) << (scale - 1 - level)
        rows |= row_bit * bit
        cols |= col_bit * bit
    if permute:
        perm = rng.permutation(n)
        rows, cols = perm[rows], perm[cols]
    return _to_csr(n, rows, cols, rng)


def powerlaw(scale: int, edge_factor: int = 8, gamma: float = 2.5, seed: int = 0):
    """Chung-Lu random graph with power-law expected degrees (exponent `gamma`): 2**scale vertices,
    edge_factor * 2**scale generated edges whose endpoints are drawn with probability proportional to the
    vertex weight w_i = (i + 1) ** (-1 / (gamma - 1)); vertex ids shuffled."""
    if gamma <= 1:
        raise ValueError(f"powerlaw: gamma must be > 1, got {gamma}")
    rng = np.random.default_rng(seed)
    n = 1 << scale
    e = edge_factor * n
    w = (np.arange(n) + 1.0) ** (-1.0 / (gamma - 1.0))
    cdf = np.cumsum(w / w.sum())
    cdf[-1] = 1.0
    perm = rng.permutation(n)
    rows = perm[np.searchsorted(cdf, rng.random(e), side="right")]
    cols = perm[np.searchsorted(cdf, rng.random(e), side="right")]
    return _to_csr(n, rows, cols, rng)


def pruned_weight(n: int, sparsity: float, seed: int = 0):
    """A Gaussian n x n weight magnitude-pruned (over the whole matrix) to `sparsity`."""
    import torch

    import sparsekernels as sk

    g = torch.Generator().manual_seed(seed)
    w = sk.prune_magnitude(torch.randn(n, n, generator=g), sparsity)
    return _dense_to_csr(w.numpy())


def _dense_to_csr(w: np.ndarray):
    return _int32_indices(scipy.sparse.csr_array(w))


def operands(case):
    """(A, B) as scipy CSR (float32) for a SpGEMMCase."""
    if case.graph == "pruned":
        n = 1 << case.scale
        return pruned_weight(n, case.sparsity, seed=case.seed), pruned_weight(n, case.sparsity, seed=case.seed + 1)
    gen = {"rmat": rmat, "powerlaw": powerlaw}.get(case.graph)
    if gen is None:
        raise ValueError(f"unknown graph '{case.graph}'")
    a = gen(case.scale, case.edge_factor, seed=case.seed)
    if case.product == "AA":
        return a, a
    if case.product == "AAT":
        at = a.T.tocsr()
        at.sort_indices()
        return a, _int32_indices(at)
    raise ValueError(f"unknown product '{case.product}' for graph '{case.graph}'")


def _int32_indices(a):
    a.indptr = a.indptr.astype(np.int32)
    a.indices = a.indices.astype(np.int32)
    return a


def partial_products(a, b) -> int:
    """Number of scalar multiply-adds in A @ B: sum over stored a_ik of nnz(row k of B)."""
    b_row_len = np.diff(b.indptr).astype(np.int64)
    return int(b_row_len[a.indices].sum())
