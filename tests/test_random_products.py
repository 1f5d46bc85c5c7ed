"""Random products across every entry point, checked elementwise (hypothesis, derandomized so CI is repeatable).

Each example draws a format, dtype, CPU kernel variant, thread count, shape (0, 1, odd, edge-group and
multiple-of-vector sizes), density (0 to 1, with empty rows), value scale (1 or 1e-3: fp16 subnormal results),
the dense operand's layout (contiguous, transposed, strided columns, a wider tensor's columns, expanded) and the
entry point (sparse.spmm, @, A.T @ b, x @ A, F.linear / torch.addmm with and without a bias), and compares with
float64: |out - ref| <= 2 (k u32 (|A| @ |b|) + u_out |ref|) + a subnormal floor, i.e. fp32 accumulation and
one rounding of the output, element by element (test_bias.py explains why elementwise). SDDMM and SpGEMM
likewise. The per-format tests cover each path on chosen shapes; this covers their combinations."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sparsekernels as sk

U32 = 2.0**-24
UNIT = {torch.float32: 2.0**-24, torch.float16: 2.0**-11, torch.bfloat16: 2.0**-8}
FLOOR = {torch.float32: 2.0**-148, torch.float16: 2.0**-24, torch.bfloat16: 2.0**-125}
DTYPES = list(UNIT)
ISAS = [i for i in sk._lib.CPU_ISAS if sk.cpu_isa_supported(i)]
SIZES = [0, 1, 2, 3, 5, 7, 8, 15, 16, 17, 31, 33, 63, 64, 65, 100, 127, 129, 200]
COLUMNS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 15, 16, 17, 24, 31, 32, 33, 48, 64, 65, 100, 129, 257]
BLOCKS = [(1, 1), (1, 4), (4, 1), (2, 2), (4, 4), (8, 8), (16, 16), (32, 32), (3, 5)]
SETTINGS = settings(max_examples=250, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def assert_one_rounding(out, ref, absprod, k, dtype, what):
    assert out.shape == ref.shape and out.dtype == dtype, (what, out.shape, ref.shape, out.dtype)
    bound = 2 * (max(k, 1) * U32 * absprod + UNIT[dtype] * ref.abs()) + FLOOR[dtype]
    err = (out.double() - ref).abs()
    bad = ~(err <= bound)  # NaN (an unwritten, poisoned element) counts as bad
    assert not bad.any(), f"{what}: {int(bad.sum())} of {err.numel()} elements beyond one rounding"


def sparse_dense(draw, m, k, dtype, gen):
    density = draw(st.sampled_from([0.0, 0.02, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0]))
    scale = draw(st.sampled_from([1.0, 1.0, 1e-3]))
    v = torch.randn(m, k, generator=gen, dtype=torch.float64)
    v = torch.where(v.abs() < 0.05, torch.full_like(v, 0.5), v)
    mask = torch.rand(m, k, generator=gen) < density
    if m and draw(st.booleans()):
        mask[draw(st.integers(0, m - 1))] = False  # an empty row
    return (v * mask * scale).to(dtype)


def dense_operand(draw, rows, cols, dtype, gen):
    """A rows x cols dense operand in one of the layouts a caller can pass."""
    layout = draw(st.sampled_from(["contiguous", "transposed", "strided", "wider", "expanded"]))
    if layout == "contiguous":
        t = torch.randn(rows, cols, generator=gen, dtype=torch.float64)
    elif layout == "transposed":
        t = torch.randn(cols, rows, generator=gen, dtype=torch.float64).t()
    elif layout == "strided":
        t = torch.randn(rows, 2 * cols, generator=gen, dtype=torch.float64)[:, ::2]
    elif layout == "wider":
        t = torch.randn(rows, cols + 3, generator=gen, dtype=torch.float64)[:, :cols]
    else:
        return torch.randn(rows, 1, generator=gen, dtype=torch.float64).to(dtype).expand(rows, cols), layout
    return t.to(dtype), layout


@st.composite
def product_case(draw):
    fmt = draw(st.sampled_from(["csr", "bsr", "bitmap", "sparse24"]))
    dtype = draw(st.sampled_from(DTYPES))
    m, k = draw(st.sampled_from(SIZES)), draw(st.sampled_from(SIZES))
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    dense = sparse_dense(draw, m, k, torch.float64, gen)
    if fmt == "sparse24":
        dense = sk.prune_n_m(dense, 2, 4)
    dense = dense.to(dtype)
    block = draw(st.sampled_from(BLOCKS)) if fmt == "bsr" else None
    return dict(fmt=fmt, dtype=dtype, m=m, k=k, dense=dense, block=block, gen=gen,
                isa=draw(st.sampled_from(ISAS)), threads=draw(st.sampled_from([1, 2])),
                op=draw(st.sampled_from(["spmm", "matmul", "t", "rmatmul", "linear", "addmm"])),
                n=draw(st.sampled_from(COLUMNS)), draw=draw)


def pack(fmt, dense, block):
    return {"csr": sk.to_csr, "bitmap": sk.to_bitmap, "sparse24": sk.to_sparse24,
            "bsr": lambda d: sk.to_bsr(d, block)}[fmt](dense)


@SETTINGS
@given(case=product_case())
def test_random_products(case):
    fmt, dtype, m, k, n, op, draw, gen = (case[x] for x in ("fmt", "dtype", "m", "k", "n", "op", "draw", "gen"))
    a = pack(fmt, case["dense"], case["block"])
    a64 = case["dense"].double()
    assert torch.equal(a.to_dense().double(), a64)
    what = {x: case[x] for x in ("fmt", "dtype", "m", "k", "n", "op", "isa", "threads", "block")}
    prev = torch.get_num_threads()
    torch.set_num_threads(case["threads"])
    try:
        with sk.use_cpu_isa(case["isa"]):
            if op in ("spmm", "matmul"):
                b, what["b"] = dense_operand(draw, k, n, dtype, gen)
                out = torch.ops.sparse.spmm(a, b) if op == "spmm" else a @ b
                ref, absprod, depth = a64 @ b.double(), a64.abs() @ b.double().abs(), k
            elif op == "t":
                b, what["b"] = dense_operand(draw, m, n, dtype, gen)
                out = a.t() @ b
                ref, absprod, depth = a64.t() @ b.double(), a64.abs().t() @ b.double().abs(), m
            elif op == "rmatmul":
                x, what["b"] = dense_operand(draw, n, m, dtype, gen)
                out = x @ a
                ref, absprod, depth = x.double() @ a64, x.double().abs() @ a64.abs(), m
            else:
                x, what["b"] = dense_operand(draw, n, k, dtype, gen)
                bias = torch.randn(m, generator=gen, dtype=torch.float64).to(dtype) if draw(st.booleans()) else None
                if op == "linear":
                    out = F.linear(x, a, bias)
                else:
                    bias = torch.zeros(m, dtype=dtype) if bias is None else bias
                    out = torch.addmm(bias, x, a.t())
                ref, absprod, depth = x.double() @ a64.t(), x.double().abs() @ a64.abs().t(), k
                if bias is not None:
                    ref, absprod = ref + bias.double(), absprod + bias.double().abs()
            assert_one_rounding(out, ref, absprod, depth, dtype, what)
    finally:
        torch.set_num_threads(prev)


@SETTINGS
@given(data=st.data())
def test_random_sddmm_and_spgemm(data):
    draw = data.draw
    dtype = draw(st.sampled_from(DTYPES))
    m, n = draw(st.sampled_from(SIZES)), draw(st.sampled_from(SIZES))
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    isa, threads = draw(st.sampled_from(ISAS)), draw(st.sampled_from([1, 2]))
    prev = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with sk.use_cpu_isa(isa):
            if draw(st.booleans()):
                d = draw(st.sampled_from([1, 2, 3, 4, 7, 8, 16, 17, 32, 33, 64, 65, 128]))
                pattern = sparse_dense(draw, m, n, dtype, gen)
                x, _ = dense_operand(draw, m, d, dtype, gen)
                y, _ = dense_operand(draw, n, d, dtype, gen)
                out = sk.sddmm(sk.to_csr(pattern), x, y).to_dense()
                mask = (pattern != 0).double()
                ref = (x.double() @ y.double().t()) * mask
                absprod = (x.double().abs() @ y.double().abs().t()) * mask
                assert_one_rounding(out, ref, absprod, d, dtype, ("sddmm", dtype, m, n, d, isa, threads))
            else:
                k = draw(st.sampled_from(SIZES))
                a = sparse_dense(draw, m, k, dtype, gen)
                b = sparse_dense(draw, k, n, dtype, gen)
                out = sk.spgemm(sk.to_csr(a), sk.to_csr(b)).to_dense()
                ref, absprod = a.double() @ b.double(), a.double().abs() @ b.double().abs()
                assert_one_rounding(out, ref, absprod, k, dtype, ("spgemm", dtype, m, n, k, isa, threads))
    finally:
        torch.set_num_threads(prev)


def test_the_bound_catches_a_wrong_element():
    """The check fails for one element off by a few units in the last place, and for a poisoned (NaN) one."""
    ref = torch.randn(8, 8, dtype=torch.float64)
    out = ref.to(torch.bfloat16)
    assert_one_rounding(out, ref, ref.abs(), 1, torch.bfloat16, "exact")
    for bad in (out[3, 4].double() * (1 + 4 * UNIT[torch.bfloat16]), float("nan")):
        wrong = out.clone()
        wrong[3, 4] = bad
        with pytest.raises(AssertionError, match="1 of 64 elements"):
            assert_one_rounding(wrong, ref, ref.abs(), 1, torch.bfloat16, "wrong")
