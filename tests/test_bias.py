"""The SpMM kernel ops' fused bias: out = A @ b + bias[:, None] with the bias added to the fp32 sums and the
result rounded once (csrc/torch_bindings.cpp), as torch's own F.linear rounds; and its users: F.linear /
torch.addmm with a format weight and sk.nn.SparseLinear.

An added out + bias after a 16-bit product rounds twice: where the bias cancels most of the product the
first rounding's error (up to u * |A @ b|) dwarfs the result, an elementwise error torch's fused F.linear does
not have (bf16, 200 x 127 @ 127 x 256: elementwise relative error 0.80 against torch's 0.004, normwise 1.8x
torch's). The checks here are elementwise against a float64 reference: |out - ref| <= 2 (k u32 (|A| @ |b|) +
u_out |ref|) + a subnormal floor, the error of fp32 accumulation plus one rounding; the cancelling case below
makes a second rounding fail it (test_double_rounding_fails_the_bound)."""

import pytest
import torch
import torch.nn.functional as F

import sparsekernels as sk
from conftest import DTYPES, random_dense, random_sparse

FORMATS = ["csr", "bsr", "bitmap", "sparse24"]
OPS = torch.ops.sparse
U32 = 2.0**-24
UNIT = {torch.float32: 2.0**-24, torch.float16: 2.0**-11, torch.bfloat16: 2.0**-8, torch.float64: 2.0**-53}
FLOOR = {torch.float32: 2.0**-148, torch.float16: 2.0**-24, torch.bfloat16: 2.0**-125, torch.float64: 0.0}


def weight(fmt, m, k, dtype, seed=0):
    dense = random_sparse(m, k, 0.4, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    if fmt == "sparse24":
        dense = sk.prune_n_m(dense, 2, 4)
    return dense.to(dtype)


def kernel_spmm(fmt, dense, b, bias, block=(4, 2)):
    """The format's SpMM kernel op on the packed `dense`, with `bias`."""
    m = dense.shape[0]
    if fmt == "csr":
        return OPS.csr_spmm(*OPS.dense_to_csr(dense), b, m, bias)
    if fmt == "bsr":
        return OPS.bsr_spmm(*OPS.dense_to_bsr(dense, *block), b, m, bias)
    if fmt == "bitmap":
        return OPS.bitmap_spmm(*OPS.dense_to_bitmap(dense), b, m, bias)
    values, meta = OPS.dense_to_sparse24(dense)
    return OPS.sparse24_spmm(values, meta, b, bias)


def assert_rounded_once(out, a64, b64, bias64, dtype, k):
    """out within fp32 accumulation plus one rounding of a64 @ b64 + bias64 (2-D, float64), elementwise."""
    assert out.dtype == dtype
    ref = a64 @ b64 + bias64[:, None]
    absprod = a64.abs() @ b64.abs() + bias64.abs()[:, None]
    acc = 2.0**-53 if dtype == torch.float64 else U32
    bound = 2 * (max(k, 1) * acc * absprod + UNIT[dtype] * ref.abs()) + FLOOR[dtype]
    err = (out.double() - ref).abs()
    bad = ~(err <= bound)
    assert not bad.any(), (f"{int(bad.sum())} of {err.numel()} elements beyond one rounding; worst "
                           f"{float((err / bound).max()):.3g}x the bound")


def cancelling_bias(a64, b64, dtype, seed):
    """A bias that cancels each row's first product column up to a small remainder: a second rounding of
    the product shows as a large relative error there."""
    g = torch.Generator().manual_seed(seed)
    return (-(a64 @ b64)[:, 0] + 1e-2 * torch.randn(a64.shape[0], generator=g, dtype=torch.float64)).to(dtype)


# Shapes reaching each kernel path: n = 1 (dot products), 2..8 (expansions / select / pair dot), 9..16
# (register rows), 17+ (wide panels, BSR's packed panel from 64), odd m / k with edge groups / blocks.
SHAPES = [(70, 130, 1), (33, 64, 2), (65, 96, 3), (17, 40, 4), (64, 128, 8), (40, 33, 9), (96, 96, 16),
          (31, 70, 24), (66, 65, 33), (20, 48, 70), (9, 1, 5), (9, 0, 5)]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_kernel_bias_rounded_once(isa_all, fmt, dtype, shape):
    m, k, n = shape
    dense = weight(fmt, m, k, dtype, seed=m + k + n)
    b = random_dense(k, n, dtype=dtype, seed=1)
    a64, b64 = dense.double(), b.double()
    bias = cancelling_bias(a64, b64, dtype, seed=2)
    assert_rounded_once(kernel_spmm(fmt, dense, b, bias), a64, b64, bias.double(), dtype, k)
    if fmt == "bsr":  # 1 x c blocks: the r x 1 / 1 x c loops; 4 x 1 the r x 1 one
        for block in ((1, 4), (4, 1)):
            assert_rounded_once(kernel_spmm(fmt, dense, b, bias, block), a64, b64, bias.double(), dtype, k)


@pytest.mark.parametrize("fmt", FORMATS)
def test_kernel_bias_float64_and_strided_b(fmt):
    m, k, n = 37, 50, 6
    for dtype in (torch.float64, torch.float32):
        dense = weight(fmt, m, k, dtype)
        b = random_dense(k, 2 * n, dtype=dtype, seed=3)[:, ::2]  # strided columns: copied by the glue
        bias = random_dense(2 * m, dtype=dtype, seed=4)[::2]  # strided bias: made contiguous by the glue
        assert_rounded_once(kernel_spmm(fmt, dense, b, bias), dense.double(), b.double(), bias.double(), dtype, k)


@pytest.mark.parametrize("fmt", FORMATS)
def test_kernel_bias_none_and_large_n(fmt):
    """bias=None is the plain product, and the wide-n paths (n > 16, BSR's packed panel) add the bias too."""
    m, k, n = 48, 64, 130
    dense = weight(fmt, m, k, torch.bfloat16)
    b = random_dense(k, n, dtype=torch.bfloat16, seed=5)
    plain = kernel_spmm(fmt, dense, b, None)
    bias = random_dense(m, dtype=torch.bfloat16, seed=6)
    assert_rounded_once(kernel_spmm(fmt, dense, b, bias), dense.double(), b.double(), bias.double(), torch.bfloat16,
                        k)
    assert_rounded_once(plain, dense.double(), b.double(), torch.zeros(m, dtype=torch.float64), torch.bfloat16, k)


def test_double_rounding_fails_the_bound():
    """The check above catches a bias added after a rounded 16-bit product (the behaviour before the fused bias)."""
    m, k, n = 64, 96, 4
    dense = weight("csr", m, k, torch.bfloat16)
    b = random_dense(k, n, dtype=torch.bfloat16, seed=1)
    bias = cancelling_bias(dense.double(), b.double(), torch.bfloat16, seed=2)
    twice = kernel_spmm("csr", dense, b, None) + bias[:, None]
    with pytest.raises(AssertionError, match="beyond one rounding"):
        assert_rounded_once(twice, dense.double(), b.double(), bias.double(), torch.bfloat16, k)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
def test_linear_addmm_and_sparse_linear_round_once(fmt, dtype):
    out_f, in_f, tokens = 48, 80, 5
    dense = weight(fmt, out_f, in_f, dtype)
    x = random_dense(tokens, in_f, dtype=dtype, seed=7)
    bias = cancelling_bias(dense.double(), x.double().t(), dtype, seed=8)
    w = {"csr": sk.to_csr, "bsr": lambda t: sk.to_bsr(t, (8, 8)), "bitmap": sk.to_bitmap,
         "sparse24": sk.to_sparse24}[fmt](dense)
    a64, x64, bias64 = dense.double(), x.double(), bias.double()

    def check(out):  # out [tokens, out_f] = x @ W^T + bias: the transposed product of the kernel's [out_f, tokens]
        assert out.shape == (tokens, out_f)
        assert_rounded_once(out.t(), a64, x64.t(), bias64, dtype, in_f)

    check(F.linear(x, w, bias))
    check(torch.addmm(bias, x, w.t()))
    check(F.linear(x.reshape(1, tokens, in_f), w, bias).reshape(tokens, out_f))  # batched input
    check(sk.nn.SparseLinear(w, bias)(x))


def test_sparse_linear_bias_round_once_and_grad():
    lin = torch.nn.Linear(80, 48).to(torch.bfloat16)
    with torch.no_grad():
        lin.weight.copy_(weight("bitmap", 48, 80, torch.bfloat16))
    x = random_dense(5, 80, dtype=torch.bfloat16, seed=9)
    with torch.no_grad():
        lin.bias.copy_(cancelling_bias(lin.weight.double(), x.double().t(), torch.bfloat16, seed=10))
    layer = sk.nn.SparseLinear.from_dense(lin, "bitmap")
    out = layer(x)
    assert_rounded_once(out.t(), lin.weight.double(), x.double().t(), lin.bias.double(), torch.bfloat16, 80)
    # the bias gradient through the kernel op's autograd formula: grad_y summed over the tokens
    g = random_dense(5, 48, dtype=torch.bfloat16, seed=11)
    out.backward(g)
    assert layer.bias.grad is not None
    torch.testing.assert_close(layer.bias.grad.double(), g.double().sum(0), rtol=2**-7, atol=1e-3)


@pytest.mark.parametrize("fmt", FORMATS)
def test_kernel_bias_gradcheck(fmt):
    """float64 gradcheck of values, b and bias through the kernel op (the bias input's gradient formula)."""
    m, k, n = 9, 21, 4
    dense = weight(fmt, m, k, torch.float64)
    if fmt == "csr":
        *index, values = OPS.dense_to_csr(dense)
    elif fmt == "bsr":
        *index, values = OPS.dense_to_bsr(dense, 3, 2)
    elif fmt == "bitmap":
        *index, values = OPS.dense_to_bitmap(dense)
    else:
        values, meta = OPS.dense_to_sparse24(dense)
        index = [meta]
    values = values.clone().requires_grad_()
    b = random_dense(k, n, dtype=torch.float64, seed=1).requires_grad_()
    bias = random_dense(m, dtype=torch.float64, seed=2).requires_grad_()

    def run(v, bb, bi):
        if fmt == "sparse24":
            return OPS.sparse24_spmm(v, index[0], bb, bi)
        return getattr(OPS, f"{fmt}_spmm")(*index, v, bb, m, bi)

    assert torch.autograd.gradcheck(run, (values, b, bias))
    args = (values, index[0], b, bias) if fmt == "sparse24" else (*index, values, b, m, bias)
    torch.library.opcheck(getattr(OPS, f"{fmt}_spmm").default, args)


@pytest.mark.parametrize("fmt", FORMATS)
def test_kernel_bias_bad_arguments(fmt):
    m, k, n = 16, 32, 3
    dense = weight(fmt, m, k, torch.float32)
    b = random_dense(k, n, seed=1)
    name = "blocks" if fmt == "bsr" else "values"
    with pytest.raises(ValueError, match=r"'bias' must be a 1-D tensor of length m = 16 .*got shape \[15\]"):
        kernel_spmm(fmt, dense, b, torch.zeros(15))
    with pytest.raises(ValueError, match=r"'bias' must be a 1-D tensor of length m = 16"):
        kernel_spmm(fmt, dense, b, torch.zeros(16, 1))
    with pytest.raises(TypeError, match=rf"'{name}' and 'bias' must have the same dtype"):
        kernel_spmm(fmt, dense, b, torch.zeros(16, dtype=torch.float64))
    # the fake (meta tensors, as torch.compile traces) checks the same
    meta_b = b.to("meta")
    if fmt == "sparse24":
        values, meta = OPS.dense_to_sparse24(dense)
        call = lambda bias: OPS.sparse24_spmm(values.to("meta"), meta.to("meta"), meta_b, bias)  # noqa: E731
    else:
        parts = {"csr": OPS.dense_to_csr, "bitmap": OPS.dense_to_bitmap}.get(fmt, lambda d: OPS.dense_to_bsr(d, 4, 2))(
            dense)
        call = lambda bias: getattr(OPS, f"{fmt}_spmm")(*(p.to("meta") for p in parts), meta_b, m, bias)  # noqa: E731
    assert call(torch.zeros(16, device="meta")).shape == (m, n)
    with pytest.raises(ValueError, match="'bias' must be a 1-D tensor of length m = 16"):
        call(torch.zeros(15, device="meta"))
    with pytest.raises(TypeError, match="must have the same dtype"):
        call(torch.zeros(16, dtype=torch.float64, device="meta"))


def test_linear_bias_other_shapes_still_added():
    """A bias that is not one entry per output feature (addmm's 2-D input, beta / alpha != 1) is still applied."""
    dense = weight("csr", 12, 20, torch.float32)
    w = sk.to_csr(dense)
    x = random_dense(3, 20, seed=1)
    full = random_dense(3, 12, seed=2)
    ref = x.double() @ dense.double().t()
    torch.testing.assert_close(torch.addmm(full, x, w.t()).double(), ref + full.double(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(torch.addmm(full[0], x, w.t(), beta=0.5, alpha=2.0).double(),
                               2 * ref + 0.5 * full[0].double(), rtol=1e-5, atol=1e-5)
