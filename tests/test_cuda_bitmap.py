"""CUDA-specific checks of sparse::bitmap_spmm (the per-dtype correctness tests
in test_bitmap.py also run on CUDA through the `device` fixture): device-side
validation with the CPU validator's messages, every kernel path the planner can
pick (tensor cores with 8/16/32/64 columns per block, the CUDA-core path for
float32 and for a non-finite b, K split over blocks), grid limits, strided b,
streams and graph capture. Everything here skips without a GPU."""

import re

import pytest
import torch

from conftest import DTYPES, HAS_CUDA, assert_matches_reference, random_dense, random_sparse

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device or sparsekernels built without CUDA"),
]

bitmap_spmm = torch.ops.sparse.bitmap_spmm


def pack(dense):
    return torch.ops.sparse.dense_to_bitmap(dense.cpu())


def on_cuda(parts):
    return [t.cuda() for t in parts]


def error_of(fn):
    """(exception type, first line of its message) raised by fn()."""
    with pytest.raises(Exception) as info:
        fn()
    return info.type, str(info.value).splitlines()[0]


def check(out, a, b, dtype):
    ref = a.double().cpu() @ b.double().cpu()
    same = None if dtype == torch.float32 else (a.to(dtype).cuda() @ b)
    assert_matches_reference(out, ref, dtype, same)


# ---- validation: same exception type and message as on the CPU ---------------

M, K = 70, 100  # 2 x 2 groups, both edges partial


def _corrupt(kind):
    a = random_sparse(M, K, 0.5)
    offsets, bitmaps, values = (t.clone() for t in pack(a))
    m = M
    if kind == "first_offset":
        offsets += 8
        values = torch.cat([values, torch.zeros(8)])
    elif kind == "last_offset":
        values = values[:-8].clone()
    elif kind == "count":
        offsets[2] += 8
    elif kind == "counts_twice":  # the first group must be reported
        offsets[3] += 8
        offsets[1] += 8
        offsets[2] += 8
    elif kind in ("offset_min", "offset_max"):
        offsets[1] = -2**63 if kind == "offset_min" else 2**63 - 1
    elif kind == "bit_row":
        bitmaps[3 * 64 + 0] |= 1 << (6 * 8)  # group 3, tile 0: row 70 >= m
    elif kind == "bit_col":
        bitmaps[3 * 64 + 12] |= 1 << 3  # group 3, tile 12: column 115 >= k
    elif kind == "bit_high":
        bitmaps[1 * 64 + 63] |= -2**63  # bit 63 of the last tile of group 1: row 15, column 127
    elif kind == "bit_and_count":  # bad bits come first, as on the CPU
        offsets[2] += 8
        bitmaps[3 * 64 + 0] |= 1 << (6 * 8)
    elif kind == "bitmaps_length":
        bitmaps = bitmaps[:-1].clone()
    elif kind == "m":
        m = 129
    else:
        raise AssertionError(kind)
    return offsets, bitmaps, values, m


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "kind,pattern",
    [
        ("first_offset", r"'group_offsets\[0\]' must be 0"),
        ("last_offset", r"'group_offsets\[G\]'"),
        ("count", r"group 1 .* set bits"),
        ("counts_twice", r"gives group 0 "),
        ("offset_min", r"gives group 0 "),
        ("offset_max", r"gives group 0 "),
        ("bit_row", r"element \(70, 64\), outside the 70 x 100 matrix"),
        ("bit_col", r"element \(64, 115\), outside"),
        ("bit_high", r"'bitmaps\[127\]'.*bit 63.*element \(63, 127\)"),
        ("bit_and_count", r"outside the 70 x 100 matrix"),
        ("bitmaps_length", r"'bitmaps' must have G \* 64 = 256"),
        ("m", r"'group_offsets' must have G \+ 1 = 7"),
    ],
)
def test_bad_bitmap_raises_like_cpu(kind, pattern, dtype):
    offsets, bitmaps, values, m = _corrupt(kind)
    values = values.to(dtype)
    b = random_dense(K, 3, dtype=dtype)
    cpu = error_of(lambda: bitmap_spmm(offsets, bitmaps, values, b, m))
    cuda = error_of(lambda: bitmap_spmm(*on_cuda([offsets, bitmaps, values, b]), m))
    assert cpu[0] is ValueError, cpu
    assert cuda == cpu
    assert re.search(pattern, cuda[1]), cuda[1]


def test_validation_of_many_groups_finds_the_first_error():
    # More groups than one validation grid covers (4096 blocks x 8 warps).
    m, k = 64 * 200, 64 * 200 + 5
    offsets = torch.zeros(200 * 201 + 1, dtype=torch.int64)
    bitmaps = torch.zeros(200 * 201 * 64, dtype=torch.int64)
    last = 200 * 201 - 1
    bitmaps[last * 64] = 1 << 5  # last group (columns 12800..12804): column 12805 >= k
    offsets[-1] = 8
    offsets[last + 1 :] = 8
    values = torch.zeros(8)
    b = random_dense(k, 1, device="cuda")
    with pytest.raises(ValueError, match=rf"'bitmaps\[{last * 64}\]'.*outside the {m} x {k} matrix"):
        bitmap_spmm(*on_cuda([offsets, bitmaps, values]), b, m)


def test_float64_is_rejected_on_cuda():
    offsets, bitmaps, values = on_cuda(pack(random_sparse(10, 10, 0.5, torch.float64)))
    with pytest.raises(TypeError, match="unsupported dtype"):
        bitmap_spmm(offsets, bitmaps, values, torch.randn(10, 2, dtype=torch.float64, device="cuda"), 10)


@pytest.mark.parametrize("on_cpu", ["offsets", "bitmaps", "values", "b"])
def test_mixed_devices_raise(on_cpu):
    offsets, bitmaps, values = pack(random_sparse(M, K, 0.5))
    args = {"offsets": offsets, "bitmaps": bitmaps, "values": values, "b": random_dense(K, 3)}
    args = {name: (t if name == on_cpu else t.cuda()) for name, t in args.items()}
    with pytest.raises(RuntimeError, match="same device"):
        bitmap_spmm(args["offsets"], args["bitmaps"], args["values"], args["b"], M)


# ---- every kernel path ---------------------------------------------------------

@pytest.mark.parametrize("n", [1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 129, 200])
@pytest.mark.parametrize("dtype", DTYPES)
def test_column_chunk_edges(n, dtype):
    # fp16/bf16: 8, 16, 32 or 64 columns per block (n <= 8, 16, 32, else 64); fp32: 8 or 16.
    m, k = 97, 131
    a = random_sparse(m, k, 0.5, dtype, empty_rows=(0, 64, 96))
    b = random_dense(k, n, dtype=dtype, device="cuda", seed=n)
    check(bitmap_spmm(*on_cuda(pack(a)), b, m), a, b, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,k,n", [(64, 4096, 1), (100, 8192, 8), (300, 2000, 16), (7, 70000, 3), (4096, 512, 1)])
def test_split_k_shapes(m, k, n, dtype):
    # Few group rows and columns, many groups along K: the planner splits K over
    # blocks (fp32 workspace, rounded once); the last shape has enough rows not to.
    a = random_sparse(m, k, 0.3, dtype)
    b = random_dense(k, n, dtype=dtype, device="cuda", seed=k)
    check(bitmap_spmm(*on_cuda(pack(a)), b, m), a, b, dtype)


@pytest.mark.parametrize("density", [0.0, 0.1, 0.5, 0.9, 1.0])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_density_extremes_on_tensor_cores(density, dtype):
    a = random_sparse(130, 260, density, dtype)
    b = random_dense(260, 24, dtype=dtype, device="cuda")
    check(bitmap_spmm(*on_cuda(pack(a)), b, 130), a, b, dtype)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("k", [300, 6000])
def test_non_finite_b_takes_the_exact_path(dtype, k):
    # A NaN / inf in b must reach only the rows that store its column, with K split (k = 6000) or not.
    m, n = 70, 5
    a = random_sparse(m, k, 0.3, dtype)
    a[:, 13] = 0
    a[[4, 69], 13] = 1.5
    b = random_dense(k, n, dtype=dtype, device="cuda")
    b[13, 2] = float("nan")
    b[13, 4] = float("inf")
    out = bitmap_spmm(*on_cuda(pack(a)), b, m).cpu()
    hit = torch.zeros(m, dtype=torch.bool)
    hit[[4, 69]] = True
    assert out[hit][:, 2].isnan().all() and not out[hit][:, 4].isfinite().any()
    assert out[~hit].isfinite().all(), "a non-finite b value reached a row that does not store its column"
    b_ok = b.clone()
    b_ok[13] = 0
    check(out[~hit].cuda(), a[~hit], b_ok, dtype)
    check(out[:, [0, 1, 3]].cuda(), a, b[:, [0, 1, 3]], dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_more_column_chunks_than_a_grid_dimension(dtype):
    # grid.y is capped at 65535 chunks; blocks loop over the rest.
    m, k = 3, 5
    n = 65535 * 64 + 100
    a = random_sparse(m, k, 0.8, dtype)
    b = random_dense(k, n, dtype=dtype, device="cuda")
    check(bitmap_spmm(*on_cuda(pack(a)), b, m), a, b, dtype)


@pytest.mark.parametrize("layout", ["row_stride", "broadcast_rows", "column_major"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_strided_b(layout, dtype):
    m, k, n = 70, 90, 37
    a = random_sparse(m, k, 0.4, dtype)
    if layout == "row_stride":
        b = random_dense(k, 100, dtype=dtype, device="cuda")[:, 3 : 3 + n]
    elif layout == "broadcast_rows":
        b = random_dense(1, n, dtype=dtype, device="cuda").expand(k, n)
    else:
        b = random_dense(n, k, dtype=dtype, device="cuda").T
    out = bitmap_spmm(*on_cuda(pack(a)), b, m)
    assert out.is_contiguous()
    check(out, a, b, dtype)


@pytest.mark.parametrize("m,k,n", [(0, 5, 3), (4, 0, 3), (4, 5, 0), (0, 0, 0)])
def test_empty_shapes(m, k, n):
    parts = on_cuda(pack(torch.zeros(m, k)))
    out = bitmap_spmm(*parts, torch.randn(k, n, device="cuda"), m)
    assert out.shape == (m, n) and out.device.type == "cuda"
    assert (out == 0).all()


# ---- streams, graphs, opcheck ---------------------------------------------------

def test_runs_on_the_current_stream():
    a = random_sparse(300, 6000, 0.2, torch.float16)  # split K: memset, kernel and rounding all on the side stream
    parts = on_cuda(pack(a))
    b = random_dense(6000, 5, dtype=torch.float16, device="cuda")
    bitmap_spmm(*parts, b, 300).cpu()
    torch.cuda.synchronize()
    side = torch.cuda.Stream()
    torch.cuda._sleep(2_000_000_000)
    with torch.cuda.stream(side):
        out = bitmap_spmm(*parts, b, 300)
        out_host = out.to("cpu", non_blocking=False)
    default_busy = not torch.cuda.default_stream().query()
    torch.cuda.synchronize()
    assert default_busy, "the sleep ended before the op finished: the test proves nothing"
    check(out_host.cuda(), a, b, torch.float16)


def test_cuda_graph_capture_raises_cleanly():
    parts = on_cuda(pack(random_sparse(20, 30, 0.3)))
    b = random_dense(30, 4, device="cuda")
    bitmap_spmm(*parts, b, 20)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with pytest.raises(RuntimeError, match="graph capture"):
        with torch.cuda.graph(graph):
            bitmap_spmm(*parts, b, 20)
    torch.cuda.synchronize()
    assert torch.isfinite(bitmap_spmm(*parts, b, 20)).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_opcheck_cuda(dtype):
    a = random_sparse(70, 130, 0.4, dtype)
    b = random_dense(130, 5, dtype=dtype, device="cuda")
    torch.library.opcheck(bitmap_spmm.default, (*on_cuda(pack(a)), b, 70))


# ---- model-facing paths -----------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_format_tensor_and_sparse_linear_on_cuda(dtype):
    from torch import nn

    import sparsekernels as sk
    from sparsekernels.nn import SparseLinear

    w = random_sparse(33, 70, 0.5, dtype)
    fmt = sk.to_bitmap(w).to("cuda")  # packed on the CPU, moved
    b = random_dense(70, 6, dtype=dtype, device="cuda")
    check(torch.ops.sparse.spmm(fmt, b), w, b, dtype)
    check(fmt @ b, w, b, dtype)

    lin = nn.Linear(70, 33).to(dtype)
    with torch.no_grad():
        lin.weight.copy_(w)
    sl = SparseLinear.from_dense(lin, "bitmap").to("cuda")  # sparsity=None: w's own zeros
    for shape in [(1, 70), (5, 70), (2, 3, 70)]:  # decode N = 1, a batch, 3-D
        x = random_dense(*shape, dtype=dtype, device="cuda", seed=len(shape))
        out = sl(x)
        assert out.shape == (*shape[:-1], 33) and out.device.type == "cuda"
        flat = x.reshape(-1, 70)
        ref = (flat.double().cpu() @ w.double().T + lin.bias.double().cpu()).reshape(*shape[:-1], 33)
        same = (flat @ w.cuda().T + lin.bias.cuda()).reshape(*shape[:-1], 33) if dtype != torch.float32 else None
        assert_matches_reference(out, ref, dtype, same)


def test_bitmap_spmm_has_a_cuda_kernel():
    assert torch._C._dispatch_has_kernel_for_dispatch_key("sparse::bitmap_spmm", "CUDA")
