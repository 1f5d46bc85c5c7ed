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


def make(fmt, m=7, k=33, dtype=torch.float32, seed=0, sparsity=0.6):
    """A small odd-shaped pruned matrix and its format tensor (BSR blocks 4 x 8: partial edge blocks)."""
    w = random_dense(m, k, seed=seed)
    w = sk.prune_n_m(w, 2, 4) if fmt == "sparse24" else sk.prune_magnitude(w, sparsity)
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


# ---- state_dict / torch.save of models holding format tensors ------------------------------------------------------
class Block(nn.Module):
    """The README's pattern: a format tensor as the weight of an nn.Linear."""

    def __init__(self, fmt, seed):
        super().__init__()
        w, a = make(fmt, seed=seed, sparsity=0.3 + 0.1 * seed)
        self.proj = nn.Linear(w.shape[1], w.shape[0])
        self.proj.weight = nn.Parameter(a, requires_grad=False)

    def forward(self, h):
        return self.proj(h)


@pytest.mark.parametrize("fmt", FORMATS)
def test_load_state_dict_into_format_weight(fmt):
    """load_state_dict copies each parameter with copy_, which the format tensors did not support: the README's
    model could not load its own state_dict. Another pattern (another nnz) must load too."""
    src, dst = Block(fmt, seed=1), Block(fmt, seed=2)
    assert src.proj.weight.format_nbytes != dst.proj.weight.format_nbytes or fmt in ("bsr", "sparse24")
    dst.load_state_dict(src.state_dict())
    assert type(dst.proj.weight) is type(src.proj.weight)
    assert torch.equal(dst.proj.weight.to_dense(), src.proj.weight.to_dense())
    h = random_dense(3, src.proj.in_features)
    torch.testing.assert_close(dst(h), src(h))
    # a copy, not an alias of the source's arrays
    assert all(t.data_ptr() != u.data_ptr() for t, u in zip(dst.proj.weight._inner(), src.proj.weight._inner()))


@pytest.mark.parametrize("fmt", FORMATS)
def test_load_state_dict_between_dense_and_format_weight(fmt):
    """A sparse model's state_dict loads into the dense model (the dense weight), and a dense state_dict into a
    model holding a format tensor (packed into that format, keeping its block size)."""
    sparse = Block(fmt, seed=1)
    dense = nn.Linear(sparse.proj.in_features, sparse.proj.out_features)
    dense.load_state_dict(sparse.proj.state_dict())
    assert torch.equal(dense.weight.detach(), sparse.proj.weight.to_dense())

    other = Block(fmt, seed=3)
    other.proj.load_state_dict(dense.state_dict())
    assert type(other.proj.weight) is type(sparse.proj.weight)
    if fmt == "bsr":
        assert other.proj.weight.blocksize == (4, 8)
    assert torch.equal(other.proj.weight.to_dense(), dense.weight.detach())
    if fmt == "sparse24":  # a dense weight that is not 2:4 cannot become one
        bad = {"weight": random_dense(*dense.weight.shape), "bias": dense.bias.detach()}
        with pytest.raises(RuntimeError, match="not 2:4"):
            other.proj.load_state_dict(bad)


def test_copy_into_format_tensor_checks_shape():
    w, a = make("csr")
    with pytest.raises(RuntimeError, match="shape"):
        a.copy_(random_dense(w.shape[0] + 1, w.shape[1]))


def test_copy_into_transposed_format_tensor():
    w, a = make("bitmap")
    at = a.t()
    at.copy_(make("bitmap", seed=5)[1].t())
    assert torch.equal(at.to_dense(), make("bitmap", seed=5)[0].t())
    at.copy_(make("csr", seed=6)[1].t())  # another format: repacked
    assert at.transposed and torch.equal(at.to_dense(), make("csr", seed=6)[0].t())


@pytest.mark.parametrize("fmt", FORMATS)
def test_torch_load_default_weights_only(fmt):
    """torch.load defaults to weights_only=True (torch >= 2.6); format tensors (and the state_dict of a model
    holding them) could only be loaded with weights_only=False."""
    w, a = make(fmt)
    buf = io.BytesIO()
    torch.save({"a": a, "at": a.t()}, buf)
    buf.seek(0)
    got = torch.load(buf)
    assert type(got["a"]) is type(a) and torch.equal(got["a"].to_dense(), w)
    assert got["at"].transposed and torch.equal(got["at"].to_dense(), w.t())

    src, dst = Block(fmt, seed=1), Block(fmt, seed=2)
    buf = io.BytesIO()
    torch.save(src.state_dict(), buf)
    buf.seek(0)
    dst.load_state_dict(torch.load(buf))
    assert torch.equal(dst.proj.weight.to_dense(), src.proj.weight.to_dense())


@pytest.mark.parametrize("fmt", FORMATS)
def test_T_and_vector_operands(fmt):
    """`a.T` (aten.permute) and `a @ v` for a 1-D v (aten.mv) raised NotImplementedError although `a.t()` and
    `a @ v[:, None]` work."""
    w, a = make(fmt)
    assert a.T.transposed and a.T.shape == (w.shape[1], w.shape[0])
    assert torch.equal(a.T.to_dense(), w.T) and not a.T.T.transposed
    v = random_dense(w.shape[1])
    torch.testing.assert_close(a @ v, w @ v, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(torch.mv(a, v), w @ v, rtol=1e-5, atol=1e-5)
    u = random_dense(w.shape[0])
    torch.testing.assert_close(a.T @ u, w.T @ u, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(u @ a, u @ w, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="cannot be multiplied"):
        a @ random_dense(w.shape[1] + 1)
    with pytest.raises(TypeError, match="same dtype"):
        a @ v.half()


# ---- sparsify and tied weights -----------------------------------------------------------------------------------
class TiedLM(nn.Module):
    """An embedding tied to the output projection, and two Linear layers sharing one weight Parameter."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.emb = nn.Embedding(50, 16)
        self.body = nn.Linear(16, 16)
        self.a = nn.Linear(16, 16, bias=False)
        self.b = nn.Linear(16, 16, bias=False)
        self.b.weight = self.a.weight
        self.head = nn.Linear(16, 50, bias=False)
        self.head.weight = self.emb.weight

    def forward(self, t):
        h = self.body(self.emb(t))
        return self.head(self.b(self.a(h)))


def test_sparsify_leaves_tied_weights_tied():
    """sparsify replaced a Linear whose weight Parameter is shared (tied embeddings, or two layers sharing one
    weight) by a SparseLinear with its own copy, silently untying them (and, when pruning, making the head and
    the embedding different matrices). Such layers are skipped now, with the reason; naming one raises."""
    model = TiedLM()
    report = sk.sparsify(model, "csr", sparsity=0.5)
    assert report.swapped == ["body"]
    skipped = report.skipped
    assert set(skipped) == {"a", "b", "head"}
    assert "tied" in skipped["head"] and "emb.weight" in skipped["head"]
    assert "b.weight" in skipped["a"] and "a.weight" in skipped["b"]
    assert model.head.weight is model.emb.weight and model.a.weight is model.b.weight
    with pytest.raises(ValueError, match="tied"):
        sk.sparsify(TiedLM(), "csr", sparsity=0.5, filter=["head"])
    # untied, the same layers convert
    untied = TiedLM()
    untied.head.weight = nn.Parameter(untied.emb.weight.detach().clone())
    assert "head" in sk.sparsify(untied, "csr", sparsity=0.5).swapped


def test_sparsify_shared_module_is_not_tied_weights():
    """A Linear module used at two places is one layer (converted once), not a tied weight."""
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU())
    model.append(model[0])
    report = sk.sparsify(model, "bitmap", sparsity=0.5)
    assert report.swapped == ["0"] and model[0] is model[2]


# ---- sddmm / spgemm autograd -------------------------------------------------------------------------------------
def test_sddmm_is_differentiable_in_x_and_y():
    """sk.sddmm's values had requires_grad but no autograd formula: backward left x.grad None with only a
    warning ("silently incorrect")."""
    w, a = make("csr", m=9, k=13, dtype=torch.float64)
    w[4] = 0  # an empty row
    a = sk.to_csr(w)
    x = random_dense(9, 5, dtype=torch.float64).requires_grad_()
    y = random_dense(13, 5, dtype=torch.float64, seed=1).requires_grad_()
    assert torch.autograd.gradcheck(lambda x, y: sk.sddmm(a, x, y).values, (x, y))
    # float32, against the dense formula
    xf, yf = x.detach().float().requires_grad_(), y.detach().float().requires_grad_()
    g = random_dense(a.nnz, seed=2)
    sk.sddmm(sk.to_csr(w.float()), xf, yf).values.backward(g)
    gd = sk.CSRTensor((9, 13), (a.row_ptr, a.col_idx, g)).to_dense().double()
    torch.testing.assert_close(xf.grad.double(), gd @ y.detach(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(yf.grad.double(), gd.T @ x.detach(), rtol=1e-5, atol=1e-5)


def test_spgemm_refuses_to_backpropagate():
    """csr_spgemm has no gradient: asking for one raises instead of leaving .grad None."""
    a = sk.to_csr(make("csr", m=5, k=6)[0])
    values = a.values.detach().clone().requires_grad_()
    out = torch.ops.sparse.csr_spgemm(a.row_ptr, a.col_idx, values, a.row_ptr.new_tensor([0] * 7), 
                                      a.col_idx[:0], a.values[:0], 4)
    with pytest.raises(RuntimeError, match="csr_spgemm.*no gradient"):
        out[2].sum().backward()


# ---- BSR nnz / sparsity ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("blocksize", [(4, 8), (3, 5), (7, 33), (8, 64), (1, 1)])
def test_bsr_nnz_counts_slots_inside_the_matrix(blocksize):
    """BSR nnz counted the padding of partial edge blocks, so a dense 7 x 33 matrix in 4 x 8 blocks reported
    nnz = 320 > 231 and sparsity = -0.385 (repr and SparseLinear showed it)."""
    w = random_dense(7, 33) + 10.0  # no zero
    a = sk.to_bsr(w, blocksize)
    assert a.nnz == 231 and a.sparsity == 0.0
    w[4:, :] = 0
    w[:, 9:20] = 0
    a = sk.to_bsr(w, blocksize)
    r, c = blocksize
    inside = torch.zeros(7, 33, dtype=torch.bool)
    for i in range(0, 7, r):
        for j in range(0, 33, c):
            if (w[i:i + r, j:j + c] != 0).any():
                inside[i:i + r, j:j + c] = True
    assert a.nnz == int(inside.sum()) and a.t().nnz == a.nnz
    assert 0.0 <= a.sparsity <= 1.0
    lin = nn.Linear(33, 7)
    with torch.no_grad():
        lin.weight.copy_(w)
    assert sk.nn.SparseLinear.from_dense(lin, "bsr", blocksize=blocksize).nnz == a.nnz
    assert sk.to_bsr(torch.zeros(0, 5), (2, 2)).nnz == 0


# ---- format tensors built by hand --------------------------------------------------------------------------------
def test_hand_built_sparse24_with_another_row_count_is_refused():
    """The 2:4 ops take m from the values' rows, so a Sparse24Tensor built with shape (6, 9) over arrays of 7 rows
    returned a 7-row product (and a 7-row to_dense) for a tensor whose .shape says 6 rows."""
    w, a = make("sparse24", m=7, k=9)
    bad = sk.Sparse24Tensor((6, 9), (a.meta, a.values))
    with pytest.raises(ValueError, match="6 rows.*7"):
        bad @ random_dense(9, 3)
    with pytest.raises(ValueError, match="6 rows.*7"):
        bad.to_dense()
    with pytest.raises(ValueError, match="6 rows.*7"):
        bad.t() @ random_dense(6, 3)
    with pytest.raises(ValueError, match="6 rows.*7"):
        torch.nn.functional.linear(random_dense(2, 9), bad)
    with pytest.raises(ValueError, match="6 rows.*7"):
        sk.nn.SparseLinear(bad)(random_dense(2, 9))


@pytest.mark.parametrize("mk", [(-1, 9), (7, -3), (7.0, 9), ("7", 9), (7,)])
def test_format_tensor_constructor_checks_the_shape(mk):
    """A negative or non-integer shape gave "numel: integer multiplication overflow" or worse."""
    _, a = make("csr", m=7, k=9)
    with pytest.raises((ValueError, TypeError), match="shape"):
        sk.CSRTensor(mk, a._inner())


@pytest.mark.parametrize("fmt", ["csr", "bsr"])
def test_to_torch_and_to_scipy_validate_hand_built_arrays(fmt):
    """to_torch() / to_scipy() handed the arrays on with check_invariants=False / unchecked, trusting that they
    were validated when built; a tensor built directly from arrays is not, so an out-of-range column reached
    torch and scipy (whose toarray() does not check: an out-of-bounds write)."""
    w, a = make(fmt, m=8, k=32)
    idx = a._inner()[1].clone()
    idx[0] = 1000
    bad = type(a)(a._mk, (a._inner()[0], idx, a._inner()[2]))
    with pytest.raises(ValueError, match="out of range"):
        bad.to_torch()
    with pytest.raises(ValueError, match="out of range"):
        bad.to_scipy()
    assert torch.equal(a.to_torch().to_dense(), w)


# ---- argument errors that did not say what was wrong -------------------------------------------------------------
@pytest.mark.parametrize("fmt", FORMATS)
def test_sparse_linear_input_of_the_wrong_width(fmt):
    """SparseLinear(x) with x.shape[-1] != in_features raised "shape '[-1, 33]' is invalid for input of size 96"; an
    input of another dtype named the kernel's internal 'b'."""
    layer = sk.nn.SparseLinear.from_dense(nn.Linear(33, 7), fmt, None if fmt == "sparse24" else 0.5,
                                          blocksize=(4, 8))
    with pytest.raises(ValueError, match="in_features = 33.*32"):
        layer(random_dense(3, 32))
    with pytest.raises(ValueError, match="in_features = 33"):
        layer(torch.tensor(1.0))
    assert layer(random_dense(33)).shape == (7,)
    with pytest.raises(TypeError, match="SparseLinear: the input has dtype torch.float16.*torch.float32"):
        layer(random_dense(3, 33).half())


@pytest.mark.parametrize("blocksize", [4, (1, 2, 3), (2.5, 2), (0, 2), "ab", None])
def test_blocksize_errors_name_the_blocksize(blocksize):
    """to_bsr / prune_blocks / SparseLinear.from_dense with a malformed blocksize raised 'cannot unpack
    non-iterable int object', 'too many values to unpack' or a torch.pad message."""
    w = random_dense(8, 8)
    if blocksize is not None:
        with pytest.raises((ValueError, TypeError), match="blocksize"):
            sk.to_bsr(w, blocksize)
    with pytest.raises((ValueError, TypeError), match="blocksize"):
        sk.prune_blocks(w, blocksize, 0.5)
    with pytest.raises((ValueError, TypeError), match="blocksize"):
        sk.nn.SparseLinear.from_dense(nn.Linear(8, 8), "bsr", 0.5, blocksize=blocksize)


def test_blocksize_accepts_integer_scalars():
    w = sk.prune_magnitude(random_dense(8, 8), 0.5)
    import numpy as np

    a = sk.to_bsr(w, (np.int64(4), torch.tensor(2)))
    assert a.blocksize == (4, 2) and torch.equal(a.to_dense(), w)
    assert torch.equal(sk.prune_blocks(w, [np.int32(2), 2], 0.0), w)


def test_pruning_argument_errors():
    with pytest.raises(ValueError, match="prune_n_m.*at least 1-D"):
        sk.prune_n_m(torch.tensor(3.0), 2, 4)
    with pytest.raises(TypeError, match="prune_magnitude.*torch.Tensor"):
        sk.prune_magnitude([[1.0, 2.0]], 0.5)
    with pytest.raises(TypeError, match="prune_n_m.*torch.Tensor"):
        sk.prune_n_m([[1.0, 2.0]], 2, 4)
    with pytest.raises(TypeError, match="prune_blocks.*torch.Tensor"):
        sk.prune_blocks([[1.0, 2.0]], (1, 1), 0.5)
    with pytest.raises(ValueError, match="prune_n_m"):
        sk.prune_n_m(random_dense(4, 8), True, 4)


def test_spmm_with_a_coo_tensor_says_which_layouts_work():
    """torch.ops.sparse.spmm(coo, x) raised the dispatcher's "Could not run 'sparse::spmm' with arguments from the
    'SparseCPU' backend" instead of naming the supported layouts."""
    w = random_dense(5, 6)
    with pytest.raises(NotImplementedError, match="layout Sparse.*CSR or BSR"):
        torch.ops.sparse.spmm(w.to_sparse(), random_dense(6, 2))


# ---- second-order gradients --------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", FORMATS)
def test_double_backward_through_sparse_linear(fmt):
    """The backward ops (<fmt>_spmm_t, <fmt>_sddmm) had no autograd formulas, so a second derivative through
    SparseLinear (a gradient penalty, a Hessian-vector product) silently dropped their terms, with only torch's
    "silently incorrect" warning."""
    torch.manual_seed(0)
    lin = nn.Linear(13, 9).double()
    layer = sk.nn.SparseLinear.from_dense(lin.float(), fmt, None if fmt == "sparse24" else 0.5,
                                          blocksize=(4, 8)).double()
    name = layer._values_name
    values = getattr(layer, name).detach().clone().requires_grad_()
    x = torch.randn(3, 13, dtype=torch.float64, requires_grad=True)

    def f(x, values):
        return torch.func.functional_call(layer, {name: values}, (x,))

    assert torch.autograd.gradgradcheck(f, (x, values))


@pytest.mark.parametrize("fmt", FORMATS)
def test_backward_ops_are_differentiable(fmt):
    torch.manual_seed(0)
    w, a = make(fmt, m=9, k=13, dtype=torch.float64)
    *index, values = (t.detach() for t in a._inner())
    values = values.clone().requires_grad_()
    b = torch.randn(9, 4, dtype=torch.float64, requires_grad=True)
    x = torch.randn(9, 5, dtype=torch.float64, requires_grad=True)
    y = torch.randn(13, 5, dtype=torch.float64, requires_grad=True)
    ops = torch.ops.sparse
    if fmt == "sparse24":
        spmm_t = lambda v, b: ops.sparse24_spmm_t(v, index[0], b, 13)  # noqa: E731
        sddmm = lambda x, y: ops.sparse24_sddmm(index[0], x, y)  # noqa: E731
    else:
        spmm_t = lambda v, b: getattr(ops, f"{fmt}_spmm_t")(*index, v, b, 13)  # noqa: E731
        sddmm = {"csr": lambda x, y: ops.csr_sddmm(*index, x, y),
                 "bsr": lambda x, y: ops.bsr_sddmm(*index, x, y, 4, 8),
                 "bitmap": lambda x, y: ops.bitmap_sddmm(*index, x, y, values.shape[0])}[fmt]
    assert torch.autograd.gradcheck(spmm_t, (values, b))
    assert torch.autograd.gradcheck(sddmm, (x, y))


def test_to_dense_of_differentiable_values():
    """csr_to_dense had no autograd formula, so sk.sddmm(a, x, y).to_dense() (values with a grad_fn) gave x.grad
    None with only a warning; bsr / 2:4 to_dense gather their gradient too, bitmap_to_dense and the pack ops refuse
    to backpropagate instead of dropping it."""
    w, a = make("csr", m=9, k=13, dtype=torch.float64)
    x = random_dense(9, 4, dtype=torch.float64).requires_grad_()
    y = random_dense(13, 4, dtype=torch.float64, seed=1).requires_grad_()
    assert torch.autograd.gradcheck(lambda x, y: sk.sddmm(a, x, y).to_dense(), (x, y))
    for fmt in ("bsr", "sparse24"):  # gathers too: every stored slot inside the matrix, padding slots 0
        _, b = make(fmt, m=9, k=13, dtype=torch.float64)
        *index, values = b._inner()
        values = values.detach().clone().requires_grad_()
        assert torch.autograd.gradcheck(lambda v: type(b)(b._mk, (*index, v)).to_dense(), (values,))
        g = random_dense(9, 13, dtype=torch.float64)
        type(b)(b._mk, (*index, values)).to_dense().backward(g)
        # the gradient of each slot is its element of g: a product with the slots' matrix reproduces it
        ones = type(b)(b._mk, (*index, torch.ones_like(values))).to_dense()
        assert torch.equal(type(b)(b._mk, (*index, values.grad)).to_dense(), g * (ones != 0))
    for fmt in ("bitmap",):
        _, b = make(fmt, m=9, k=13)
        *index, values = b._inner()
        values = values.detach().clone().requires_grad_()
        dense = type(b)(b._mk, (*index, values)).to_dense()
        with pytest.raises(NotImplementedError, match=f"{fmt}_to_dense.*no gradient"):
            dense.sum().backward()
    with pytest.raises(NotImplementedError, match="dense_to_csr.*no gradient"):
        torch.ops.sparse.dense_to_csr(random_dense(3, 4).requires_grad_())[2].sum().backward()


@pytest.mark.parametrize("fmt", FORMATS)
def test_bias_of_another_dtype_and_non_tensor_operands(fmt):
    """F.linear / torch.addmm with a format weight and a bias of another dtype silently promoted the output (torch
    raises for dense operands); a None / non-tensor operand raised AttributeError 'NoneType' has no 'dim'."""
    w, a = make(fmt, dtype=torch.float16)
    x = random_dense(3, w.shape[1]).half()
    with pytest.raises(TypeError, match="bias' has dtype torch.float32 but the product is torch.float16"):
        torch.nn.functional.linear(x, a, torch.ones(w.shape[0]))
    with pytest.raises(TypeError, match="'input.*has dtype torch.float32 but the product is torch.float16"):
        torch.addmm(torch.ones(w.shape[0], 3), a, x.t())
    assert torch.nn.functional.linear(x, a, torch.ones(w.shape[0]).half()).dtype == torch.float16
    with pytest.raises(TypeError, match="bias.*dtype"):
        sk.nn.SparseLinear(a, torch.ones(w.shape[0]))
    with pytest.raises(TypeError, match="NoneType"):
        torch.ops.sparse.spmm(a, None)


@pytest.mark.parametrize("fmt", FORMATS)
def test_repr_on_the_meta_device(fmt):
    """repr of a bitmap (and, with the in-matrix count, BSR) tensor on the meta device raised
    "Tensor.item() cannot be called on meta tensors"; it leaves out the data-dependent statistics there."""
    w, a = make(fmt)
    r = repr(a.to("meta"))
    assert type(a).__name__ in r and "device=meta" in r


def test_to_csr_of_torch_csr_with_strided_values():
    """A torch CSR tensor whose values are a strided view packed into a CSRTensor that every op refused
    ('values' must be contiguous, named by sparse::csr_spmm); to_csr makes the arrays contiguous (copying only then)."""
    w = sk.prune_magnitude(random_dense(6, 9), 0.5)
    t = w.to_sparse_csr()
    strided = torch.stack([t.values(), t.values()], 1)[:, 0]
    assert not strided.is_contiguous()
    tc = torch.sparse_csr_tensor(t.crow_indices(), t.col_indices(), strided, w.shape, check_invariants=True)
    a = sk.to_csr(tc)
    assert torch.equal(a.to_dense(), w)
    x = random_dense(9, 2)
    torch.testing.assert_close(a @ x, w @ x)
    assert sk.to_csr(t).values.data_ptr() == t.values().data_ptr()  # contiguous: still zero-copy


# ---- operands on different devices -------------------------------------------------------------------------------
def test_ops_refuse_operands_on_different_devices():
    """With one index array on the meta device and the rest on the CPU, the dispatcher ran the op's fake
    implementation, which returned an uninitialised CPU tensor (garbage, silently). Every fake checks that its
    tensors share one device now."""
    _, a = make("csr", m=70, k=80)
    x = random_dense(80, 3)
    with pytest.raises(RuntimeError, match="sparse::csr_spmm: .*same device.*'row_ptr' on meta"):
        torch.ops.sparse.csr_spmm(a.row_ptr.to("meta"), a.col_idx, a.values, x, 70)
    with pytest.raises(RuntimeError, match="same device"):
        sk.CSRTensor(a._mk, (a.row_ptr, a.col_idx.to("meta"), a.values)) @ x
    for fmt in ("bsr", "bitmap", "sparse24"):
        _, b = make(fmt, m=70, k=80)
        inner = list(b._inner())
        inner[0] = inner[0].to("meta")
        with pytest.raises(RuntimeError, match="same device"):
            type(b)(b._mk, tuple(inner)) @ x
        with pytest.raises(RuntimeError, match="same device"):
            type(b)(b._mk, tuple(inner)).to_dense()
    # all on meta is fine (shape propagation)
    assert (a.to("meta") @ x.to("meta")).device.type == "meta"


@pytest.mark.parametrize("fmt", FORMATS)
def test_matmul_with_a_batched_dense_operand(fmt):
    """`a @ x` with x of shape [..., k, n] (matmul's broadcasting) raised "does not support aten.expand"; the
    operator folds the batch now (torch.matmul itself expands the sparse operand, and says to use @)."""
    w, a = make(fmt)
    x = random_dense(2, 3, w.shape[1], 4)
    torch.testing.assert_close(a @ x, w @ x, rtol=1e-5, atol=1e-5)
    with pytest.raises(NotImplementedError, match="@ operator"):
        torch.matmul(a, x)
    y = random_dense(2, w.shape[0], 5)
    torch.testing.assert_close(a.t() @ y, w.t() @ y, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="cannot be multiplied"):
        a @ random_dense(2, w.shape[1] + 1, 4)


@pytest.mark.parametrize("fmt", ["csr", "bsr"])
def test_to_torch_and_to_scipy_of_a_transposed_tensor(fmt):
    """a.t().to_scipy() / a.t().to_torch() returned the stored matrix (shape (m, k)), not the transposed one."""
    w = sk.prune_magnitude(random_dense(8, 12), 0.5)
    a = sk.to_csr(w) if fmt == "csr" else sk.to_bsr(w, (4, 4))
    at = a.t()
    t = at.to_torch()
    assert t.shape == (12, 8) and torch.equal(t.to_dense(), w.t())
    s = at.to_scipy()
    assert s.shape == (12, 8) and (s.toarray() == w.t().numpy()).all()
    assert a.to_torch().layout == (torch.sparse_csr if fmt == "csr" else torch.sparse_bsr)


def test_sddmm_with_non_tensor_operands():
    """sk.sddmm(a, list, y) raised AttributeError "'list' object has no attribute 'dim'"."""
    a = make("csr")[1]
    with pytest.raises(TypeError, match="sddmm: 'x' must be a torch.Tensor, got list"):
        sk.sddmm(a, [[1.0]], random_dense(33, 2))
    with pytest.raises(TypeError, match="sddmm: 'y' must be a torch.Tensor, got NoneType"):
        sk.sddmm(a, random_dense(7, 2), None)


def test_bitmap_sddmm_checks_num_values_before_allocating():
    """bitmap_sddmm allocated its [num_values] output before checking num_values against group_offsets[G], so a
    wrong num_values of 2**40 raised "DefaultCPUAllocator: can't allocate memory" instead of naming it."""
    _, a = make("bitmap")
    x, y = random_dense(7, 3), random_dense(33, 3)
    with pytest.raises(ValueError, match="num_values.*must equal.*group_offsets"):
        torch.ops.sparse.bitmap_sddmm(a.group_offsets, a.bitmaps, x, y, 2**40)
    assert torch.ops.sparse.bitmap_sddmm(a.group_offsets, a.bitmaps, x, y, a.values.shape[0]).shape == a.values.shape


def test_cpu_isa_functions_with_a_non_string():
    """set_cpu_isa(None) raised the op schema's RuntimeError ("Expected a value of type 'str'")."""
    with pytest.raises(TypeError, match="set_cpu_isa: isa must be a str"):
        sk.set_cpu_isa(None)
    with pytest.raises(TypeError, match="cpu_isa_supported: isa must be a str"):
        sk.cpu_isa_supported(2)
    with pytest.raises(TypeError, match="use_cpu_isa: isa must be a str"):
        with sk.use_cpu_isa(None):
            pass
