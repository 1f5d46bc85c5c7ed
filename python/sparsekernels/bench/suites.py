"""Benchmark suites: which (shape, format, sparsity, dtype) rows each one runs."""

from __future__ import annotations

from dataclasses import dataclass

import torch

LLM_WEIGHTS = [(4096, 4096), (4096, 11008), (11008, 4096), (4096, 14336), (14336, 4096), (8192, 8192)]


@dataclass(frozen=True)
class Case:
    m: int
    k: int
    n: int
    fmt: str  # csr | bsr | bitmap | sparse24
    sparsity: float  # fraction of zeros the weight is pruned to (0.5 for 2:4)
    dtype: torch.dtype = torch.float32
    blocksize: tuple[int, int] = (32, 32)  # bsr only

    @property
    def label(self) -> str:
        pattern = "2:4" if self.fmt == "sparse24" else f"{self.sparsity:.0%}"
        if self.fmt == "bsr":
            pattern += f" {self.blocksize[0]}x{self.blocksize[1]}"
        return f"{self.fmt} {pattern} {self.m}x{self.k} @ N={self.n} {str(self.dtype).replace('torch.', '')}"


def _formats(m, k, n, dtype):
    return [
        Case(m, k, n, "csr", 0.7, dtype),
        Case(m, k, n, "bitmap", 0.5, dtype),
        Case(m, k, n, "bitmap", 0.7, dtype),
        Case(m, k, n, "sparse24", 0.5, dtype),
        Case(m, k, n, "bsr", 0.9, dtype),
    ]


def quick(device: str) -> list[Case]:
    cases = []
    for n in (1, 16):
        cases += _formats(4096, 4096, n, torch.float32)
    cases += [c for c in _formats(4096, 4096, 16, torch.bfloat16) if c.fmt in ("bitmap", "sparse24")]
    if device == "cuda":
        cases += _formats(4096, 4096, 16, torch.float16) + _formats(4096, 4096, 4096, torch.float16)
    return cases


def decode(device: str) -> list[Case]:
    dtypes = [torch.float16, torch.bfloat16, torch.float32] if device == "cuda" else [torch.float32, torch.bfloat16]
    cases = []
    for dtype in dtypes:
        for m, k in LLM_WEIGHTS:
            for n in (1, 8, 16, 32, 64):
                for s in (0.5, 0.7, 0.8, 0.9, 0.95):
                    cases += [Case(m, k, n, "csr", s, dtype), Case(m, k, n, "bitmap", s, dtype)]
                cases += [Case(m, k, n, "sparse24", 0.5, dtype), Case(m, k, n, "bsr", 0.9, dtype)]
    return cases


def prefill(device: str) -> list[Case]:
    dtypes = [torch.float16, torch.bfloat16] if device == "cuda" else [torch.float32]
    cases = []
    for dtype in dtypes:
        for m, k in LLM_WEIGHTS:
            for n in (512, 2048, 8192):
                cases += [Case(m, k, n, "bitmap", 0.5, dtype), Case(m, k, n, "bitmap", 0.9, dtype),
                          Case(m, k, n, "csr", 0.95, dtype), Case(m, k, n, "sparse24", 0.5, dtype),
                          Case(m, k, n, "bsr", 0.9, dtype)]
    return cases


SUITES = {"quick": quick, "decode": decode, "prefill": prefill}
# Named in DESIGN.md, arriving with their kernels / data (issue "benchmark harness"):
PLANNED = ("dlmc", "spgemm", "attention")
