"""The CPU SpMM glue splits rows into chunks that threads take dynamically (csrc/ops/cpu/spmm_common.h,
parallel_first_bad). The result must not depend on the thread count or on which thread ran which chunk, and a bad
metadata entry in any chunk, the last one included, must raise the validator's message."""

import pytest
import torch

from conftest import random_dense, random_sparse


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def _spmm_parts(fmt, a):
    if fmt == "csr":
        c = a.to_sparse_csr()
        return (c.crow_indices(), c.col_indices(), c.values()), torch.ops.sparse.csr_spmm
    if fmt == "bitmap":
        return torch.ops.sparse.dense_to_bitmap(a), torch.ops.sparse.bitmap_spmm
    values, meta = torch.ops.sparse.dense_to_sparse24(a)
    return (values, meta), lambda values, meta, b, m: torch.ops.sparse.sparse24_spmm(values, meta, b)


def _pruned(fmt, m, k):
    a = random_sparse(m, k, 0.5)
    if fmt == "sparse24":  # keep 2 of every 4
        a = random_dense(m, k, seed=5)
        keep = torch.zeros(m, k // 4, 4, dtype=torch.bool)
        keep[:, :, 1] = keep[:, :, 3] = True
        a = a * keep.view(m, k)
    return a


@pytest.mark.parametrize("fmt", ["csr", "bitmap", "sparse24"])
@pytest.mark.parametrize("n", [1, 4, 16])
def test_result_independent_of_threads(two_threads, fmt, n):
    """Many chunks (4096 rows): bit-identical results with 1 and 2 threads, equal to the reference."""
    m, k = 4096, 256
    a = _pruned(fmt, m, k)
    parts, op = _spmm_parts(fmt, a)
    b = random_dense(k, n, seed=n)
    out2 = op(*parts, b, m)
    torch.set_num_threads(1)
    out1 = op(*parts, b, m)
    assert torch.equal(out1, out2)
    ref = a.double() @ b.double()
    assert ((out2.double() - ref).abs().max() / ref.abs().max()).item() < 1e-5


def test_bad_bitmap_group_in_the_last_chunk_raises(two_threads):
    m, k = 4096, 256
    a = random_sparse(m, k, 0.5)
    offsets, bitmaps, values = torch.ops.sparse.dense_to_bitmap(a)
    offsets = offsets.clone()
    g = offsets.numel() - 3  # a group of the last group row
    offsets[g] += 8  # group g - 1 claims 8 more values, group g 8 fewer
    with pytest.raises(ValueError, match=rf"group {g - 1} .* set bits"):
        torch.ops.sparse.bitmap_spmm(offsets, bitmaps, values, random_dense(k, 4), m)


@pytest.mark.parametrize("n", [1, 4, 40])
def test_bad_csr_column_in_the_last_chunk_raises(two_threads, n):
    m, k = 4096, 256
    c = random_sparse(m, k, 0.5).to_sparse_csr()
    col_idx = c.col_indices().clone()
    col_idx[-3] = k  # a column of the last row
    with pytest.raises(ValueError, match="out of range"):
        torch.ops.sparse.csr_spmm(c.crow_indices(), col_idx, c.values(), random_dense(k, n), m)
