"""Shared fixtures: CPU ISA variants, devices, dtypes, reference checks, random sparse data."""

from __future__ import annotations

import os

# Poison every op output (NaN / -1) so unwritten elements fail the comparison.
os.environ.setdefault("SPARSEKERNELS_POISON", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

import sparsekernels as sk  # noqa: E402
from sparsekernels import reference  # noqa: E402

DTYPES = [torch.float32, torch.float16, torch.bfloat16]
HAS_CUDA = torch.cuda.is_available() and bool(sk.BUILD_INFO["cuda_archs"])


# The kernel variants. avx512bf16 differs from avx512 only in bf16 bitmap and 2:4 SpMM and format SDDMM
# (the files compiled a fourth time), so only their tests run it (isa_all); elsewhere it would repeat the
# avx512 run.
KERNEL_ISAS = tuple(i for i in sk._lib.CPU_ISAS if i != "avx512bf16")


def use_isa_or_skip(name):
    if not sk.cpu_isa_supported(name):
        pytest.skip(f"this CPU cannot run the {name} kernels")
    return sk.use_cpu_isa(name)


@pytest.fixture(params=KERNEL_ISAS)
def isa(request):
    """Runs the test once per CPU kernel variant this CPU supports (the others skip)."""
    with use_isa_or_skip(request.param):
        yield request.param


@pytest.fixture(params=sk._lib.CPU_ISAS)
def isa_all(request):
    """`isa` with avx512bf16 too: for the modules of the kernels that have an avx512bf16 copy."""
    with use_isa_or_skip(request.param):
        yield request.param


def _devices():
    yield "cpu"
    yield pytest.param("cuda", marks=[pytest.mark.cuda, pytest.mark.skipif(
        not HAS_CUDA, reason="no CUDA device or sparsekernels built without CUDA")])


@pytest.fixture(params=list(_devices()))
def device(request):
    return request.param


def random_sparse(m, k, density, dtype=torch.float32, device="cpu", generator=None, empty_rows=()):
    """Dense m x k tensor with about `density` non-zeros (never exactly zero-valued)."""
    g = generator if generator is not None else torch.Generator().manual_seed(m * 7919 + k * 31 + int(density * 1000))
    vals = torch.randn(m, k, generator=g, dtype=torch.float64)
    vals = torch.where(vals.abs() < 0.05, torch.full_like(vals, 0.5), vals)  # no accidental zeros
    mask = torch.rand(m, k, generator=g) < density
    dense = (vals * mask).to(dtype)
    for r in empty_rows:
        if r < m:
            dense[r] = 0
    return dense.to(device)


def random_dense(*shape, dtype=torch.float32, device="cpu", seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype).to(device)


def assert_matches_reference(out, ref64, dtype, torch_same_dtype=None):
    """Checks `out` against the float64 reference `ref64` (docs/design.md, "Outputs and tests"):
    float64 within 1e-12 and float32 within 1e-5 relative to max|ref|; float16/bfloat16 within twice the error
    of torch's own dense op in that dtype (`torch_same_dtype`), never required to beat
    two roundings of the output dtype (a tiny product can be exact in torch by luck)."""
    assert out.shape == ref64.shape, (out.shape, ref64.shape)
    assert out.dtype == dtype, (out.dtype, dtype)
    out64 = out.detach().double().cpu()
    ref64 = ref64.cpu()
    assert torch.isfinite(out64).all(), "output has NaN/inf: an element was not written"
    if ref64.numel() == 0:
        return
    scale = ref64.abs().max().clamp_min(1e-30)
    err = ((out64 - ref64).abs().max() / scale).item()
    if dtype == torch.float64:
        bound = 1e-12  # the float64 kernels accumulate in double
    elif dtype == torch.float32:
        bound = 1e-5
    else:
        assert torch_same_dtype is not None, "16-bit checks need torch's own result in that dtype"
        torch_err = ((torch_same_dtype.double().cpu() - ref64).abs().max() / scale).item()
        bound = 2 * max(torch_err, reference.dtype_tolerance(dtype))
    assert err <= bound, f"relative error {err:.3g} > bound {bound:.3g} ({dtype})"
