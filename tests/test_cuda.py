"""CUDA-specific checks of the CUDA ops (correctness on every dtype is in the
per-op tests, which run on the `device` fixture): device-side validation with
the CPU validator's messages, devices and streams, grid limits, strided operands,
and ops that have no CUDA kernel. Everything here skips without a GPU."""

import re

import pytest
import torch

import sparsekernels as sk
from conftest import HAS_CUDA, assert_matches_reference, random_dense, random_sparse

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device or sparsekernels built without CUDA"),
]

csr_spmm = torch.ops.sparse.csr_spmm


def csr_parts(dense, index_dtype=torch.int32):
    s = dense.cpu().to_sparse_csr()
    return s.crow_indices().to(index_dtype).clone(), s.col_indices().to(index_dtype).clone(), s.values().clone()


def to_cuda(*tensors):
    return [t.cuda() for t in tensors]


def error_of(fn):
    """(exception type, first line of its message) raised by fn()."""
    with pytest.raises(Exception) as info:
        fn()
    return info.type, str(info.value).splitlines()[0]


# ---- validation: same exception type and message as on the CPU ---------------

M, K, N = 6, 8, 3


def _swap_up(row_ptr, i):
    """Makes row_ptr[i] > row_ptr[i + 1] (and nothing else decreasing, for a strictly increasing row_ptr)."""
    lo, hi = int(row_ptr[i]), int(row_ptr[i + 1])
    row_ptr[i], row_ptr[i + 1] = hi + 1, lo


def _corrupt(kind, index_dtype):
    """CSR parts of a 6 x 8 matrix (every row non-empty) broken in one way, and m."""
    a = random_sparse(M, K, 0.6)
    a[:, 0] = 1.0  # every row has an entry, so row_ptr is strictly increasing
    row_ptr, col_idx, values = csr_parts(a, index_dtype)
    m = M
    if kind == "row_ptr[0]":
        row_ptr[0] = 1
    elif kind == "row_ptr[m]":
        row_ptr[-1] += 1
    elif kind == "decreasing":
        _swap_up(row_ptr, 3)
    elif kind == "decreasing_twice":  # the first position must be reported
        _swap_up(row_ptr, 4)
        _swap_up(row_ptr, 1)
    elif kind == "col_negative":
        col_idx[2] = -1
    elif kind == "col_k":
        col_idx[5] = K
    elif kind == "col_int_max":
        col_idx[1] = 2**31 - 1
    elif kind == "col_several":  # the first position must be reported
        col_idx[7] = K + 3
        col_idx[4] = -5
    elif kind == "length":
        m = M + 1
    elif kind == "values_length":
        values = values[:-1].clone()
    elif kind == "row_ptr_and_col":  # row_ptr errors come first, as on the CPU
        _swap_up(row_ptr, 3)
        col_idx[0] = K
    else:
        raise AssertionError(kind)
    return row_ptr, col_idx, values, m


@pytest.mark.parametrize("index_dtype", [torch.int32, torch.int64])
@pytest.mark.parametrize(
    "kind,pattern",
    [
        ("row_ptr[0]", r"'row_ptr\[0\]' must be 0"),
        ("row_ptr[m]", r"row_ptr\[m\]"),
        ("decreasing", r"non-decreasing.*row_ptr\[3\]"),
        ("decreasing_twice", r"non-decreasing.*row_ptr\[1\]"),
        ("col_negative", r"'col_idx\[2\]' = -1 is out of range"),
        ("col_k", r"'col_idx\[5\]' = 8 is out of range"),
        ("col_int_max", r"'col_idx\[1\]' = 2147483647 is out of range"),
        ("col_several", r"'col_idx\[4\]' = -5 is out of range"),
        ("length", r"m \+ 1"),
        ("values_length", r"same length"),
        ("row_ptr_and_col", r"non-decreasing"),
    ],
)
def test_bad_csr_raises_like_cpu(kind, pattern, index_dtype):
    row_ptr, col_idx, values, m = _corrupt(kind, index_dtype)
    b = random_dense(K, N)
    cpu = error_of(lambda: csr_spmm(row_ptr, col_idx, values, b, m))
    cuda = error_of(lambda: csr_spmm(*to_cuda(row_ptr, col_idx, values, b), m))
    assert cpu[0] is ValueError, cpu
    assert cuda == cpu
    assert re.search(pattern, cuda[1]), cuda[1]


def test_bad_col_int64_beyond_int32():
    row_ptr, col_idx, values = csr_parts(random_sparse(M, K, 0.6), torch.int64)
    col_idx[3] = 2**40
    b = random_dense(K, N, device="cuda")
    with pytest.raises(ValueError, match=r"'col_idx\[3\]' = 1099511627776 is out of range for 8 columns"):
        csr_spmm(*to_cuda(row_ptr, col_idx, values), b, M)


def test_validation_of_large_inputs_finds_the_first_error():
    # More rows and entries than one validation grid covers (4096 blocks x 256).
    m, k = 70_000, 33
    row_ptr, col_idx, values = csr_parts(random_sparse(m, k, 0.5))
    nnz = col_idx.numel()
    assert nnz > 4096 * 256
    b = random_dense(k, 2, device="cuda")
    bad_col = col_idx.clone()
    bad_col[nnz - 1] = k
    with pytest.raises(ValueError, match=rf"'col_idx\[{nnz - 1}\]' = {k} is out of range"):
        csr_spmm(*to_cuda(row_ptr, bad_col, values), b, m)
    bad_rows = row_ptr.clone()
    bad_rows[m - 1] = bad_rows[m] + 1
    with pytest.raises(ValueError, match=rf"non-decreasing, but row_ptr\[{m - 1}\]"):
        csr_spmm(*to_cuda(bad_rows, col_idx, values), b, m)


def test_zero_columns_with_entries_is_out_of_range():
    row_ptr = torch.tensor([0, 1], dtype=torch.int32, device="cuda")
    col_idx = torch.tensor([0], dtype=torch.int32, device="cuda")
    values = torch.ones(1, device="cuda")
    with pytest.raises(ValueError, match="out of range for 0 columns"):
        csr_spmm(row_ptr, col_idx, values, torch.empty(0, 4, device="cuda"), 1)


@pytest.mark.parametrize("m,k,n", [(0, 5, 3), (4, 0, 3), (4, 5, 0), (0, 0, 0)])
def test_empty_shapes(m, k, n):
    row_ptr = torch.zeros(m + 1, dtype=torch.int32, device="cuda")
    col_idx = torch.empty(0, dtype=torch.int32, device="cuda")
    values = torch.empty(0, device="cuda")
    out = csr_spmm(row_ptr, col_idx, values, torch.randn(k, n, device="cuda"), m)
    assert out.shape == (m, n) and out.device.type == "cuda"
    assert (out == 0).all()


# ---- devices and streams -------------------------------------------------------

@pytest.mark.parametrize("on_cpu", ["row_ptr", "col_idx", "values", "b"])
def test_mixed_devices_raise(on_cpu):
    row_ptr, col_idx, values = csr_parts(random_sparse(M, K, 0.5))
    args = {"row_ptr": row_ptr, "col_idx": col_idx, "values": values, "b": random_dense(K, N)}
    args = {name: (t if name == on_cpu else t.cuda()) for name, t in args.items()}
    with pytest.raises(RuntimeError, match="same device"):
        csr_spmm(args["row_ptr"], args["col_idx"], args["values"], args["b"], M)


def test_runs_on_the_current_stream():
    # The default stream is kept busy; the op is called on a side stream. If any
    # of its kernels went to the default stream, the output read back on the side
    # stream would still be the NaN poison (or validation would wait for the sleep).
    a = random_sparse(300, 200, 0.2)
    parts = to_cuda(*csr_parts(a))
    b = random_dense(200, 70, device="cuda")
    csr_spmm(*parts, b, 300).cpu()  # loads the kernels first: lazy loading can wait for the device
    torch.cuda.synchronize()
    side = torch.cuda.Stream()
    torch.cuda._sleep(2_000_000_000)  # about a second of GPU time on the default stream
    with torch.cuda.stream(side):
        out = csr_spmm(*parts, b, 300)
        out_host = out.to("cpu", non_blocking=False)
    default_busy = not torch.cuda.default_stream().query()
    torch.cuda.synchronize()
    assert default_busy, "the sleep ended before the op finished: the test proves nothing"
    assert_matches_reference(out_host, a.double() @ b.double().cpu(), torch.float32)


def test_cuda_graph_capture_raises_cleanly():
    parts = to_cuda(*csr_parts(random_sparse(20, 30, 0.3)))
    b = random_dense(30, 4, device="cuda")
    csr_spmm(*parts, b, 20)  # warm-up outside capture
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with pytest.raises(RuntimeError, match="graph capture"):
        with torch.cuda.graph(graph):
            csr_spmm(*parts, b, 20)
    torch.cuda.synchronize()
    out = csr_spmm(*parts, b, 20)  # the device is still usable
    assert torch.isfinite(out).all()


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two GPUs")
def test_second_device():
    a = random_sparse(40, 50, 0.3)
    parts = [t.to("cuda:1") for t in csr_parts(a)]
    b = random_dense(50, 9, device="cuda:1")
    with torch.cuda.device(0):
        out = csr_spmm(*parts, b, 40)
    assert out.device == torch.device("cuda:1")
    assert_matches_reference(out, a.double() @ b.double().cpu(), torch.float32)


# ---- shapes: grid limits, column tiles, strides ---------------------------------

@pytest.mark.parametrize("n", [1, 5, 40, 130])
def test_more_rows_than_a_grid_dimension(n):
    m, k = 70_000, 33  # m > 65535 and more work items than one grid covers
    a = random_sparse(m, k, 0.1, empty_rows=(0, 65535, 65536, m - 1))
    b = random_dense(k, n, device="cuda")
    out = csr_spmm(*to_cuda(*csr_parts(a)), b, m)
    assert_matches_reference(out, a.double() @ b.double().cpu(), torch.float32)


@pytest.mark.parametrize("n", [1, 2, 31, 32, 33, 63, 64, 65, 127, 128, 129, 257])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("index_dtype", [torch.int32, torch.int64])
def test_column_tile_edges(n, dtype, index_dtype):
    m, k = 45, 70  # rows with more than 32 entries cross a broadcast chunk
    a = random_sparse(m, k, 0.7, dtype, empty_rows=(2, 44))
    b = random_dense(k, n, dtype=dtype, device="cuda", seed=n)
    out = csr_spmm(*to_cuda(*csr_parts(a, index_dtype)), b, m)
    same_dtype = None if dtype == torch.float32 else (a.cuda() @ b)
    assert_matches_reference(out, a.double() @ b.double().cpu(), dtype, same_dtype)


@pytest.mark.parametrize("layout", ["row_stride", "broadcast_rows", "column_major"])
def test_strided_b(layout):
    m, k, n = 30, 20, 37
    a = random_sparse(m, k, 0.4)
    if layout == "row_stride":  # rows of n contiguous elements, 100 apart, at an offset
        b = random_dense(k, 100, device="cuda")[:, 3 : 3 + n]
        assert b.stride() == (100, 1)
    elif layout == "broadcast_rows":  # stride(0) == 0
        b = random_dense(1, n, device="cuda").expand(k, n)
        assert b.stride() == (0, 1)
    else:
        b = random_dense(n, k, device="cuda").T
    out = csr_spmm(*to_cuda(*csr_parts(a)), b, m)
    assert out.is_contiguous()
    assert_matches_reference(out, a.double() @ b.double().cpu(), torch.float32)


def test_duplicate_and_unsorted_columns_are_summed():
    row_ptr = torch.tensor([0, 3, 3], dtype=torch.int32, device="cuda")
    col_idx = torch.tensor([2, 0, 2], dtype=torch.int32, device="cuda")
    values = torch.tensor([1.0, 2.0, 3.0], device="cuda")
    b = random_dense(3, 40, device="cuda")
    out = csr_spmm(row_ptr, col_idx, values, b, 2)
    expected = torch.zeros(2, 40, dtype=torch.float64)
    expected[0] = 2.0 * b[0].double().cpu() + 4.0 * b[2].double().cpu()
    assert_matches_reference(out, expected, torch.float32)


def test_opcheck_cuda():
    a = random_sparse(9, 12, 0.4)
    b = random_dense(12, 5, device="cuda")
    torch.library.opcheck(torch.ops.sparse.csr_spmm.default, (*to_cuda(*csr_parts(a)), b, 9))


# ---- dispatch ------------------------------------------------------------------

def test_model_facing_spmm_runs_the_cuda_kernel():
    dense = random_sparse(50, 40, 0.3)
    b = random_dense(40, 6, device="cuda")
    ref = dense.double() @ b.double().cpu()
    native = dense.to_sparse_csr().to("cuda")  # torch CSR on CUDA: sparse::spmm -> sparse::csr_spmm
    assert_matches_reference(torch.ops.sparse.spmm(native, b), ref, torch.float32)
    fmt = sk.to_csr(dense.to_sparse_csr()).to("cuda")  # format tensor moved to CUDA
    assert_matches_reference(torch.ops.sparse.spmm(fmt, b), ref, torch.float32)


def test_csr_spmm_has_a_cuda_kernel():
    assert torch._C._dispatch_has_kernel_for_dispatch_key("sparse::csr_spmm", "CUDA")


def _kernel_op_args():
    """Well-formed CUDA arguments (for 64 x 64, n = 4) of SpMM kernel ops."""
    dev = "cuda"
    b = torch.randn(64, 4, device=dev)
    return {
        "bitmap_spmm": (torch.zeros(2, dtype=torch.int64, device=dev), torch.zeros(64, dtype=torch.int64, device=dev),
                        torch.empty(0, device=dev), b, 64),
        "bsr_spmm": (torch.zeros(5, dtype=torch.int32, device=dev), torch.empty(0, dtype=torch.int32, device=dev),
                     torch.empty(0, 16, 16, device=dev), b, 64),
        "sparse24_spmm": (torch.zeros(64, 32, device=dev), torch.zeros(64, 4, dtype=torch.int16, device=dev), b),
    }


@pytest.mark.parametrize("name", ["bitmap_spmm", "bsr_spmm", "sparse24_spmm"])
def test_ops_without_cuda_kernel_raise_not_implemented(name):
    qualified = f"sparse::{name}"
    if torch._C._dispatch_has_computed_kernel_for_dispatch_key(qualified, "CUDA"):
        pytest.skip(f"{qualified} has a CUDA kernel now")
    with pytest.raises(NotImplementedError, match="CUDA"):
        getattr(torch.ops.sparse, name)(*_kernel_op_args()[name])
