"""The Python layer: format tensors, sparse.spmm routing, nn.Linear drop-in, interop, pruning, torch.compile."""

import numpy as np
import pytest
import scipy.sparse
import torch

import sparsekernels as sk
from conftest import assert_matches_reference, random_dense, random_sparse

FORMATS = ["csr", "bsr", "bitmap", "sparse24"]


def make(fmt, m=45, k=70, dtype=torch.float32, seed=0):
    """A pruned dense matrix of the pattern `fmt` holds, and its format tensor."""
    w = random_dense(m, k, dtype=torch.float32, seed=seed)
    if fmt == "sparse24":
        w = sk.prune_n_m(w, 2, 4)
    elif fmt == "bsr":
        w = sk.prune_blocks(w, (8, 16), 0.6)
    else:
        w = sk.prune_magnitude(w, 0.7)
    w = w.to(dtype)
    pack = {"csr": sk.to_csr, "bitmap": sk.to_bitmap, "sparse24": sk.to_sparse24,
            "bsr": lambda x: sk.to_bsr(x, (8, 16))}[fmt]
    return w, pack(w)


def check_product(out, w, x, dtype, bias=None, transpose_w=False):
    wd = w.double().T if transpose_w else w.double()
    ref = x.double() @ wd if transpose_w else wd @ x.double()
    same = (x @ w.T if transpose_w else w @ x)
    if bias is not None:
        ref, same = ref + bias.double(), same + bias
    assert_matches_reference(out, ref, dtype, same if dtype != torch.float32 else None)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_roundtrip_and_properties(fmt, dtype):
    w, a = make(fmt, dtype=dtype)
    assert isinstance(a, sk.SparseFormatTensor)
    assert a.shape == w.shape and a.dtype == dtype and a.device.type == "cpu"
    assert torch.equal(a.to_dense(), w)
    if fmt in ("csr", "bitmap"):
        assert a.nnz == int((w != 0).sum())
    assert 0.0 <= a.sparsity <= 1.0
    assert a.format_nbytes > 0
    r = repr(a)
    assert type(a).__name__ in r and "sparsity" in r and "bytes" in r


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_spmm_entry_points(fmt, dtype):
    w, a = make(fmt, dtype=dtype)
    x = random_dense(w.shape[1], 9, dtype=dtype, seed=3)
    check_product(torch.ops.sparse.spmm(a, x), w, x, dtype)
    check_product(a @ x, w, x, dtype)
    check_product(torch.mm(a, x), w, x, dtype)


@pytest.mark.parametrize("fmt", FORMATS)
def test_linear_dropin(fmt):
    w, a = make(fmt)
    lin = torch.nn.Linear(w.shape[1], w.shape[0])
    bias = lin.bias.detach().clone()
    lin.weight = torch.nn.Parameter(a, requires_grad=False)
    for shape in [(5, w.shape[1]), (2, 3, w.shape[1]), (1, w.shape[1])]:
        x = random_dense(*shape, seed=len(shape))
        out = lin(x).detach()
        ref = x.double() @ w.double().T + bias.double()
        assert_matches_reference(out, ref, torch.float32)
    x = random_dense(4, w.shape[1], seed=9)
    check_product(torch.addmm(bias, x, a.t()), w, x, torch.float32, bias=bias, transpose_w=True)
    check_product(torch.nn.functional.linear(x, a), w, x, torch.float32, transpose_w=True)


def test_transposed_format():
    w, a = make("csr")
    at = a.t()
    assert at.shape == (w.shape[1], w.shape[0]) and at.transposed and not a.transposed
    assert torch.equal(at.to_dense(), w.T)
    assert not at.t().transposed
    # A.T @ b and x @ A: the transposed SpMM ops
    b = random_dense(w.shape[0], 3)
    assert_matches_reference(at @ b, w.double().T @ b.double(), torch.float32)
    x = random_dense(5, w.shape[0])
    assert_matches_reference(x @ a, x.double() @ w.double(), torch.float32)


def test_unsupported_op_is_explained():
    _, a = make("bitmap")
    with pytest.raises(NotImplementedError, match=r"to_dense\(\)"):
        a + 1


def test_shape_and_dtype_mismatch():
    w, a = make("csr")
    with pytest.raises(ValueError, match="cannot be multiplied"):
        torch.ops.sparse.spmm(a, random_dense(w.shape[1] + 1, 3))
    with pytest.raises(TypeError, match="same dtype"):
        torch.ops.sparse.spmm(a, random_dense(w.shape[1], 3).double())


def test_to_dtype_device_detach_clone():
    w, a = make("bitmap")
    b = a.to(torch.bfloat16)
    assert isinstance(b, sk.BitmapTensor) and b.dtype == torch.bfloat16 and b.bitmaps.dtype == torch.int64
    assert torch.equal(b.to_dense(), w.to(torch.bfloat16))
    assert a.to("cpu").shape == a.shape
    assert isinstance(a.detach(), sk.BitmapTensor)
    c = a.clone()
    assert c.values.data_ptr() != a.values.data_ptr() and torch.equal(c.to_dense(), w)
    p = torch.nn.Parameter(a, requires_grad=False)
    assert isinstance(p, sk.BitmapTensor)
    with pytest.raises(TypeError, match="float32, float16, bfloat16 or float64"):
        a.to(torch.int32)


# ---- interop -----------------------------------------------------------------------------------------------
def test_csr_from_torch_is_zero_copy():
    w = random_sparse(30, 40, 0.2)
    t = w.to_sparse_csr()
    a = sk.to_csr(t)
    assert a.values.data_ptr() == t.values().data_ptr()
    assert a.col_idx.data_ptr() == t.col_indices().data_ptr()
    assert torch.equal(a.to_dense(), w)
    back = a.to_torch()
    assert back.layout == torch.sparse_csr and torch.equal(back.to_dense(), w)


def test_csr_scipy_interop():
    w = random_sparse(30, 40, 0.2)
    s = scipy.sparse.csr_array(w.numpy())
    a = sk.to_csr(s)
    assert np.shares_memory(a.values.numpy(), s.data)
    assert torch.equal(a.to_dense(), w)
    back = a.to_scipy()
    np.testing.assert_array_equal(back.toarray(), w.numpy())
    with pytest.raises(TypeError, match="dtype=torch.float32"):
        sk.to_csr(s.astype(np.int64))
    assert sk.to_csr(s.astype(np.float64), dtype=torch.float32).dtype == torch.float32
    s64 = s.astype(np.float64)
    a64 = sk.to_csr(s64)  # float64 is kept (CPU; docs/design.md, float64), sharing the arrays
    assert a64.dtype == torch.float64 and np.shares_memory(a64.values.numpy(), s64.data)
    np.testing.assert_array_equal(a64.to_dense().numpy(), s64.toarray())
    coo = scipy.sparse.coo_array(w.numpy())
    assert torch.equal(sk.to_csr(coo).to_dense(), w)


def test_bsr_torch_and_scipy_interop():
    w = sk.prune_blocks(random_dense(32, 48), (8, 16), 0.5)
    t = w.to_sparse_bsr((8, 16))
    a = sk.to_bsr(t)
    assert a.blocksize == (8, 16) and a.blocks.data_ptr() == t.values().data_ptr()
    assert torch.equal(a.to_dense(), w)
    assert torch.equal(a.to_torch().to_dense(), w)
    np.testing.assert_array_equal(a.to_scipy().toarray(), w.numpy())
    odd = sk.to_bsr(random_dense(33, 47), (8, 16))
    with pytest.raises(ValueError, match="multiple of the block size"):
        odd.to_torch()


def test_external_arrays_are_validated():
    t = torch.sparse_csr_tensor(torch.tensor([0, 2, 1, 2]), torch.tensor([0, 1]), torch.tensor([1.0, 2.0]), (3, 2),
                                check_invariants=False)
    with pytest.raises(ValueError, match="non-decreasing"):
        sk.to_csr(t)


def test_to_sparse24_rejects_non_24_pattern():
    with pytest.raises(ValueError):
        sk.to_sparse24(random_dense(8, 16))


def test_unsupported_input_needs_dtype():
    with pytest.raises(TypeError, match="dtype="):
        sk.to_bitmap(random_dense(8, 8).int())
    assert sk.to_bitmap(random_dense(8, 8).int(), dtype=torch.float16).dtype == torch.float16
    assert sk.to_bitmap(random_dense(8, 8).double(), dtype=torch.float16).dtype == torch.float16
    assert sk.to_bitmap(random_dense(8, 8).double()).dtype == torch.float64  # kept (CPU)


# ---- torch-native tensors through sparse.spmm -------------------------------------------------------------
@pytest.mark.parametrize("layout", ["csr", "bsr"])
def test_spmm_with_torch_sparse(isa, layout):
    w = sk.prune_blocks(random_dense(32, 48), (8, 8), 0.5) if layout == "bsr" else random_sparse(33, 47, 0.2)
    t = w.to_sparse_bsr((8, 8)) if layout == "bsr" else w.to_sparse_csr()
    x = random_dense(w.shape[1], 5, seed=2)
    assert_matches_reference(torch.ops.sparse.spmm(t, x), w.double() @ x.double(), torch.float32)


def test_spmm_torch_sparse_errors():
    w = random_sparse(8, 8, 0.5)
    with pytest.raises(TypeError, match="must be sparse"):
        torch.ops.sparse.spmm(w, random_dense(8, 2))
    with pytest.raises(NotImplementedError, match="not supported"):
        torch.ops.sparse.spmm(w.to_sparse_csc(), random_dense(8, 2))
    with pytest.raises(ValueError, match="rows"):
        torch.ops.sparse.spmm(w.to_sparse_csr(), random_dense(9, 2))


# ---- pruning ---------------------------------------------------------------------------------------------
def test_prune_magnitude_exact_count():
    w = random_dense(37, 53)
    p = sk.prune_magnitude(w, 0.7)
    assert int((p == 0).sum()) == round(0.7 * w.numel())
    kept = p != 0
    assert w[kept].abs().min() >= w[~kept].abs().max()
    pr = sk.prune_magnitude(w, 0.5, per_row=True)
    assert ((pr == 0).sum(dim=1) == round(0.5 * 53)).all()
    assert torch.equal(sk.prune_magnitude(w, 0.0), w)
    assert int((sk.prune_magnitude(w, 1.0) != 0).sum()) == 0
    with pytest.raises(ValueError, match="sparsity"):
        sk.prune_magnitude(w, 1.5)


@pytest.mark.parametrize("k", [16, 18, 1])
def test_prune_n_m(k):
    w = random_dense(9, k)
    p = sk.prune_n_m(w, 2, 4)
    pad = torch.nn.functional.pad(p, (0, (-k) % 4)).reshape(9, -1, 4)
    assert ((pad != 0).sum(-1) <= 2).all()
    # the kept entries are the two largest of each group
    wp = torch.nn.functional.pad(w, (0, (-k) % 4)).reshape(9, -1, 4).abs()
    kept_min = torch.where(pad != 0, wp, torch.full_like(wp, float("inf"))).min(-1).values
    dropped_max = torch.where((pad == 0) & (wp > 0), wp, torch.zeros_like(wp)).max(-1).values
    assert (kept_min >= dropped_max).all()
    if k >= 4:
        assert torch.equal(sk.to_sparse24(p).to_dense(), p)


def test_prune_blocks():
    w = random_dense(33, 40)
    p = sk.prune_blocks(w, (8, 8), 0.5)
    blocks = torch.nn.functional.pad(p, (0, 0, 0, 7)).reshape(5, 8, 5, 8).abs().sum(dim=(1, 3))
    assert int((blocks == 0).sum()) == round(0.5 * 25)


# ---- SpGEMM / SDDMM wrappers ---------------------------------------------------------------------------
def test_spgemm_and_sddmm_wrappers():
    a = random_sparse(20, 30, 0.2)
    b = random_sparse(30, 25, 0.2, empty_rows=(1,))
    c = sk.spgemm(sk.to_csr(a), b.to_sparse_csr())
    assert isinstance(c, sk.CSRTensor) and c.shape == (20, 25)
    assert_matches_reference(c.to_dense(), a.double() @ b.double(), torch.float32)
    x, y = random_dense(20, 8, seed=1), random_dense(30, 8, seed=2)
    s = sk.sddmm(sk.to_csr(a), x, y)
    assert_matches_reference(s.to_dense(), (x.double() @ y.double().T) * (a != 0), torch.float32)
    with pytest.raises(ValueError, match="cannot be multiplied"):
        sk.spgemm(sk.to_csr(a), sk.to_csr(a))
    with pytest.raises(NotImplementedError, match="only CSR"):
        sk.spgemm(sk.to_bitmap(a), sk.to_csr(b))


# ---- torch.compile -------------------------------------------------------------------------------------
class TwoWays(torch.nn.Module):
    """A model that uses a format tensor as an nn.Linear weight and calls sparse.spmm directly."""

    def __init__(self, a):
        super().__init__()
        self.lin = torch.nn.Linear(a.shape[1], a.shape[0])
        self.lin.weight = torch.nn.Parameter(a, requires_grad=False)
        self.a = a

    def forward(self, x):
        return torch.relu(self.lin(x)) + torch.ops.sparse.spmm(self.a, x.t()).t()


@pytest.mark.parametrize("fmt", FORMATS)
def test_compile_fullgraph(fmt):
    torch._dynamo.reset()
    w, a = make(fmt)
    model = TwoWays(a)
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    for batch in (3, 6):  # a second batch size: recompiles or runs dynamic, never breaks the graph
        x = random_dense(batch, w.shape[1], seed=batch)
        with torch.no_grad():
            out = compiled(x)
            ref = torch.relu(x.double() @ w.double().T + model.lin.bias.double()) + x.double() @ w.double().T
        assert_matches_reference(out, ref, torch.float32)


@pytest.mark.parametrize("fmt", FORMATS)
def test_stable_hash_for_caching(fmt):
    """torch.compile's AOT autograd cache keys format tensors by this hash: equal for the same structure with
    other values, different when the shape, dtype, transposition or requires_grad differ."""
    w, a = make(fmt)
    h = a._stable_hash_for_caching()
    assert isinstance(h, str) and len(h) == 32
    pack = {"csr": sk.to_csr, "bitmap": sk.to_bitmap, "sparse24": sk.to_sparse24,
            "bsr": lambda x: sk.to_bsr(x, (8, 16))}[fmt]
    assert pack(torch.where(w != 0, torch.full_like(w, 1.5), w))._stable_hash_for_caching() == h  # other values
    assert make(fmt, m=46)[1]._stable_hash_for_caching() != h
    assert a.t()._stable_hash_for_caching() != h
    assert a.to(torch.float16)._stable_hash_for_caching() != h
    assert a.detach().requires_grad_(True)._stable_hash_for_caching() != h


def test_compile_inductor():
    torch._dynamo.reset()
    w, a = make("bitmap")
    model = TwoWays(a)
    x = random_dense(4, w.shape[1])
    with torch.no_grad():
        out = torch.compile(model, fullgraph=True)(x)
    assert_matches_reference(out, model(x).detach().double(), torch.float32)
