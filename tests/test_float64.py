"""float64 on the CPU (docs/design.md, float64): every SpMM, transposed SpMM, SDDMM, pack / unpack and CSR
SpGEMM op in float64 against a float64 dense reference within 1e-12 (the kernels accumulate in double), on
odd shapes, both index dtypes and every ISA; the format tensors and SparseLinear in float64; bad input.

gradcheck in float64 (default tolerances) is in test_autograd.py."""

import pytest
import torch

import sparsekernels as sk
from conftest import HAS_CUDA, assert_matches_reference, random_dense, random_sparse
from test_autograd import FORMATS, OPS, gather_slots, pack, sddmm, spmm, spmm_t, to_dense

F64 = torch.float64
SHAPES = [  # (m, k, n)
    (0, 5, 3), (5, 0, 3), (5, 4, 0), (1, 1, 1), (7, 33, 1), (33, 7, 16), (65, 70, 9), (130, 65, 33),
]


def f64_pattern(fmt, m, k, density=0.3, index_dtype=torch.int32):
    """(dense A, index tensors, values) in float64 with full float64 mantissas; rows 0 and 3 empty."""
    dense = random_sparse(m, k, density, dtype=F64, empty_rows=(0, 3))
    if fmt == "sparse24":
        dense = sk.prune_n_m(dense, 2, 4)
    index, values = pack(fmt, dense, index_dtype)
    assert values.dtype == F64
    return dense, index, values


def index_dtypes(fmt):
    return [torch.int32, torch.int64] if fmt in ("csr", "bsr") else [torch.int32]


CASES = [(fmt, it) for fmt in FORMATS for it in index_dtypes(fmt)]


@pytest.mark.parametrize("m,k,n", SHAPES)
@pytest.mark.parametrize("fmt,index_dtype", CASES)
def test_ops_match_float64_reference(isa, fmt, index_dtype, m, k, n):
    dense, index, values = f64_pattern(fmt, m, k, index_dtype=index_dtype)
    assert torch.equal(to_dense(fmt, index, values, m, k), dense)  # packing moves values exactly
    b = random_dense(k, n, dtype=F64, seed=1)
    assert_matches_reference(spmm(fmt, index, values, b, m), dense @ b, F64)
    bt = random_dense(m, n, dtype=F64, seed=2)
    assert_matches_reference(spmm_t(fmt, index, values, bt, k), dense.T @ bt, F64)
    x, y = random_dense(m, n, dtype=F64, seed=3), random_dense(k, n, dtype=F64, seed=4)
    out = sddmm(fmt, index, values, x, y)
    assert out.shape == values.shape
    assert_matches_reference(out, gather_slots(fmt, index, values, x @ y.T, m, k), F64)


@pytest.mark.parametrize("density", [0.0, 1.0])
@pytest.mark.parametrize("fmt", FORMATS)
def test_empty_and_full(isa, fmt, density):
    m, k, n = 70, 131, 300  # bitmap / 2:4 edge groups, n past the fast kernels' 256-column chunk
    dense, index, values = f64_pattern(fmt, m, k, density)
    b, bt = random_dense(k, n, dtype=F64, seed=1), random_dense(m, n, dtype=F64, seed=2)
    assert_matches_reference(spmm(fmt, index, values, b, m), dense @ b, F64)
    assert_matches_reference(spmm_t(fmt, index, values, bt, k), dense.T @ bt, F64)
    x, y = random_dense(m, 5, dtype=F64, seed=3), random_dense(k, 5, dtype=F64, seed=4)
    assert_matches_reference(sddmm(fmt, index, values, x, y), gather_slots(fmt, index, values, x @ y.T, m, k), F64)


@pytest.mark.parametrize("block", [(1, 1), (4, 1), (5, 7), (16, 16)])
def test_bsr_block_sizes(isa, block):
    m, k, n = 33, 41, 6
    dense = random_sparse(m, k, 0.05, dtype=F64)
    index, values = pack("bsr", dense, block=block)
    b, bt = random_dense(k, n, dtype=F64, seed=1), random_dense(m, n, dtype=F64, seed=2)
    assert_matches_reference(spmm("bsr", index, values, b, m), dense @ b, F64)
    assert_matches_reference(spmm_t("bsr", index, values, bt, k), dense.T @ bt, F64)
    x, y = random_dense(m, 3, dtype=F64, seed=3), random_dense(k, 3, dtype=F64, seed=4)
    assert_matches_reference(sddmm("bsr", index, values, x, y), gather_slots("bsr", index, values, x @ y.T, m, k), F64)
    assert torch.equal(OPS.bsr_to_dense(*index, values, m, k), dense)


@pytest.mark.parametrize("fmt", FORMATS)
def test_larger_parallel_and_strided(isa, fmt):
    """Big enough that the glue splits the work over threads; strided dense operands."""
    m, k, n = 257, 300, 40
    dense, index, values = f64_pattern(fmt, m, k)
    b = random_dense(n, k, dtype=F64, seed=1).T  # stride(1) != 1
    assert_matches_reference(spmm(fmt, index, values, b, m), dense @ b, F64)
    bt = random_dense(m, n + 10, dtype=F64, seed=2)[:, 5:n + 5]  # row stride n + 10
    assert_matches_reference(spmm_t(fmt, index, values, bt, k), dense.T @ bt, F64)
    x, y = random_dense(m, 9, dtype=F64, seed=3), random_dense(k, 9, dtype=F64, seed=4)
    assert_matches_reference(sddmm(fmt, index, values, x, y), gather_slots(fmt, index, values, x @ y.T, m, k), F64)


def test_double_accumulation():
    """Sums of 2^25 and 63 ones: exact in double, not in fp32 (spacing 4 at 2^25) in any summation order."""
    terms = torch.ones(64, 2, dtype=F64)
    terms[0] = 2.0**25
    exact = 2.0**25 + 63
    assert float(torch.tensor(exact, dtype=torch.float32)) != exact
    for fmt in FORMATS:
        # SpMM: a dense 1 x 128 row (2:4: ones at columns 4j, 4j + 1) times b holding the terms at those columns
        w = torch.zeros(1, 128, dtype=F64)
        cols = torch.arange(64) // 2 * 4 + torch.arange(64) % 2
        w[0, cols] = 1.0
        b = torch.zeros(128, 2, dtype=F64)
        b[cols] = terms
        index, values = pack(fmt, w)
        assert spmm(fmt, index, values, b, 1).tolist() == [[exact, exact]], fmt
        assert spmm(fmt, index, values.float(), b.float(), 1)[0, 0].item() != exact, fmt  # fp32 cannot
        # SpMM^T: a 64 x 1 column of ones; SDDMM: dot products of length 64
        index, values = pack(fmt, torch.ones(64, 1, dtype=F64))
        assert spmm_t(fmt, index, values, terms, 1).tolist() == [[exact, exact]], fmt
        out = sddmm(fmt, index, values, terms.T[:1].repeat(64, 1).contiguous(), torch.ones(1, 64, dtype=F64))
        assert (out[values != 0] == exact).all() and (out[values == 0] == 0).all(), fmt
    rp, ci, v = OPS.dense_to_csr(torch.ones(1, 64, dtype=F64))
    brp, bci, bv = OPS.dense_to_csr(terms[:, :1].contiguous())
    assert OPS.csr_spgemm(rp, ci, v, brp, bci, bv, 1)[2].tolist() == [exact]


def test_pack_keeps_values_below_float32_range():
    """A float64 non-zero that float32 would flush to 0 is kept by every packer, and -0.0 is dropped."""
    dense = torch.zeros(4, 16, dtype=F64)
    dense[0, 1], dense[1, 2], dense[2, 0], dense[3, 5] = 1e-300, -2.5e-320, 3.0, -0.0
    for fmt in FORMATS:
        index, values = pack(fmt, dense)
        back = to_dense(fmt, index, values, 4, 16)
        assert torch.equal(back, dense), fmt
        assert back[0, 1].item() == 1e-300 and back[1, 2].item() == -2.5e-320
    assert OPS.dense_to_csr(dense)[2].numel() == 3
    assert sk.to_bitmap(dense).nnz == 3


@pytest.mark.parametrize("index_dtypes", [(torch.int32, torch.int32), (torch.int32, torch.int64),
                                          (torch.int64, torch.int64)])
@pytest.mark.parametrize("m,k,n", [(0, 3, 4), (4, 0, 5), (1, 1, 1), (7, 33, 12), (40, 30, 700)])
def test_spgemm(isa, m, k, n, index_dtypes):
    a = random_sparse(m, k, 0.2, dtype=F64, empty_rows=(0, 2))
    bm = random_sparse(k, n, 0.1, dtype=F64)
    ia, ib = index_dtypes
    arp, aci, av = OPS.dense_to_csr(a)
    brp, bci, bv = OPS.dense_to_csr(bm)
    crp, cci, cv = OPS.csr_spgemm(arp.to(ia), aci.to(ia), av, brp.to(ib), bci.to(ib), bv, n)
    assert cv.dtype == F64 and crp.dtype == (torch.int64 if torch.int64 in index_dtypes else torch.int32)
    assert_matches_reference(OPS.csr_to_dense(crp, cci, cv, m, n), a @ bm, F64)
    # the same structural pattern as float32 SpGEMM (sorted columns, cancellations kept)
    crp32, cci32, _ = OPS.csr_spgemm(arp.to(ia), aci.to(ia), av.float(), brp.to(ib), bci.to(ib), bv.float(), n)
    assert torch.equal(crp, crp32) and torch.equal(cci, cci32)


def test_spgemm_duplicates_and_unsorted():
    a_rp, a_ci = torch.tensor([0, 3, 3]), torch.tensor([1, 0, 1])
    a_v = torch.tensor([1.0, 2.0, 3.0], dtype=F64) / 7
    b_rp, b_ci = torch.tensor([0, 2, 4]), torch.tensor([3, 0, 0, 3])
    b_v = torch.tensor([5.0, 6.0, 7.0, 8.0], dtype=F64) / 3
    crp, cci, cv = OPS.csr_spgemm(a_rp, a_ci, a_v, b_rp, b_ci, b_v, 4)
    da = OPS.csr_to_dense(a_rp, a_ci, a_v, 2, 2)
    db = OPS.csr_to_dense(b_rp, b_ci, b_v, 2, 4)
    assert crp.tolist() == [0, 2, 2] and cci.tolist() == [0, 3]
    assert_matches_reference(OPS.csr_to_dense(crp, cci, cv, 2, 4), da @ db, F64)
    assert sk.spgemm(sk.to_csr(da), sk.to_csr(db)).dtype == F64


# ---- format tensors, SparseLinear, pruning ------------------------------------------------------------------
@pytest.mark.parametrize("fmt", FORMATS)
def test_format_tensors(fmt):
    w = random_sparse(33, 70, 0.3, dtype=F64)
    if fmt == "sparse24":
        w = sk.prune_n_m(w, 2, 4)
    to = {"csr": sk.to_csr, "bsr": lambda x: sk.to_bsr(x, (4, 8)), "bitmap": sk.to_bitmap,
          "sparse24": sk.to_sparse24}[fmt]
    a = to(w)
    assert a.dtype == F64 and torch.equal(a.to_dense(), w)
    b = random_dense(70, 5, dtype=F64, seed=1)
    assert_matches_reference(torch.ops.sparse.spmm(a, b), w @ b, F64)
    assert_matches_reference(a @ b, w @ b, F64)
    x = random_dense(3, 70, dtype=F64, seed=2)
    assert_matches_reference(torch.nn.functional.linear(x, a), x @ w.T, F64)
    # .double() / .float() round trip
    af = a.float()
    assert af.dtype == torch.float32 and type(af) is type(a)
    ad = af.double()
    assert ad.dtype == F64 and type(ad) is type(a) and torch.equal(ad.to_dense(), w.float().double())
    # float64 dense input keeps its dtype; dtype= still converts
    assert to(w.float()).dtype == torch.float32 and sk.to_csr(w, dtype=torch.float16).dtype == torch.float16


def test_format_tensor_dtype_moves():
    a = sk.to_csr(random_sparse(8, 8, 0.5, dtype=F64))
    with pytest.raises(TypeError, match="float32, float16, bfloat16 or float64"):
        a.to(torch.int32)
    assert a.to("meta").dtype == F64 and a.to("meta").values.is_meta


@pytest.mark.cuda
@pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device or sparsekernels built without CUDA")
def test_format_tensor_float64_stays_on_cpu():
    a = sk.to_csr(random_sparse(8, 8, 0.5, dtype=F64))
    with pytest.raises(TypeError, match="float64 values are supported on the CPU only"):
        a.to("cuda")
    with pytest.raises(TypeError, match="float64 values are supported on the CPU only"):
        sk.to_csr(random_sparse(8, 8, 0.5)).to("cuda", torch.float64)
    assert a.to("cuda", torch.float32).dtype == torch.float32


def test_torch_native_csr_and_bsr_through_spmm(isa):
    w = sk.prune_blocks(random_dense(32, 48, dtype=F64), (8, 8), 0.5)
    b = random_dense(48, 7, dtype=F64, seed=1)
    assert_matches_reference(torch.ops.sparse.spmm(w.to_sparse_csr(), b), w @ b, F64)
    assert_matches_reference(torch.ops.sparse.spmm(w.to_sparse_bsr((8, 8)), b), w @ b, F64)


def stored_mask(sl):
    """The elements of a SparseLinear's stored slots inside the matrix (explicit zeros included) as a bool mask."""
    w = sl.weight
    *index, values = w._inner()
    return type(w)(w._mk, (*index, torch.ones_like(values))).to_dense() != 0


@pytest.mark.parametrize("fmt", FORMATS)
def test_sparse_linear_double(fmt):
    """SparseLinear.double() runs the float64 kernels; one SGD step matches the masked dense float64 step."""
    torch.manual_seed(0)
    sl = sk.nn.SparseLinear.from_dense(torch.nn.Linear(40, 24), fmt, sparsity=0.5, blocksize=(4, 8)).double()
    assert getattr(sl, sl._values_name).dtype == F64 and sl.bias.dtype == F64
    w = sl.to_dense().clone()
    mask = stored_mask(sl)
    assert mask.sum() < w.numel()
    x = random_dense(6, 40, dtype=F64, seed=1)
    target = random_dense(6, 24, dtype=F64, seed=2)
    opt = torch.optim.SGD(sl.parameters(), lr=0.1)
    loss = torch.nn.functional.mse_loss(sl(x), target)
    wd = w.clone().requires_grad_()
    bd = sl.bias.detach().clone().requires_grad_()
    ref_loss = torch.nn.functional.mse_loss(x @ wd.T + bd, target)
    assert abs(loss.item() - ref_loss.item()) <= 1e-12 * ref_loss.item()
    opt.zero_grad()
    loss.backward()
    ref_loss.backward()
    opt.step()
    assert_matches_reference(sl.to_dense(), (w - 0.1 * wd.grad * mask).detach(), F64)
    assert_matches_reference(sl.bias.detach(), (bd - 0.1 * bd.grad).detach(), F64)
    assert not torch.equal(sl.to_dense(), w)


def test_pruning_ranks_in_float64():
    """Magnitudes that differ only past float32's precision are ranked by their float64 values."""
    w = torch.tensor([[1.0 + 1e-12, 1.0, 1.0 + 3e-12, 1.0 + 2e-12]], dtype=F64)
    assert sk.prune_magnitude(w, 0.5).ne(0).tolist() == [[False, False, True, True]]
    assert sk.prune_n_m(w, 2, 4).ne(0).tolist() == [[False, False, True, True]]
    wb = torch.tensor([[1.0, 1.0 + 1e-12]], dtype=F64)
    assert sk.prune_blocks(wb, (1, 1), 0.5).ne(0).tolist() == [[False, True]]


# ---- opcheck -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", FORMATS)
def test_opcheck_float64(fmt):
    m, k, n = 9, 21, 5
    dense, index, values = f64_pattern(fmt, m, k)
    index = tuple(t.clone() for t in index)
    values = values.clone().requires_grad_()
    b = random_dense(k, n, dtype=F64, seed=1).requires_grad_()
    bt = random_dense(m, n, dtype=F64, seed=2)
    x, y = random_dense(m, 4, dtype=F64, seed=3), random_dense(k, 4, dtype=F64, seed=4)
    if fmt == "sparse24":
        torch.library.opcheck(OPS.sparse24_spmm.default, (values, index[0], b))
        torch.library.opcheck(OPS.sparse24_spmm_t.default, (values.detach(), index[0], bt, k))
        torch.library.opcheck(OPS.sparse24_sddmm.default, (index[0], x, y))
        torch.library.opcheck(OPS.dense_to_sparse24.default, (dense,))
        torch.library.opcheck(OPS.sparse24_to_dense.default, (values.detach(), index[0], k))
        return
    torch.library.opcheck(getattr(OPS, f"{fmt}_spmm").default, (*index, values, b, m))
    torch.library.opcheck(getattr(OPS, f"{fmt}_spmm_t").default, (*index, values.detach(), bt, k))
    torch.library.opcheck(getattr(OPS, f"{fmt}_to_dense").default, (*index, values.detach(), m, k))
    if fmt == "csr":
        torch.library.opcheck(OPS.csr_sddmm.default, (*index, x, y))
        torch.library.opcheck(OPS.dense_to_csr.default, (dense,))
        b_csr = OPS.dense_to_csr(random_sparse(k, 7, 0.4, dtype=F64))
        torch.library.opcheck(OPS.csr_spgemm.default, (*index, values.detach(), *b_csr, 7))
    if fmt == "bsr":
        torch.library.opcheck(OPS.bsr_sddmm.default, (*index, x, y, values.shape[1], values.shape[2]))
        torch.library.opcheck(OPS.dense_to_bsr.default, (dense, 3, 2))
    if fmt == "bitmap":
        torch.library.opcheck(OPS.bitmap_sddmm.default, (*index, x, y, values.shape[0]))
        torch.library.opcheck(OPS.dense_to_bitmap.default, (dense,))


# ---- bad input -------------------------------------------------------------------------------------------------
def test_mixed_dtypes_raise_type_error():
    dense, (rp, ci), v = f64_pattern("csr", 6, 8)
    b32 = random_dense(8, 3)
    with pytest.raises(TypeError, match="csr_spmm.*'values' and 'b' must have the same dtype"):
        OPS.csr_spmm(rp, ci, v, b32, 6)
    with pytest.raises(TypeError, match="csr_spmm_t.*same dtype"):
        OPS.csr_spmm_t(rp, ci, v, random_dense(6, 3), 8)
    with pytest.raises(TypeError, match="csr_sddmm.*'x' and 'y' must have the same dtype"):
        OPS.csr_sddmm(rp, ci, random_dense(6, 3, dtype=F64), random_dense(8, 3))
    with pytest.raises(TypeError, match="csr_spgemm.*same dtype"):
        OPS.csr_spgemm(rp, ci, v, rp, ci, v.float(), 8)
    _, (go, bm), bv = f64_pattern("bitmap", 6, 8)
    with pytest.raises(TypeError, match="bitmap_spmm.*same dtype"):
        OPS.bitmap_spmm(go, bm, bv, b32, 6)
    with pytest.raises(TypeError, match="bitmap_sddmm.*same dtype"):
        OPS.bitmap_sddmm(go, bm, random_dense(6, 3, dtype=F64), random_dense(8, 3), bv.numel())
    _, (meta,), sv = f64_pattern("sparse24", 6, 8)
    with pytest.raises(TypeError, match="sparse24_spmm.*same dtype"):
        OPS.sparse24_spmm(sv, meta, b32)
    _, (brp, bci), blocks = f64_pattern("bsr", 6, 8)
    with pytest.raises(TypeError, match="bsr_spmm.*same dtype"):
        OPS.bsr_spmm(brp, bci, blocks, b32, 6)


def test_corrupt_metadata_raises_validator_error():
    """float64 runs the full validator before its kernel: corrupt metadata is the validator's ValueError."""
    _, (rp, ci), v = f64_pattern("csr", 6, 8)
    b = random_dense(8, 3, dtype=F64)
    bad = ci.clone()
    bad[-1] = 99
    with pytest.raises(ValueError, match="csr_spmm.*col_idx.*out of range"):
        OPS.csr_spmm(rp, bad, v, b, 6)
    bad_rp = rp.clone()
    bad_rp[2], bad_rp[3] = bad_rp[3], bad_rp[2] - 1
    with pytest.raises(ValueError, match="csr_spmm.*non-decreasing"):
        OPS.csr_spmm(bad_rp, ci, v, b, 6)
    with pytest.raises(ValueError, match="csr_sddmm.*out of range"):
        OPS.csr_sddmm(rp, bad, random_dense(6, 3, dtype=F64), random_dense(8, 3, dtype=F64))
    with pytest.raises(ValueError, match="csr_to_dense.*out of range"):
        OPS.csr_to_dense(rp, bad, v, 6, 8)
    with pytest.raises(ValueError, match="csr_spgemm.*out of range"):
        OPS.csr_spgemm(rp, bad, v, *OPS.dense_to_csr(random_sparse(8, 5, 0.5, dtype=F64)), 5)

    _, (brp, bci), blocks = f64_pattern("bsr", 6, 8)
    bad = bci.clone()
    bad[0] = 99
    with pytest.raises(ValueError, match="bsr_spmm.*block_col_idx.*out of range"):
        OPS.bsr_spmm(brp, bad, blocks, b, 6)

    _, (go, bm), bv = f64_pattern("bitmap", 6, 70)
    bm2 = bm.clone()
    bm2[0] |= -(2**63)  # element (7, 7) of tile 0: outside a 6-row matrix
    with pytest.raises(ValueError, match="bitmap_spmm.*outside"):
        OPS.bitmap_spmm(go, bm2, bv, random_dense(70, 3, dtype=F64), 6)
    go2 = go.clone()
    go2[1] += 8
    with pytest.raises(ValueError, match="bitmap_spmm.*set bits|bitmap_spmm.*group_offsets"):
        OPS.bitmap_spmm(go2, bm, bv, random_dense(70, 3, dtype=F64), 6)
    with pytest.raises(ValueError, match="bitmap_spmm_t.*outside"):
        OPS.bitmap_spmm_t(go, bm2, bv, random_dense(6, 3, dtype=F64), 70)
    with pytest.raises(ValueError, match="bitmap_to_dense.*outside"):
        OPS.bitmap_to_dense(go, bm2, bv, 6, 70)

    _, (meta,), sv = f64_pattern("sparse24", 6, 20)
    meta2 = meta.clone()
    meta2[5, 1] = 0  # positions (0, 0) in the last row
    with pytest.raises(ValueError, match="sparse24_spmm.*row 5.*strictly increasing"):
        OPS.sparse24_spmm(sv, meta2, random_dense(20, 3, dtype=F64))
    with pytest.raises(ValueError, match="sparse24_sddmm.*strictly increasing"):
        OPS.sparse24_sddmm(meta2, random_dense(6, 3, dtype=F64), random_dense(20, 3, dtype=F64))
    with pytest.raises(ValueError, match="sparse24_to_dense.*strictly increasing"):
        OPS.sparse24_to_dense(sv, meta2, 20)


def test_unsupported_dtypes_still_raise():
    with pytest.raises(TypeError, match="dense_to_csr.*float32, float16, bfloat16 or float64"):
        OPS.dense_to_csr(torch.ones(2, 2, dtype=torch.int32))
    with pytest.raises(TypeError, match="bitmap_sddmm.*unsupported dtype"):
        _, (go, bm), bv = f64_pattern("bitmap", 6, 8)
        OPS.bitmap_sddmm(go, bm, torch.ones(6, 3, dtype=torch.int64), torch.ones(8, 3, dtype=torch.int64), bv.numel())


@pytest.mark.cuda
@pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device or sparsekernels built without CUDA")
def test_cuda_float64_is_a_type_error():
    rp, ci, v = (t.cuda() for t in OPS.dense_to_csr(random_sparse(6, 8, 0.5, dtype=F64)))
    with pytest.raises(TypeError, match="csr_spmm.*float64 on the CPU only"):
        OPS.csr_spmm(rp, ci, v, random_dense(8, 3, dtype=F64, device="cuda"), 6)
