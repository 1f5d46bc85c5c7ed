"""Regressions from an adversarial audit of the public CPU API: each test is a way an ordinary PyTorch user broke
the library (wrong answer, unclear error, lost state), kept so it stays fixed."""

import copy
import io

import pytest
import torch
from torch import nn

import sparsekernels as sk
from conftest import random_dense

FORMATS = ["csr", "bsr", "bitmap", "sparse24"]


def make(fmt, m=7, k=33, dtype=torch.float32, seed=0):
    """A small odd-shaped pruned matrix and its format tensor (BSR blocks 4 x 8: partial edge blocks)."""
    w = random_dense(m, k, seed=seed)
    w = sk.prune_n_m(w, 2, 4) if fmt == "sparse24" else sk.prune_magnitude(w, 0.6)
    w = w.to(dtype)
    pack = {"csr": sk.to_csr, "bitmap": sk.to_bitmap, "sparse24": sk.to_sparse24,
            "bsr": lambda x: sk.to_bsr(x, (4, 8))}[fmt]
    return w, pack(w)


# ---- the @ operator ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", FORMATS)
def test_matmul_operator_keeps_the_dtype_error(fmt):
    """`a @ x` with x of another dtype used to raise Python's bare "unsupported operand type(s) for @" (torch turns a
    TypeError inside Tensor.__matmul__ into NotImplemented), hiding which argument was wrong."""
    w, a = make(fmt)
    with pytest.raises(TypeError, match="same dtype"):
        a @ random_dense(w.shape[1], 3).half()
    with pytest.raises(TypeError, match="same dtype"):
        random_dense(3, w.shape[0]).double() @ a
    with pytest.raises(TypeError, match="same dtype"):
        a.t() @ random_dense(w.shape[0], 3).bfloat16()
    with pytest.raises(ValueError, match="cannot be multiplied"):
        a @ random_dense(w.shape[1] + 1, 3)
    # still a proper product, both ways
    x = random_dense(w.shape[1], 3)
    torch.testing.assert_close(a @ x, w @ x, rtol=1e-5, atol=1e-5)
    y = random_dense(2, w.shape[0])
    torch.testing.assert_close(y @ a, y @ w, rtol=1e-5, atol=1e-5)


def test_matmul_operator_with_corrupt_index_dtype_names_the_argument():
    w, a = make("csr")
    bad = sk.CSRTensor(a._mk, (a.row_ptr.float(), a.col_idx, a.values))
    with pytest.raises(TypeError, match="row_ptr"):
        bad @ random_dense(w.shape[1], 2)
# ---- addmm -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", FORMATS)
def test_addmm_beta_zero_ignores_input(fmt):
    """torch.addmm with beta=0 ignores `input` (NaN/inf in it are not propagated); the format tensors multiplied it
    by 0 and returned NaN."""
    w, a = make(fmt)
    x = random_dense(w.shape[1], 4)
    nan_input = torch.full((w.shape[0], 4), float("nan"))
    out = torch.addmm(nan_input, a, x, beta=0, alpha=2)
    torch.testing.assert_close(out, 2 * (w @ x), rtol=1e-5, atol=1e-5)
    out = torch.addmm(torch.ones(4), a, x, beta=0.5)
    torch.testing.assert_close(out, w @ x + 0.5, rtol=1e-5, atol=1e-5)
