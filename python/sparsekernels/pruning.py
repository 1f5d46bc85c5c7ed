"""Pruning helpers: make a dense weight sparse in the patterns the formats hold.

Each returns a dense tensor of the same shape, dtype and device with the pruned
entries set to zero (pack it with to_csr / to_bitmap / to_sparse24 / to_bsr).
Ties are broken deterministically (by torch.topk; which of two equal entries survives is not specified, and
differs between the functions), so exactly the requested count is removed.
"""

from __future__ import annotations

import torch

from sparsekernels.formats.base import check_blocksize


def _scores(x: torch.Tensor) -> torch.Tensor:
    """x in the dtype its magnitudes are ranked in: float32, or float64 for float64 (where float32 would tie or
    misorder values that differ only past float32's precision)."""
    return x if x.dtype == torch.float64 else x.float()


def _check_tensor(fn: str, w) -> None:
    if not isinstance(w, torch.Tensor):
        raise TypeError(f"{fn}: w must be a torch.Tensor, got {type(w).__name__}")


def _check_sparsity(fn: str, sparsity: float) -> None:
    if not 0.0 <= float(sparsity) <= 1.0:
        raise ValueError(f"{fn}: sparsity must be in [0, 1], got {sparsity}")


def prune_magnitude(w: torch.Tensor, sparsity: float, *, per_row: bool = False) -> torch.Tensor:
    """Zero the `sparsity` fraction of entries with the smallest magnitude (round(sparsity * count) of them),
    over the whole tensor or, with per_row=True, in every row of a 2-D tensor."""
    _check_tensor("prune_magnitude", w)
    _check_sparsity("prune_magnitude", sparsity)
    w = w.detach()
    if w.numel() == 0:
        return w.clone()
    if per_row:
        if w.dim() != 2:
            raise ValueError(f"prune_magnitude: per_row needs a 2-D tensor, got shape {tuple(w.shape)}")
        flat = w
    else:
        flat = w.reshape(1, -1)
    n = flat.shape[1]
    n_zero = int(round(float(sparsity) * n))
    mask = torch.ones_like(flat, dtype=torch.bool)
    if n_zero > 0:
        idx = torch.topk(_scores(flat.abs()), n_zero, dim=1, largest=False, sorted=False).indices
        mask.scatter_(1, idx, False)
    return (flat * mask).reshape(w.shape)


def prune_n_m(w: torch.Tensor, n: int = 2, m: int = 4) -> torch.Tensor:
    """Keep the n largest-magnitude entries in every group of m consecutive entries along the last dimension
    (a final partial group keeps min(n, its size))."""
    _check_tensor("prune_n_m", w)
    if not (isinstance(n, int) and isinstance(m, int) and not isinstance(n, bool) and not isinstance(m, bool)
            and 0 <= n <= m and m >= 1):
        raise ValueError(f"prune_n_m: need integers 0 <= n <= m, m >= 1, got n={n}, m={m}")
    if w.dim() == 0:
        raise ValueError("prune_n_m: w must be at least 1-D (groups run along the last dimension), got a 0-D tensor")
    w = w.detach()
    k = w.shape[-1] if w.dim() else 0
    if w.numel() == 0:
        return w.clone()
    pad = (-k) % m
    padded = torch.nn.functional.pad(w, (0, pad)) if pad else w
    groups = padded.reshape(*padded.shape[:-1], -1, m)
    score = _scores(groups.abs())
    if pad:  # padding must never be kept in place of a real entry
        score = score.reshape(*padded.shape[:-1], -1)
        score[..., k:] = -1.0
        score = score.reshape(groups.shape)
    keep = torch.zeros_like(groups, dtype=torch.bool)
    if n > 0:
        keep.scatter_(-1, torch.topk(score, n, dim=-1).indices, True)
    out = (groups * keep).reshape(padded.shape)
    return out[..., :k] if pad else out


def prune_blocks(w: torch.Tensor, blocksize: tuple[int, int], sparsity: float) -> torch.Tensor:
    """Zero the `sparsity` fraction of r x c blocks with the smallest L2 norm (edge blocks of a shape that is not
    a multiple of the block size are partial and compete by their norm)."""
    _check_tensor("prune_blocks", w)
    _check_sparsity("prune_blocks", sparsity)
    r, c = check_blocksize("prune_blocks", blocksize)
    if w.dim() != 2:
        raise ValueError(f"prune_blocks: expected a 2-D tensor, got shape {tuple(w.shape)}")
    w = w.detach()
    m, k = w.shape
    if w.numel() == 0:
        return w.clone()
    pm, pk = (-m) % r, (-k) % c
    padded = torch.nn.functional.pad(w, (0, pk, 0, pm))
    gm, gk = padded.shape[0] // r, padded.shape[1] // c
    blocks = padded.reshape(gm, r, gk, c)
    norms = _scores(blocks).pow(2).sum(dim=(1, 3)).reshape(-1)
    n_zero = int(round(float(sparsity) * norms.numel()))
    keep = torch.ones_like(norms, dtype=torch.bool)
    if n_zero > 0:
        keep[torch.topk(norms, n_zero, largest=False, sorted=False).indices] = False
    out = blocks * keep.reshape(gm, 1, gk, 1)
    return out.reshape(padded.shape)[:m, :k].contiguous()
