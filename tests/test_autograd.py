"""Autograd through the SpMM kernel ops of every format (python/sparsekernels/ops.py) and the
backward ops it uses: the transposed SpMM <fmt>_spmm_t and the SDDMM at a format's slots.

Gradients are checked three ways:
  * with torch.autograd.gradcheck in float64 with its default eps and tolerances, for every
    format, through the kernel ops and through the format tensors / SparseLinear: every op of the
    autograd path has a float64 CPU kernel accumulating in double (docs/design.md, float64);
  * against a float64 reference computed densely: grad_b = A^T @ grad_y and grad_values =
    (grad_y @ b^T) gathered at the stored slots (the gradient of (W * mask) @ b at the slots;
    slots outside the matrix get 0), with the 1e-5 float32 bound of the other tests;
  * with torch.autograd.gradcheck in float32, the path the fast kernels take (they accumulate
    in fp32 and have no float64 variant). SpMM is bilinear in (values, b), so a central
    difference has no truncation error, only rounding: with eps = 1e-2 the numerical Jacobian
    is good to ~1e-4 relative, and atol = rtol = 2e-3 still catches any wrong, missing or
    misplaced gradient entry (those are O(1) errors). Padding slots (BSR edge blocks, bitmap
    round-up, 2:4 positions past k) must have numerical and analytical gradient 0.
"""

import pytest
import torch
from torch.autograd.gradcheck import GradcheckError

import sparsekernels as sk
from conftest import DTYPES, assert_matches_reference, random_dense, random_sparse

FORMATS = ["csr", "bsr", "bitmap", "sparse24"]
OPS = torch.ops.sparse


# ---- format helpers ---------------------------------------------------------------------
def pack(fmt, dense, index_dtype=torch.int32, block=(3, 2)):
    """(index tensors, values) of `dense` in the format; 2:4 prunes dense to 2:4 first."""
    if fmt == "csr":
        rp, ci, v = OPS.dense_to_csr(dense)
        return (rp.to(index_dtype), ci.to(index_dtype)), v
    if fmt == "bsr":
        rp, ci, v = OPS.dense_to_bsr(dense, *block)
        return (rp.to(index_dtype), ci.to(index_dtype)), v
    if fmt == "bitmap":
        go, bm, v = OPS.dense_to_bitmap(dense)
        return (go, bm), v
    v, meta = OPS.dense_to_sparse24(sk.prune_n_m(dense, 2, 4))
    return (meta,), v


def spmm(fmt, index, values, b, m):
    if fmt == "sparse24":
        return OPS.sparse24_spmm(values, index[0], b)
    return getattr(OPS, f"{fmt}_spmm")(*index, values, b, m)


def spmm_t(fmt, index, values, b, k):
    if fmt == "sparse24":
        return OPS.sparse24_spmm_t(values, index[0], b, k)
    return getattr(OPS, f"{fmt}_spmm_t")(*index, values, b, k)


def sddmm(fmt, index, values, x, y):
    """The values-shaped SDDMM op of the format (the gradient of its values)."""
    if fmt == "csr":
        return OPS.csr_sddmm(*index, x, y)
    if fmt == "bsr":
        return OPS.bsr_sddmm(*index, x, y, values.shape[1], values.shape[2])
    if fmt == "bitmap":
        return OPS.bitmap_sddmm(*index, x, y, values.shape[0])
    return OPS.sparse24_sddmm(index[0], x, y)


def to_dense(fmt, index, values, m, k):
    if fmt == "sparse24":
        return OPS.sparse24_to_dense(values, index[0], k)
    return getattr(OPS, f"{fmt}_to_dense")(*index, values, m, k)


def slot_positions(fmt, index, values, m, k):
    """(slot, row, col) of every stored slot inside the matrix: to_dense of the values
    1, 2, 3, ... places slot s at its element as s + 1 (exact in float32 below 2**24)."""
    probe = torch.arange(1, values.numel() + 1, dtype=torch.float32).reshape(values.shape)
    d = to_dense(fmt, index, probe, m, k)
    rows, cols = d.nonzero(as_tuple=True)
    return d[rows, cols].long() - 1, rows, cols


def gather_slots(fmt, index, values, full, m, k):
    """full [m, k] gathered at the slots, values-shaped, 0 for slots outside the matrix."""
    slots, rows, cols = slot_positions(fmt, index, values, m, k)
    out = torch.zeros(values.numel(), dtype=full.dtype)
    out[slots] = full[rows, cols]
    return out.reshape(values.shape)


def random_pattern(fmt, m, k, density=0.3, index_dtype=torch.int32, block=(3, 2), dtype=torch.float32):
    dense = random_sparse(m, k, density, empty_rows=(0, 3))
    index, values = pack(fmt, dense, index_dtype, block)
    return index, values.to(dtype)


# ---- transposed SpMM and SDDMM vs float64 ------------------------------------------------------
SHAPES = [  # (m, k, n): A [m, k]; spmm_t: b [m, n] -> [k, n]; sddmm: x [m, n], y [k, n]
    (0, 5, 3), (5, 0, 3), (5, 4, 0), (1, 1, 1), (7, 33, 1), (33, 7, 16), (65, 70, 9), (130, 65, 33),
]


def check_spmm_t(fmt, index, values, b, m, k):
    out = spmm_t(fmt, index, values, b, k)
    a = to_dense(fmt, index, values, m, k)
    ref = a.double().T @ b.double()
    torch_same = (a.T @ b) if values.dtype != torch.float32 else None
    assert_matches_reference(out, ref, values.dtype, torch_same)


def check_sddmm(fmt, index, values, x, y):
    m, k = x.shape[0], y.shape[0]
    out = sddmm(fmt, index, values, x, y)
    assert out.shape == values.shape
    ref = gather_slots(fmt, index, values, x.double() @ y.double().T, m, k)
    torch_same = gather_slots(fmt, index, values, x @ y.T, m, k) if x.dtype != torch.float32 else None
    assert_matches_reference(out, ref, x.dtype, torch_same)


@pytest.mark.parametrize("m,k,n", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fmt", FORMATS)
def test_spmm_t_matches_reference(isa, fmt, m, k, n, dtype):
    index, values = random_pattern(fmt, m, k, dtype=dtype)
    check_spmm_t(fmt, index, values, random_dense(m, n, dtype=dtype, seed=1), m, k)


@pytest.mark.parametrize("m,k,n", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fmt", FORMATS)
def test_sddmm_matches_reference(isa, fmt, m, k, n, dtype):
    index, values = random_pattern(fmt, m, k, dtype=dtype)
    check_sddmm(fmt, index, values, random_dense(m, n, dtype=dtype, seed=2), random_dense(k, n, dtype=dtype, seed=3))


@pytest.mark.parametrize("n", [4, 12, 24, 31, 40, 48, 60])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fmt", FORMATS)
def test_spmm_t_last_columns(isa, fmt, n, dtype):
    """The columns past the last 4-vector panel go in one pass: 1-4 vectors, the last partial or whole, for
    AVX2's 8 and AVX-512's 16 lanes."""
    index, values = random_pattern(fmt, 70, 45, dtype=dtype)
    check_spmm_t(fmt, index, values, random_dense(70, n, dtype=dtype, seed=n), 70, 45)


@pytest.mark.parametrize("d", [1, 17, 31, 32, 33, 64, 100, 128])
@pytest.mark.parametrize("fmt", ["bsr", "bitmap", "sparse24"])
def test_sddmm_bf16_every_isa(isa_all, fmt, d):
    """bf16 format SDDMM in every CPU variant, avx512bf16 included (dot products by vdpbf16ps, 32 elements per
    step, the last < 32 by masked loads): d around the step, x and y contiguous and strided."""
    m, k = 70, 131
    index, values = random_pattern(fmt, m, k, dtype=torch.bfloat16)
    check_sddmm(fmt, index, values, random_dense(m, d, dtype=torch.bfloat16, seed=d),
                random_dense(k, d, dtype=torch.bfloat16, seed=d + 1))
    xs = random_dense(m, d + 5, dtype=torch.bfloat16, seed=d)[:, 2 : 2 + d]
    ys = random_dense(k, d + 3, dtype=torch.bfloat16, seed=d + 1)[:, 1 : 1 + d]
    check_sddmm(fmt, index, values, xs, ys)


@pytest.mark.parametrize("index_dtype", [torch.int32, torch.int64])
@pytest.mark.parametrize("density", [0.0, 1.0, 0.05])
@pytest.mark.parametrize("fmt", ["csr", "bsr"])
def test_index_dtypes_and_density(isa, fmt, index_dtype, density):
    index, values = random_pattern(fmt, 37, 45, density, index_dtype)
    assert index[0].dtype == index_dtype
    check_spmm_t(fmt, index, values, random_dense(37, 20, seed=4), 37, 45)
    check_sddmm(fmt, index, values, random_dense(37, 20, seed=5), random_dense(45, 20, seed=6))


@pytest.mark.parametrize("fmt", ["bitmap", "sparse24"])
@pytest.mark.parametrize("density", [0.0, 1.0])
def test_empty_and_full(isa, fmt, density):
    index, values = random_pattern(fmt, 70, 131, density)
    check_spmm_t(fmt, index, values, random_dense(70, 300, seed=4), 70, 131)  # n > one 256-column chunk
    check_sddmm(fmt, index, values, random_dense(70, 17, seed=5), random_dense(131, 17, seed=6))


@pytest.mark.parametrize("block", [(1, 1), (1, 4), (4, 1), (5, 7), (16, 16)])
def test_bsr_block_sizes(isa, block):
    index, values = random_pattern("bsr", 33, 41, 0.05, block=block)
    check_spmm_t("bsr", index, values, random_dense(33, 19, seed=7), 33, 41)
    check_sddmm("bsr", index, values, random_dense(33, 19, seed=8), random_dense(41, 19, seed=9))


def test_sddmm_padding_slots_are_zero(isa):
    """Slots outside the matrix get exactly 0 (also covered by the references, stated here)."""
    x, y = random_dense(5, 4, seed=1), random_dense(5, 4, seed=2)
    dense = torch.ones(5, 5)
    for fmt in ["bsr", "bitmap", "sparse24"]:
        index, values = pack(fmt, dense)
        out = sddmm(fmt, index, values, x, y)
        inside = gather_slots(fmt, index, values, torch.ones(5, 5, dtype=torch.float64), 5, 5)
        assert (out[inside == 0] == 0).all(), fmt
        assert (out[inside != 0] != 0).all(), fmt
    # bitmap: 25 set bits -> 32 values, the last 7 are padding
    index, values = pack("bitmap", dense)
    assert values.numel() == 32 and (sddmm("bitmap", index, values, x, y)[25:] == 0).all()


def test_csr_spmm_t_unsorted_and_duplicate_columns(isa):
    row_ptr = torch.tensor([0, 3, 3, 5], dtype=torch.int32)
    col_idx = torch.tensor([2, 0, 2, 1, 1], dtype=torch.int32)
    values = random_dense(5, seed=1)
    b = random_dense(3, 6, seed=2)
    out = OPS.csr_spmm_t(row_ptr, col_idx, values, b, 4)
    rows = torch.tensor([0, 0, 0, 2, 2])
    ref = torch.zeros(4, 6, dtype=torch.float64)
    ref.index_add_(0, col_idx.long(), values.double()[:, None] * b.double()[rows])
    assert_matches_reference(out, ref, torch.float32)


@pytest.mark.parametrize("index_dtype", [torch.int32, torch.int64])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 3, 8, 9, 16, 17, 33, 48, 64, 65, 130, 1025])
def test_csr_spmm_t_scatter_widths(isa, n, dtype, index_dtype):
    """csr_spmm_t with n <= 64 scatters each part of A's rows into its own fp32 buffer (rows 1, 8 or n rounded
    up to 16 floats wide; terms in groups when their columns increase, else one by one) and sums the buffers;
    up to n = 1024 in panels of 64 columns (65: a 1-column last panel); n = 1025 builds the transposed index. Enough rows for several parts, empty rows, rows in increasing
    column order (with ties) and rows in random order with duplicate columns; b strided for odd n."""
    m, k = 900, 97
    g = torch.Generator().manual_seed(n)
    lengths = torch.randint(0, 60, (m,), generator=g)
    lengths[::7] = 0
    row_ptr = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)])
    col_idx = torch.randint(0, k, (int(row_ptr[-1]),), generator=g)
    for i in range(0, m, 2):  # even rows sorted (duplicates stay, as ties)
        seg = slice(int(row_ptr[i]), int(row_ptr[i + 1]))
        col_idx[seg] = col_idx[seg].sort().values
    values = random_dense(col_idx.numel(), dtype=dtype, seed=n)
    b = random_dense(m, n + n % 2, dtype=dtype, seed=n + 1)[:, :n]
    out = OPS.csr_spmm_t(row_ptr.to(index_dtype), col_idx.to(index_dtype), values, b, k)
    rows = torch.repeat_interleave(torch.arange(m), lengths)
    ref = torch.zeros(k, n, dtype=torch.float64).index_add_(0, col_idx, values.double()[:, None] * b.double()[rows])
    torch_same = None
    if dtype != torch.float32:
        torch_same = torch.zeros(k, n, dtype=dtype).index_add_(0, col_idx, values[:, None] * b[rows])
    assert_matches_reference(out, ref, dtype, torch_same)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 3, 8, 9, 16, 17, 33, 48, 64, 65])
def test_sparse24_spmm_t_scatter_widths(isa, n, dtype):
    """sparse24_spmm_t with n <= 64 scatters like CSR (buffers of roundup(k, 16) rows: the padding columns' terms
    land in rows that are never read); n = 65 takes the strip kernel. k not a multiple of 16, enough rows for
    several parts, b strided for odd n."""
    m, k = 700, 97
    index, values = random_pattern("sparse24", m, k, dtype=dtype)
    b = random_dense(m, n + n % 2, dtype=dtype, seed=n)[:, :n]
    check_spmm_t("sparse24", index, values, b, m, k)


@pytest.mark.parametrize("density", [0.05, 0.5, 1.0])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 3, 8, 9, 16, 17])
def test_bitmap_spmm_t_scatter_widths(isa, n, dtype, density):
    """bitmap_spmm_t with n <= 16 scatters by group rows (each row's terms decoded across its groups first; the
    last tile rows read a partial 8 values at the end of the values array); n = 17 takes the strip kernel. Edge
    groups in both dimensions, enough group rows for several parts, b strided for odd n."""
    m, k = 700, 197
    index, values = random_pattern("bitmap", m, k, density, dtype=dtype)
    b = random_dense(m, n + n % 2, dtype=dtype, seed=n)[:, :n]
    check_spmm_t("bitmap", index, values, b, m, k)


@pytest.mark.parametrize("fmt", FORMATS)
def test_strided_operands(isa, fmt):
    index, values = random_pattern(fmt, 20, 30)
    b = random_dense(40, 20, seed=1).T  # [20, 40], stride(1) != 1
    check_spmm_t(fmt, index, values, b, 20, 30)
    b_wide = random_dense(20, 50, seed=2)[:, 5:45]  # row stride 50
    check_spmm_t(fmt, index, values, b_wide, 20, 30)
    check_sddmm(fmt, index, values, random_dense(20, 50, seed=3)[:, 3:40], random_dense(37, 30, seed=4).T)


# ---- opcheck -------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", FORMATS)
def test_opcheck_backward_ops(fmt):
    m, k, n = 9, 21, 5
    index, values = random_pattern(fmt, m, k)
    index = tuple(t.clone() for t in index)
    values = values.clone()
    b = random_dense(m, n, seed=1)
    if fmt == "sparse24":
        torch.library.opcheck(OPS.sparse24_spmm_t.default, (values, index[0], b, k))
        torch.library.opcheck(OPS.sparse24_sddmm.default, (index[0], random_dense(m, 4), random_dense(k, 4)))
    else:
        torch.library.opcheck(getattr(OPS, f"{fmt}_spmm_t").default, (*index, values, b, k))
    x, y = random_dense(m, 4, seed=2), random_dense(k, 4, seed=3)
    if fmt == "bsr":
        torch.library.opcheck(OPS.bsr_sddmm.default, (*index, x, y, values.shape[1], values.shape[2]))
    if fmt == "bitmap":
        torch.library.opcheck(OPS.bitmap_sddmm.default, (*index, x, y, values.shape[0]))


@pytest.mark.parametrize("fmt", FORMATS)
def test_opcheck_spmm_with_grad(fmt):
    """opcheck of the forward op with inputs requiring grad: checks the autograd registration
    and runs forward + backward under AOT autograd with dynamic shapes (the fakes of the
    backward ops)."""
    m, k, n = 9, 21, 5
    index, values = random_pattern(fmt, m, k)
    index = tuple(t.clone() for t in index)
    values = values.clone().requires_grad_()
    b = random_dense(k, n, seed=1).requires_grad_()
    if fmt == "sparse24":
        torch.library.opcheck(OPS.sparse24_spmm.default, (values, index[0], b))
    else:
        torch.library.opcheck(getattr(OPS, f"{fmt}_spmm").default, (*index, values, b, m))


# ---- gradients through the SpMM ops --------------------------------------------------------------
def reference_grads(fmt, index, values, b, grad_y, m, k):
    """float64 (grad_values, grad_b) of y = (W * mask) @ b for upstream gradient grad_y."""
    a = to_dense(fmt, index, values.detach(), m, k).double()
    grad_b = a.T @ grad_y.double()
    grad_w = grad_y.double() @ b.detach().double().T  # gradient of the dense W; the mask keeps the slots
    return gather_slots(fmt, index, values, grad_w, m, k), grad_b


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (7, 33, 5), (65, 70, 9), (33, 130, 17)])
@pytest.mark.parametrize("fmt", FORMATS)
def test_backward_matches_reference(isa, fmt, m, k, n, dtype):
    index, values = random_pattern(fmt, m, k, dtype=dtype)
    values.requires_grad_()
    b = random_dense(k, n, dtype=dtype, seed=1).requires_grad_()
    grad_y = random_dense(m, n, dtype=dtype, seed=2)
    spmm(fmt, index, values, b, m).backward(grad_y)
    ref_values, ref_b = reference_grads(fmt, index, values, b, grad_y, m, k)
    if dtype == torch.float32:
        same_values = same_b = None
    else:  # torch's own error in the dtype, for the 16-bit bounds
        a = to_dense(fmt, index, values.detach(), m, k)
        same_b = a.T @ grad_y
        same_values = gather_slots(fmt, index, values, grad_y @ b.detach().T, m, k)
    assert_matches_reference(values.grad, ref_values, dtype, same_values)
    assert_matches_reference(b.grad, ref_b, dtype, same_b)


@pytest.mark.parametrize("fmt", FORMATS)
def test_backward_only_needed_grads(fmt):
    """Only the requested gradient is computed, and only what it needs is saved."""
    m, k, n = 7, 33, 5
    index, values = random_pattern(fmt, m, k)
    b = random_dense(k, n, seed=1)
    grad_y = random_dense(m, n, seed=2)
    ref_values, ref_b = reference_grads(fmt, index, values, b, grad_y, m, k)

    v = values.clone().requires_grad_()
    y = spmm(fmt, index, v, b, m)
    saved = [t for t in y.grad_fn.saved_tensors if t is not None]
    assert len(saved) == len(index) + 1 and saved[-1].data_ptr() == b.data_ptr()  # b (for SDDMM), not values
    (gv,) = torch.autograd.grad(y, v, grad_y)
    assert_matches_reference(gv, ref_values, torch.float32)

    bb = b.clone().requires_grad_()
    y = spmm(fmt, index, values, bb, m)
    saved = [t for t in y.grad_fn.saved_tensors if t is not None]
    assert len(saved) == len(index) + 1 and saved[-1].data_ptr() == values.data_ptr()  # values (for A^T), not b
    (gb,) = torch.autograd.grad(y, bb, grad_y)
    assert_matches_reference(gb, ref_b, torch.float32)


@pytest.mark.filterwarnings("ignore:Input #. requires gradient and is not a double precision")
@pytest.mark.parametrize("fmt", FORMATS)
def test_gradcheck_float32(fmt):
    """torch.autograd.gradcheck in float32 with eps/tolerances justified by bilinearity (module
    docstring). Shapes with edge padding: BSR 3x2 blocks on 7 x 9, bitmap/2:4 with k = 9."""
    m, k, n = 7, 9, 3
    index, values = random_pattern(fmt, m, k, density=0.5)
    values = values.clone().requires_grad_()
    b = random_dense(k, n, seed=1).requires_grad_()
    fn = lambda v, bb: spmm(fmt, index, v, bb, m)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (values, b), eps=1e-2, atol=2e-3, rtol=2e-3)


@pytest.mark.parametrize("fmt,index_dtype", [(fmt, it) for fmt in FORMATS
                                              for it in ([torch.int32, torch.int64] if fmt in ("csr", "bsr")
                                                         else [torch.int32])])
def test_gradcheck_float64(isa, fmt, index_dtype):
    """torch.autograd.gradcheck in float64 with its default eps/atol/rtol through the kernel ops.
    Shapes with edge padding (BSR 3x2 blocks on 7 x 9, bitmap / 2:4 with k = 9): padding slots must
    have numerical and analytical gradient 0."""
    m, k, n = 7, 9, 3
    index, values = random_pattern(fmt, m, k, density=0.5, index_dtype=index_dtype, dtype=torch.float64)
    values = values.clone().requires_grad_()
    b = random_dense(k, n, dtype=torch.float64, seed=1).requires_grad_()
    fn = lambda v, bb: spmm(fmt, index, v, bb, m)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (values, b))


def _format_tensor(fmt, dense):
    return {"csr": sk.to_csr, "bsr": lambda w: sk.to_bsr(w, (3, 2)), "bitmap": sk.to_bitmap,
            "sparse24": lambda w: sk.to_sparse24(sk.prune_n_m(w, 2, 4))}[fmt](dense)


@pytest.mark.parametrize("fmt", FORMATS)
def test_gradcheck_float64_format_route(fmt):
    """gradcheck (float64, default tolerances) through the format tensors and SparseLinear: the
    dense operand through torch.ops.sparse.spmm / matmul / linear with a float64 format tensor,
    and (values, bias, input) of a float64 SparseLinear through torch.func.functional_call."""
    m, k, n = 7, 9, 3
    a = _format_tensor(fmt, random_sparse(m, k, 0.5, dtype=torch.float64))
    assert a.dtype == torch.float64
    b = random_dense(k, n, dtype=torch.float64, seed=1).requires_grad_()
    assert torch.autograd.gradcheck(lambda bb: torch.ops.sparse.spmm(a, bb), (b,))
    x = random_dense(n, k, dtype=torch.float64, seed=2).requires_grad_()
    assert torch.autograd.gradcheck(lambda xx: torch.nn.functional.linear(xx, a), (x,))

    sl = sk.nn.SparseLinear(a, torch.zeros(m, dtype=torch.float64))
    name = sl._values_name
    values = getattr(sl, name).detach().clone().requires_grad_()
    bias = random_dense(m, dtype=torch.float64, seed=3).requires_grad_()

    def run(v, bb, xx):
        return torch.func.functional_call(sl, {name: v, "bias": bb}, (xx,))

    assert torch.autograd.gradcheck(run, (values, bias, x))


def test_gradcheck_float64_torch_sparse_through_spmm():
    w = sk.prune_blocks(random_dense(8, 12, dtype=torch.float64), (2, 3), 0.5)
    b = random_dense(12, 3, dtype=torch.float64, seed=1).requires_grad_()
    for a in (w.to_sparse_csr(), w.to_sparse_bsr((2, 3))):
        assert torch.autograd.gradcheck(lambda bb: torch.ops.sparse.spmm(a, bb), (b,))


@pytest.mark.parametrize("fmt", FORMATS)
def test_compile_format_route_backward(fmt):
    """The dense operand's gradient through a format tensor (sparse.spmm's autograd, aten.linear's) under
    torch.compile(fullgraph=True) equals eager and the float64 reference."""
    torch._dynamo.reset()
    w = random_sparse(16, 32, 0.5)
    a = _format_tensor(fmt, w)
    wd = a.to_dense().double()

    def fn(x):
        return (torch.ops.sparse.spmm(a, x) ** 2).sum() + (torch.nn.functional.linear(x.t(), a) ** 2).sum()

    x = random_dense(32, 5, seed=1).requires_grad_()
    fn(x).backward()
    eager = x.grad.clone()
    x.grad = None
    torch.compile(fn, fullgraph=True, backend="aot_eager")(x).backward()
    xd = x.detach().double()
    ref = 2 * wd.T @ (wd @ xd) + 2 * (wd.T @ (wd @ xd))  # both terms: d/dx |A x|^2 = 2 A^T A x
    assert_matches_reference(eager, ref, torch.float32)
    assert_matches_reference(x.grad, ref, torch.float32)


def test_spmm_sparse_operand_gradient_is_refused():
    """A format tensor that requires grad gets an error, not a silently wrong (zero) gradient."""
    a = sk.to_csr(random_sparse(6, 8, 0.5)).requires_grad_()
    b = random_dense(8, 3).requires_grad_()
    y = torch.ops.sparse.spmm(a, b)
    with pytest.raises(NotImplementedError, match="no gradient for the sparse operand 'a'.*SparseLinear"):
        y.sum().backward()


@pytest.mark.filterwarnings("ignore:Input #. requires gradient and is not a double precision")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("fmt", FORMATS)
def test_gradcheck_catches_a_wrong_gradient(fmt, dtype):
    """The gradchecks above can fail: a gradient off by 1 % in one slot is caught (float32 with its
    widened tolerances, float64 with gradcheck's defaults)."""
    m, k, n = 7, 9, 3
    index, values = random_pattern(fmt, m, k, density=0.5, dtype=dtype)
    values = values.clone().requires_grad_()
    b = random_dense(k, n, dtype=dtype, seed=1).requires_grad_()
    tolerances = dict(eps=1e-2, atol=2e-3, rtol=2e-3) if dtype == torch.float32 else {}

    class Wrong(torch.autograd.Function):
        @staticmethod
        def forward(ctx, v, bb):
            ctx.save_for_backward(v, bb)
            return spmm(fmt, index, v, bb, m)

        @staticmethod
        def backward(ctx, g):
            v, bb = ctx.saved_tensors
            with torch.enable_grad():
                v2, b2 = v.detach().requires_grad_(), bb.detach().requires_grad_()
                gv, gb = torch.autograd.grad(spmm(fmt, index, v2, b2, m), (v2, b2), g)
            gv = gv.clone()
            gv.view(-1)[int(gv.reshape(-1).abs().argmax())] *= 1.01
            return gv, gb

    with pytest.raises(GradcheckError):
        torch.autograd.gradcheck(Wrong.apply, (values, b), **tolerances)


# ---- training ------------------------------------------------------------------------------------
def sparse_linear(fmt, index, values, x, out_features):
    """The sk.nn.SparseLinear pattern: y [batch, out] = (W @ x.T).T through the kernel op."""
    return spmm(fmt, index, values, x.t().contiguous(), out_features).t()


@pytest.mark.parametrize("fmt", FORMATS)
def test_mlp_training_step_matches_masked_dense(fmt):
    batch, d_in, d_hidden, d_out, lr = 16, 40, 33, 7, 0.1
    w1 = random_sparse(d_hidden, d_in, 0.3)
    w2 = random_sparse(d_out, d_hidden, 0.5)
    idx1, v1 = pack(fmt, w1)
    idx2, v2 = pack(fmt, w2)
    p1, p2 = torch.nn.Parameter(v1.clone()), torch.nn.Parameter(v2.clone())
    x = random_dense(batch, d_in, seed=1)
    target = random_dense(batch, d_out, seed=2)
    opt = torch.optim.SGD([p1, p2], lr=lr)

    def forward():
        h = torch.relu(sparse_linear(fmt, idx1, p1, x, d_hidden))
        return torch.nn.functional.mse_loss(sparse_linear(fmt, idx2, p2, h, d_out), target)

    loss = forward()
    opt.zero_grad()
    loss.backward()
    opt.step()

    # Masked dense reference in float64: W = dense(values) as a leaf, gradient masked to the slots.
    def dense_leaf(idx, v, m, k):
        return to_dense(fmt, idx, v, m, k).double().requires_grad_()

    d1, d2 = dense_leaf(idx1, v1, d_hidden, d_in), dense_leaf(idx2, v2, d_out, d_hidden)
    h = torch.relu(x.double() @ d1.T)
    ref_loss = torch.nn.functional.mse_loss(h @ d2.T, target.double())
    ref_loss.backward()
    ref_v1 = v1.double() - lr * gather_slots(fmt, idx1, v1, d1.grad, d_hidden, d_in)
    ref_v2 = v2.double() - lr * gather_slots(fmt, idx2, v2, d2.grad, d_out, d_hidden)

    assert abs(loss.item() - ref_loss.item()) <= 1e-5 * abs(ref_loss.item())
    assert_matches_reference(p1.grad, gather_slots(fmt, idx1, v1, d1.grad, d_hidden, d_in), torch.float32)
    assert_matches_reference(p2.grad, gather_slots(fmt, idx2, v2, d2.grad, d_out, d_hidden), torch.float32)
    assert_matches_reference(p1.detach(), ref_v1, torch.float32)
    assert_matches_reference(p2.detach(), ref_v2, torch.float32)
    assert not torch.equal(p1.detach(), v1), "the step changed nothing"
    # and the loss goes down after the step
    assert forward().item() < loss.item()


# ---- torch.compile -------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", FORMATS)
def test_compile_forward_backward(fmt):
    torch._dynamo.reset()
    m, k = 17, 40
    index, values = random_pattern(fmt, m, k)

    def fn(v, x):
        return (sparse_linear(fmt, index, v, x, m) ** 2).sum()

    compiled = torch.compile(fn, fullgraph=True, backend="aot_eager")
    for batch in (8, 13):
        x = random_dense(batch, k, seed=batch)
        v_eager = values.clone().requires_grad_()
        x_eager = x.clone().requires_grad_()
        fn(v_eager, x_eager).backward()
        v_c = values.clone().requires_grad_()
        x_c = x.clone().requires_grad_()
        loss = compiled(v_c, x_c)
        loss.backward()
        assert torch.allclose(loss, fn(values, x), rtol=1e-6)
        assert torch.allclose(v_c.grad, v_eager.grad, rtol=1e-5, atol=1e-6)
        assert torch.allclose(x_c.grad, x_eager.grad, rtol=1e-5, atol=1e-6)


# ---- bad input -----------------------------------------------------------------------------------
def test_bad_input_spmm_t():
    index, values = random_pattern("csr", 6, 8)
    rp, ci = index
    b = random_dense(6, 3)
    with pytest.raises(TypeError, match="csr_spmm_t.*same dtype"):
        OPS.csr_spmm_t(rp, ci, values, b.double(), 8)
    with pytest.raises(ValueError, match="csr_spmm_t.*'b' must be a 2-D"):
        OPS.csr_spmm_t(rp, ci, values, b[0], 8)
    with pytest.raises(ValueError, match="csr_spmm_t.*row_ptr.*m \\+ 1"):
        OPS.csr_spmm_t(rp, ci, values, random_dense(5, 3), 8)  # b has the wrong number of rows
    with pytest.raises(ValueError, match="csr_spmm_t.*col_idx.*out of range"):
        OPS.csr_spmm_t(rp, ci, values, b, int(ci.max()))  # k too small for the columns
    bad = rp.clone()
    bad[2], bad[3] = bad[3], bad[2] - 1
    with pytest.raises(ValueError, match="csr_spmm_t.*non-decreasing"):
        OPS.csr_spmm_t(bad, ci, values, b, 8)
    with pytest.raises(ValueError, match="csr_spmm_t.*non-negative"):
        OPS.csr_spmm_t(rp, ci, values, b, -1)

    # the scatter form (n <= 64) checks a chunk of 64 columns at a time: a bad one anywhere in a long row
    k = 200
    row_ptr = torch.tensor([0, 10, 160, 170], dtype=torch.int32)
    for n in [1, 4, 16, 65]:
        for pos in [0, 70, 149]:
            ci2 = torch.randint(0, k, (170,), generator=torch.Generator().manual_seed(pos), dtype=torch.int32)
            ci2[10 + pos] = k if pos % 2 else -1
            with pytest.raises(ValueError, match="csr_spmm_t.*col_idx.*out of range"):
                OPS.csr_spmm_t(row_ptr, ci2, random_dense(170), random_dense(3, n), k)

    index, blocks = random_pattern("bsr", 6, 8)
    with pytest.raises(ValueError, match="bsr_spmm_t.*block_col_idx.*out of range"):
        OPS.bsr_spmm_t(*index, blocks, b, 2)
    with pytest.raises(TypeError, match="bsr_spmm_t"):
        OPS.bsr_spmm_t(index[0].long(), index[1], blocks, b, 8)

    index, values = random_pattern("bitmap", 6, 70)
    with pytest.raises(ValueError, match="bitmap_spmm_t.*group_offsets"):
        OPS.bitmap_spmm_t(*index, values, b, 200)  # more groups than the arrays hold
    bm = index[1].clone()
    bm[0] |= -(2**63)  # bit 63: element (7, 7) of tile 0, outside a 6-row matrix
    with pytest.raises(ValueError, match="bitmap_spmm_t.*outside"):
        OPS.bitmap_spmm_t(index[0], bm, values, b, 70)

    index, values = random_pattern("sparse24", 6, 20)
    with pytest.raises(ValueError, match="sparse24_spmm_t.*'b' must have m = 6 rows"):
        OPS.sparse24_spmm_t(values, index[0], random_dense(5, 3), 20)
    with pytest.raises(ValueError, match="sparse24_spmm_t.*'values' must have shape"):
        OPS.sparse24_spmm_t(values, index[0], b, 40)
    meta = index[0].clone()
    meta[0, 0] = 0  # positions (0, 0): not strictly increasing
    with pytest.raises(ValueError, match="sparse24_spmm_t.*strictly increasing"):
        OPS.sparse24_spmm_t(values, meta, b, 20)


def test_bad_input_sddmm():
    x, y = random_dense(6, 4), random_dense(8, 4)
    index, blocks = random_pattern("bsr", 6, 8)
    with pytest.raises(TypeError, match="bsr_sddmm.*same dtype"):
        OPS.bsr_sddmm(*index, x, y.double(), 3, 2)
    with pytest.raises(TypeError, match="bsr_sddmm.*unsupported dtype"):
        OPS.bsr_sddmm(*index, x.long(), y.long(), 3, 2)
    with pytest.raises(ValueError, match="bsr_sddmm.*same d"):
        OPS.bsr_sddmm(*index, x, y[:, :3], 3, 2)
    with pytest.raises(ValueError, match="bsr_sddmm.*'x' must be a 2-D"):
        OPS.bsr_sddmm(*index, x[0], y, 3, 2)
    with pytest.raises(ValueError, match="bsr_sddmm.*r, c >= 1"):
        OPS.bsr_sddmm(*index, x, y, 0, 2)
    with pytest.raises(ValueError, match="bsr_sddmm.*block_row_ptr.*ceil"):
        OPS.bsr_sddmm(*index, x, y, 2, 2)  # the pattern was packed with 3 x 2 blocks
    bad = index[1].clone()
    bad[0] = 99
    with pytest.raises(ValueError, match="bsr_sddmm.*block_col_idx.*out of range"):
        OPS.bsr_sddmm(index[0], bad, x, y, 3, 2)

    index, values = random_pattern("bitmap", 6, 8)
    with pytest.raises(ValueError, match="bitmap_sddmm.*group_offsets\\[G\\]"):
        OPS.bitmap_sddmm(*index, x, y, values.numel() + 8)
    with pytest.raises(ValueError, match="bitmap_sddmm.*num_values"):
        OPS.bitmap_sddmm(*index, x, y, -1)
    go = index[0].clone()
    go[1] += 8
    with pytest.raises(ValueError, match="bitmap_sddmm.*set bits"):
        OPS.bitmap_sddmm(go, index[1], x, y, values.numel() + 8)
    with pytest.raises(TypeError, match="bitmap_sddmm.*group_offsets.*dtype"):
        OPS.bitmap_sddmm(index[0].int(), index[1], x, y, values.numel())

    index, values = random_pattern("sparse24", 6, 8)
    with pytest.raises(ValueError, match="sparse24_sddmm.*'meta' must have shape"):
        OPS.sparse24_sddmm(index[0], x[:5], y)
    with pytest.raises(ValueError, match="sparse24_sddmm.*'meta' must have shape"):
        OPS.sparse24_sddmm(index[0], x, random_dense(20, 4))  # k = 20 needs 2 words per row
    with pytest.raises(TypeError, match="sparse24_sddmm.*meta.*dtype"):
        OPS.sparse24_sddmm(index[0].int(), x, y)
    meta = index[0].clone()
    meta[1, 0] = 0x7  # positions (3, 1)
    with pytest.raises(ValueError, match="sparse24_sddmm.*strictly increasing"):
        OPS.sparse24_sddmm(meta, x, y)


@pytest.mark.parametrize("fmt", FORMATS)
def test_larger_parallel(isa, fmt):
    """Big enough that the glue splits the work over threads (and bitmap/2:4 visit several
    64-row slabs and 64-column strips)."""
    m, k, n = 257, 300, 70
    index, values = random_pattern(fmt, m, k, 0.3)
    check_spmm_t(fmt, index, values, random_dense(m, n, seed=11), m, k)
    check_sddmm(fmt, index, values, random_dense(m, n, seed=12), random_dense(k, n, seed=13))


@pytest.mark.parametrize("fmt", FORMATS)
def test_compiled_backward_graph_uses_the_backward_ops(fmt):
    """AOT autograd traces the backward into a graph of the kernel ops (nothing dense)."""
    from functorch.compile import make_boxed_func
    from torch._dynamo.backends.common import aot_autograd

    torch._dynamo.reset()
    graphs = []

    def record(gm, example_inputs):
        graphs.append(gm)
        return make_boxed_func(gm.forward)

    m, k = 17, 40
    index, values = random_pattern(fmt, m, k)
    fn = torch.compile(lambda v, x: sparse_linear(fmt, index, v, x, m).sum(), fullgraph=True,
                       backend=aot_autograd(fw_compiler=record, bw_compiler=record))
    v = values.clone().requires_grad_()
    x = random_dense(8, k, seed=1).requires_grad_()
    fn(v, x).backward()
    assert len(graphs) == 2
    bw_targets = {str(node.target) for node in graphs[1].graph.nodes if node.op == "call_function"}
    sddmm_op = "sparse.csr_sddmm.default" if fmt == "csr" else f"sparse.{fmt}_sddmm.default"
    assert sddmm_op in bw_targets and f"sparse.{fmt}_spmm_t.default" in bw_targets, bw_targets
    assert not any("to_dense" in t or t.startswith("aten.mm") for t in bw_targets), bw_targets
