"""sparse::csr_sddmm against the float64 dense reference (x @ y.T) sampled at the pattern."""

import pytest
import torch

from conftest import DTYPES, assert_matches_reference, random_dense, random_sparse

SHAPES = [  # (m, n, d): pattern m x n, x [m, d], y [n, d]
    (0, 5, 3), (5, 0, 3), (5, 4, 0), (1, 1, 1), (7, 33, 1), (33, 7, 16), (64, 1025, 7),
    (1025, 33, 1), (130, 70, 65), (9, 11, 1025),
]


def csr_pattern(dense, index_dtype=torch.int32):
    s = dense.to_sparse_csr()
    return s.crow_indices().to(index_dtype).clone(), s.col_indices().to(index_dtype).clone()


def entry_rows(row_ptr):
    return torch.repeat_interleave(torch.arange(row_ptr.numel() - 1), row_ptr.diff().long())


def reference(row_ptr, col_idx, x, y):
    """float64 (x @ y.T) at the entries of the pattern, in storage order."""
    return (x.double() @ y.double().T)[entry_rows(row_ptr), col_idx.long()]


def same_dtype_torch(row_ptr, col_idx, x, y):
    return (x @ y.T)[entry_rows(row_ptr), col_idx.long()]


def check(row_ptr, col_idx, x, y):
    out = torch.ops.sparse.csr_sddmm(row_ptr, col_idx, x, y)
    assert out.shape == (col_idx.numel(),)
    torch_same = same_dtype_torch(row_ptr, col_idx, x, y) if x.dtype != torch.float32 else None
    assert_matches_reference(out, reference(row_ptr, col_idx, x, y), x.dtype, torch_same)


@pytest.mark.parametrize("m,n,d", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_csr_sddmm_matches_reference(isa, m, n, d, dtype):
    row_ptr, col_idx = csr_pattern(random_sparse(m, n, 0.3, empty_rows=(0, 3)))
    x = random_dense(m, d, dtype=dtype, seed=1)
    y = random_dense(n, d, dtype=dtype, seed=2)
    check(row_ptr, col_idx, x, y)


@pytest.mark.parametrize("index_dtype", [torch.int32, torch.int64])
@pytest.mark.parametrize("density", [0.0, 1.0, 0.05])
def test_csr_sddmm_index_dtypes_and_density(isa, index_dtype, density):
    row_ptr, col_idx = csr_pattern(random_sparse(37, 45, density), index_dtype)
    if density == 1.0:
        assert col_idx.numel() == 37 * 45
    check(row_ptr, col_idx, random_dense(37, 40, seed=3), random_dense(45, 40, seed=4))


def test_csr_sddmm_power_law_rows(isa):
    # A few very long rows next to many short ones: the rows are split by cost.
    g = torch.Generator().manual_seed(0)
    lengths = (300.0 / torch.arange(1, 401, dtype=torch.float64)).long().clamp(max=300)
    row_ptr = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)])
    col_idx = torch.randint(0, 300, (int(row_ptr[-1]),), generator=g)
    check(row_ptr, col_idx, random_dense(400, 24, seed=5), random_dense(300, 24, seed=6))


@pytest.mark.parametrize("dtype", DTYPES)
def test_csr_sddmm_strided_operands(isa, dtype):
    row_ptr, col_idx = csr_pattern(random_sparse(20, 30, 0.3))
    x_wide = random_dense(20, 50, dtype=dtype, seed=7)
    x = x_wide[:, 3:40]  # row stride 50
    y = random_dense(37, 30, dtype=dtype, seed=8).T  # [30, 37], stride(1) != 1: copied
    assert x.stride() == (50, 1) and y.stride(1) != 1
    check(row_ptr, col_idx, x, y)
    y_bcast = random_dense(1, 37, dtype=dtype, seed=9).expand(30, 37)  # row stride 0
    check(row_ptr, col_idx, x, y_bcast)


def test_csr_sddmm_unsorted_and_duplicate_columns(isa):
    row_ptr = torch.tensor([0, 3, 3, 5], dtype=torch.int32)
    col_idx = torch.tensor([2, 0, 2, 1, 1], dtype=torch.int32)
    x, y = random_dense(3, 9, seed=10), random_dense(3, 9, seed=11)
    out = torch.ops.sparse.csr_sddmm(row_ptr, col_idx, x, y)
    assert out[0] == out[2] and out[3] == out[4]
    check(row_ptr, col_idx, x, y)


# many entries per row (vdot4 takes a row's entries four at a time), long d with a tail, wide y
@pytest.mark.parametrize("m,n,d", [(150, 3000, 33), (70, 300, 1000), (5, 5000, 40)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_csr_sddmm_long_rows(isa, m, n, d, dtype):
    row_ptr, col_idx = csr_pattern(random_sparse(m, n, 0.05, empty_rows=(0, 3)))
    check(row_ptr, col_idx, random_dense(m, d, dtype=dtype, seed=12), random_dense(n, d, dtype=dtype, seed=13))


def test_csr_sddmm_long_unsorted_rows(isa):
    # every entry exactly once, in its storage slot, whatever the order of the row
    g = torch.Generator().manual_seed(14)
    row_ptr, col_idx = csr_pattern(random_sparse(130, 4000, 0.05))
    for i in range(130):
        p0, p1 = int(row_ptr[i]), int(row_ptr[i + 1])
        col_idx[p0:p1] = col_idx[p0:p1][torch.randperm(p1 - p0, generator=g)]
    col_idx[5] = col_idx[6]  # a duplicate column
    check(row_ptr, col_idx, random_dense(130, 64, seed=15), random_dense(4000, 64, seed=16))


@pytest.mark.parametrize("index_dtype", [torch.int32, torch.int64])
def test_csr_sddmm_opcheck(index_dtype):
    row_ptr, col_idx = csr_pattern(random_sparse(9, 12, 0.4), index_dtype)
    torch.library.opcheck(torch.ops.sparse.csr_sddmm.default,
                          (row_ptr, col_idx, random_dense(9, 5), random_dense(12, 5, seed=1)))


class TestBadInput:
    def setup_method(self):
        self.row_ptr, self.col_idx = csr_pattern(random_sparse(6, 8, 0.5))
        self.x = random_dense(6, 4)
        self.y = random_dense(8, 4, seed=1)

    def call(self, row_ptr=None, col_idx=None, x=None, y=None):
        return torch.ops.sparse.csr_sddmm(
            self.row_ptr if row_ptr is None else row_ptr, self.col_idx if col_idx is None else col_idx,
            self.x if x is None else x, self.y if y is None else y)

    def test_row_ptr_not_monotone(self):
        row_ptr = self.row_ptr.clone()
        row_ptr[3], row_ptr[4] = int(row_ptr[4]) + 1, int(row_ptr[3])
        with pytest.raises(ValueError, match="csr_sddmm.*non-decreasing"):
            self.call(row_ptr=row_ptr)

    def test_row_ptr_start_not_zero(self):
        row_ptr = self.row_ptr.clone()
        row_ptr[0] = 1
        with pytest.raises(ValueError, match=r"row_ptr\[0\]"):
            self.call(row_ptr=row_ptr)

    def test_row_ptr_end_not_nnz(self):
        row_ptr = self.row_ptr.clone()
        row_ptr[-1] += 1
        with pytest.raises(ValueError, match=r"row_ptr\[m\]"):
            self.call(row_ptr=row_ptr)

    @pytest.mark.parametrize("bad", [-1, 8, 2**31 - 1])
    def test_col_idx_out_of_range(self, bad):
        col_idx = self.col_idx.clone()
        col_idx[2] = bad
        with pytest.raises(ValueError, match="out of range for 8 columns"):
            self.call(col_idx=col_idx)

    def test_m_mismatch(self):
        with pytest.raises(ValueError, match="'x' must have m = 6 rows"):
            self.call(x=random_dense(7, 4))

    def test_d_mismatch(self):
        with pytest.raises(ValueError, match="same d"):
            self.call(y=random_dense(8, 5))

    def test_dtype_mismatch(self):
        with pytest.raises(TypeError, match="same dtype"):
            self.call(y=self.y.half())

    def test_unsupported_dtype(self):
        with pytest.raises(TypeError, match="unsupported dtype"):
            self.call(x=self.x.long(), y=self.y.long())  # float64: test_float64.py

    def test_index_dtype_mismatch(self):
        with pytest.raises(TypeError, match="same dtype"):
            self.call(row_ptr=self.row_ptr.long())

    def test_float_indices(self):
        with pytest.raises(TypeError, match="index dtype"):
            self.call(row_ptr=self.row_ptr.float(), col_idx=self.col_idx.float())

    def test_x_wrong_rank(self):
        with pytest.raises(ValueError, match="'x' must be a 2-D"):
            self.call(x=self.x[0])

    def test_empty_row_ptr(self):
        with pytest.raises(ValueError, match="m \\+ 1 >= 1"):
            self.call(row_ptr=self.row_ptr[:0], x=self.x[:0])
