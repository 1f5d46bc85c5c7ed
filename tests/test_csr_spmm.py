"""sparse::csr_spmm against the float64 dense reference."""

import pytest
import torch

from conftest import DTYPES, assert_matches_reference, random_dense, random_sparse

SHAPES = [  # (m, k, n)
    (0, 5, 3), (5, 0, 3), (5, 4, 0), (1, 1, 1), (7, 33, 1), (33, 7, 16), (64, 1025, 7),
    (1025, 33, 1), (130, 70, 65), (40, 50, 200),
]


def csr_parts(dense, index_dtype=torch.int32):
    s = dense.to_sparse_csr()
    return s.crow_indices().to(index_dtype).clone(), s.col_indices().to(index_dtype).clone(), s.values().clone()


@pytest.mark.parametrize("m,k,n", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_csr_spmm_matches_reference(isa, device, m, k, n, dtype):
    a = random_sparse(m, k, 0.3, dtype, device, empty_rows=(0, 3))
    b = random_dense(k, n, dtype=dtype, device=device, seed=1)
    row_ptr, col_idx, values = csr_parts(a.cpu())
    out = torch.ops.sparse.csr_spmm(row_ptr.to(device), col_idx.to(device), values.to(device), b, m)
    assert_matches_reference(out, a.double().cpu() @ b.double().cpu(), dtype, a @ b if dtype != torch.float32 else None)


@pytest.mark.parametrize("index_dtype", [torch.int32, torch.int64])
@pytest.mark.parametrize("density", [0.0, 1.0, 0.05])
def test_csr_spmm_index_dtypes_and_density(isa, device, index_dtype, density):
    a = random_sparse(37, 45, density, device=device)
    b = random_dense(45, 19, device=device)
    parts = [t.to(device) for t in csr_parts(a.cpu(), index_dtype)]
    out = torch.ops.sparse.csr_spmm(*parts, b, 37)
    assert_matches_reference(out, a.double().cpu() @ b.double().cpu(), torch.float32)


def test_csr_spmm_strided_b(isa):
    a = random_sparse(20, 30, 0.3)
    bt = random_dense(17, 30).T  # [30, 17] with column-major strides
    out = torch.ops.sparse.csr_spmm(*csr_parts(a), bt, 20)
    assert_matches_reference(out, a.double() @ bt.double(), torch.float32)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [511, 512, 1100])
def test_csr_spmm_wide_n_packed_column_blocks(isa, dtype, n):
    """b's rows >= 2 KiB apart (fp32 from n = 512, 16-bit from 1024): each column block of b is copied to a
    contiguous buffer first, the last block partial; just below, b is read in place."""
    a = random_sparse(70, 300, 0.2, dtype, empty_rows=(0, 3))
    b = random_dense(300, n, dtype=dtype, seed=2)
    out = torch.ops.sparse.csr_spmm(*csr_parts(a), b, 70)
    assert_matches_reference(out, a.double() @ b.double(), dtype, a @ b if dtype != torch.float32 else None)


def test_csr_spmm_narrow_b_with_wide_row_stride(isa):
    """A column slice of a wide b (40 columns, rows 2800 B apart): packed, one partial column block."""
    a = random_sparse(50, 300, 0.2, empty_rows=(1,))
    b = random_dense(300, 700, seed=3)[:, 5:45]
    out = torch.ops.sparse.csr_spmm(*csr_parts(a), b, 50)
    assert_matches_reference(out, a.double() @ b.double(), torch.float32)


def test_csr_spmm_unsorted_and_duplicate_columns_are_summed(isa):
    row_ptr = torch.tensor([0, 3, 3], dtype=torch.int32)
    col_idx = torch.tensor([2, 0, 2], dtype=torch.int32)
    values = torch.tensor([1.0, 2.0, 3.0])
    b = random_dense(3, 5)
    out = torch.ops.sparse.csr_spmm(row_ptr, col_idx, values, b, 2)
    expected = torch.zeros(2, 5, dtype=torch.float64)
    expected[0] = 2.0 * b[0].double() + 4.0 * b[2].double()
    assert_matches_reference(out, expected, torch.float32)


@pytest.mark.parametrize("n", range(1, 18))
@pytest.mark.parametrize("dtype", DTYPES)
def test_csr_spmm_every_small_n(isa, dtype, n):
    """Every n up to 17 keeps its columns in registers with a partial last vector of n % kW lanes; for fp16 /
    bf16 on AVX2 that partial vector is assembled from 1-7 16-bit values (simd.h, load_u16_partial)."""
    a = random_sparse(9, 20, 0.4, dtype=dtype)
    row_ptr, col_idx, values = csr_parts(a)
    b = random_dense(20, n, dtype=dtype, seed=n)
    out = torch.ops.sparse.csr_spmm(row_ptr, col_idx, values, b, 9)
    assert_matches_reference(out, a.double() @ b.double(), dtype, None if dtype == torch.float32 else a @ b)


@pytest.mark.parametrize("n", [24, 31, 32, 40, 48, 60, 100, 129])
@pytest.mark.parametrize("dtype", DTYPES)
def test_csr_spmm_wide_n_last_columns(isa, dtype, n):
    """n > 16: panels of 4 vectors, then the last 1-4 vectors (the last one partial or full) in one pass; these
    n cover each of those counts with AVX2's 8 and AVX-512's 16 lanes, and a partial block of 8 vectors."""
    a = random_sparse(11, 30, 0.4, dtype=dtype)
    row_ptr, col_idx, values = csr_parts(a)
    b = random_dense(30, n, dtype=dtype, seed=n)
    out = torch.ops.sparse.csr_spmm(row_ptr, col_idx, values, b, 11)
    assert_matches_reference(out, a.double() @ b.double(), dtype, None if dtype == torch.float32 else a @ b)


class TestBadInput:
    def setup_method(self):
        self.a = random_sparse(6, 8, 0.5)
        self.parts = csr_parts(self.a)
        self.b = random_dense(8, 3)

    def test_row_ptr_not_monotone(self):
        row_ptr = self.parts[0].clone()
        hi, lo = int(row_ptr[4]), int(row_ptr[3])
        row_ptr[3], row_ptr[4] = hi + 1, lo
        with pytest.raises(ValueError, match="non-decreasing"):
            torch.ops.sparse.csr_spmm(row_ptr, self.parts[1], self.parts[2], self.b, 6)

    def test_row_ptr_end_not_nnz(self):
        row_ptr = self.parts[0].clone()
        row_ptr[-1] += 1
        with pytest.raises(ValueError, match=r"row_ptr\[m\]"):
            torch.ops.sparse.csr_spmm(row_ptr, self.parts[1], self.parts[2], self.b, 6)

    def test_row_ptr_wrong_length(self):
        with pytest.raises(ValueError, match="m \\+ 1"):
            torch.ops.sparse.csr_spmm(*self.parts, self.b, 7)

    @pytest.mark.parametrize("bad", [-1, 8, 2**31 - 1])
    def test_col_idx_out_of_range(self, bad):
        col_idx = self.parts[1].clone()
        col_idx[2] = bad
        with pytest.raises(ValueError, match="out of range"):
            torch.ops.sparse.csr_spmm(self.parts[0], col_idx, self.parts[2], self.b, 6)

    def test_dtype_mismatch(self):
        with pytest.raises(TypeError, match="same dtype"):
            torch.ops.sparse.csr_spmm(*self.parts, self.b.double(), 6)

    def test_unsupported_dtype(self):
        with pytest.raises(TypeError, match="unsupported dtype"):
            torch.ops.sparse.csr_spmm(self.parts[0], self.parts[1], self.parts[2].long(), self.b.long(), 6)

    def test_index_dtype_mismatch(self):
        with pytest.raises(TypeError, match="same dtype"):
            torch.ops.sparse.csr_spmm(self.parts[0].long(), *self.parts[1:], self.b, 6)

    def test_float_indices(self):
        with pytest.raises(TypeError):
            torch.ops.sparse.csr_spmm(self.parts[0].float(), self.parts[1].float(), self.parts[2], self.b, 6)

    def test_b_wrong_rank(self):
        with pytest.raises(ValueError, match="2-D"):
            torch.ops.sparse.csr_spmm(*self.parts, self.b[0], 6)

    def test_values_length_mismatch(self):
        with pytest.raises(ValueError, match="same length"):
            torch.ops.sparse.csr_spmm(self.parts[0], self.parts[1], self.parts[2][:-1], self.b, 6)


@pytest.mark.parametrize("index_dtype", [torch.int32, torch.int64])
@pytest.mark.parametrize(
    "n,strided", [(1, False), (1, True), (3, False), (8, False), (16, False), (40, False), (100, False), (136, True)]
)
@pytest.mark.parametrize("pos", [0, 35, 64, 130, 149])
@pytest.mark.parametrize("bad", [-1, 160, 2**31 - 1])
def test_col_idx_out_of_range_in_each_part_of_a_row(isa, index_dtype, n, strided, pos, bad):
    """Row 3 holds 150 entries: with n = 1, a contiguous b and int32 indices its columns are checked inside the
    gathers (4 vectors at a time, then single vectors, then a scalar tail); 2 <= n <= 16 checks them in chunks of
    64 just before their products (a bad column in the first, a middle or the last partial chunk); wider n does the
    same in the row's first pass of each column block (a block of 8 vectors, panels of 4, or the tail). A bad
    column anywhere raises, and b is never read outside."""
    k = 160
    a = random_sparse(5, k, 0.5)
    a[3] = 0.0
    a[3, torch.randperm(k, generator=torch.Generator().manual_seed(pos))[:150]] = 1.5
    row_ptr, col_idx, values = csr_parts(a, index_dtype)
    col_idx[int(row_ptr[3]) + pos] = bad
    b = random_dense(k, 2 * n)[:, ::2] if strided else random_dense(k, n)
    with pytest.raises(ValueError, match="out of range"):
        torch.ops.sparse.csr_spmm(row_ptr, col_idx, values, b, 5)


def test_csr_spmm_opcheck():
    a = random_sparse(9, 12, 0.4)
    b = random_dense(12, 5)
    torch.library.opcheck(torch.ops.sparse.csr_spmm.default, (*csr_parts(a), b, 9))
