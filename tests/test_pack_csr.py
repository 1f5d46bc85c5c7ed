"""sparse::dense_to_csr and sparse::csr_to_dense: layout, torch cross-check, round trips, bad input."""

import pytest
import torch

from conftest import DTYPES, random_dense, random_sparse

SHAPES = [(0, 0), (0, 5), (5, 0), (1, 1), (7, 33), (33, 7), (130, 70), (1025, 33)]


@pytest.mark.parametrize("m,k", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_dense_to_csr_matches_torch_and_round_trips(m, k, dtype):
    a = random_sparse(m, k, 0.3, dtype, empty_rows=(0, 3))
    row_ptr, col_idx, values = torch.ops.sparse.dense_to_csr(a)
    assert row_ptr.dtype == col_idx.dtype == torch.int32 and values.dtype == dtype
    for t in (row_ptr, col_idx, values):
        assert t.is_contiguous() and t._base is None
    ref = a.to_sparse_csr()
    assert torch.equal(row_ptr.long(), ref.crow_indices())
    assert torch.equal(col_idx.long(), ref.col_indices())
    assert torch.equal(values, ref.values())
    assert torch.equal(torch.ops.sparse.csr_to_dense(row_ptr, col_idx, values, m, k), a)


@pytest.mark.parametrize("density", [0.0, 1.0])
def test_dense_to_csr_empty_and_full(density):
    a = random_sparse(17, 23, density) if density == 0.0 else random_dense(17, 23, seed=4)
    row_ptr, col_idx, values = torch.ops.sparse.dense_to_csr(a)
    nnz = 0 if density == 0.0 else 17 * 23
    assert int(row_ptr[-1]) == col_idx.numel() == values.numel() == nnz
    assert torch.equal(torch.ops.sparse.csr_to_dense(row_ptr, col_idx, values, 17, 23), a)


def test_dense_to_csr_keeps_exactly_the_non_zeros():
    a = torch.tensor([[0.0, -0.0, 1e-40, float("nan")], [float("-inf"), 0.0, 0.0, -2.0]])
    row_ptr, col_idx, values = torch.ops.sparse.dense_to_csr(a)
    assert row_ptr.tolist() == [0, 2, 4]
    assert col_idx.tolist() == [2, 3, 0, 3]
    assert values[0].item() == torch.tensor(1e-40).item() != 0  # an fp32 subnormal is a non-zero
    assert values[1].isnan() and values[2].item() == float("-inf") and values[3].item() == -2.0


def test_dense_to_csr_docs_example():
    a = torch.tensor([[0, 5, 0, 7], [0, 0, 0, 0], [2, 0, 0, 0]], dtype=torch.float16)
    row_ptr, col_idx, values = torch.ops.sparse.dense_to_csr(a)
    assert row_ptr.tolist() == [0, 2, 2, 3] and col_idx.tolist() == [1, 3, 0] and values.tolist() == [5, 7, 2]


def test_dense_to_csr_non_contiguous_input():
    a = random_sparse(40, 25, 0.3).T  # [25, 40] transposed view
    parts = torch.ops.sparse.dense_to_csr(a)
    ref = a.contiguous().to_sparse_csr()
    assert torch.equal(parts[0].long(), ref.crow_indices()) and torch.equal(parts[1].long(), ref.col_indices())
    assert torch.equal(parts[2], ref.values())


@pytest.mark.parametrize("index_dtype", [torch.int32, torch.int64])
def test_csr_to_dense_unsorted_and_duplicates_summed(index_dtype):
    row_ptr = torch.tensor([0, 3, 3, 5], dtype=index_dtype)
    col_idx = torch.tensor([2, 0, 2, 1, 0], dtype=index_dtype)
    values = torch.tensor([1.0, 2.0, 3.0, -1.5, 0.25])
    out = torch.ops.sparse.csr_to_dense(row_ptr, col_idx, values, 3, 4)
    expected = torch.tensor([[2.0, 0, 4.0, 0], [0, 0, 0, 0], [0.25, -1.5, 0, 0]])
    assert torch.equal(out, expected)


def test_csr_to_dense_int64_round_trip():
    a = random_sparse(31, 29, 0.4, torch.bfloat16)
    row_ptr, col_idx, values = torch.ops.sparse.dense_to_csr(a)
    assert torch.equal(torch.ops.sparse.csr_to_dense(row_ptr.long(), col_idx.long(), values, 31, 29), a)


def test_csr_pack_opcheck():
    a = random_sparse(9, 12, 0.4)
    parts = torch.ops.sparse.dense_to_csr(a)
    torch.library.opcheck(torch.ops.sparse.dense_to_csr.default, (a,))
    torch.library.opcheck(torch.ops.sparse.csr_to_dense.default, (*parts, 9, 12))


class TestBadInput:
    def setup_method(self):
        self.a = random_sparse(6, 8, 0.5)
        self.parts = torch.ops.sparse.dense_to_csr(self.a)

    def to_dense(self, row_ptr=None, col_idx=None, values=None, m=6, k=8):
        rp, ci, v = self.parts
        return torch.ops.sparse.csr_to_dense(rp if row_ptr is None else row_ptr, ci if col_idx is None else col_idx,
                                             v if values is None else values, m, k)

    def test_row_ptr_not_monotone(self):
        row_ptr = self.parts[0].clone()
        row_ptr[3] = row_ptr[4] + 1
        with pytest.raises(ValueError, match="non-decreasing"):
            self.to_dense(row_ptr=row_ptr)

    def test_row_ptr_end_not_nnz(self):
        row_ptr = self.parts[0].clone()
        row_ptr[-1] += 1
        with pytest.raises(ValueError, match=r"row_ptr\[m\]"):
            self.to_dense(row_ptr=row_ptr)

    def test_row_ptr_wrong_length(self):
        with pytest.raises(ValueError, match=r"m \+ 1"):
            self.to_dense(m=5)

    @pytest.mark.parametrize("bad", [-1, 8])
    def test_col_idx_out_of_range(self, bad):
        col_idx = self.parts[1].clone()
        col_idx[2] = bad
        with pytest.raises(ValueError, match=r"col_idx\[2\]' = .* out of range"):
            self.to_dense(col_idx=col_idx)

    def test_col_idx_out_of_range_for_smaller_k(self):
        with pytest.raises(ValueError, match="out of range for 3 columns"):
            self.to_dense(k=3)

    def test_values_length_mismatch(self):
        with pytest.raises(ValueError, match="same length"):
            self.to_dense(values=self.parts[2][:-1])

    def test_index_dtype_mismatch(self):
        with pytest.raises(TypeError, match="same dtype"):
            self.to_dense(row_ptr=self.parts[0].long())

    def test_unsupported_values_dtype(self):
        with pytest.raises(TypeError, match="'values' has unsupported dtype"):
            self.to_dense(values=self.parts[2].long())  # float64: test_float64.py

    def test_pack_wrong_rank(self):
        with pytest.raises(ValueError, match="'dense' must be a 2-D tensor"):
            torch.ops.sparse.dense_to_csr(self.a.flatten())
        with pytest.raises(ValueError, match="'dense' must be a 2-D tensor"):
            torch.ops.sparse.dense_to_csr(self.a[None])

    @pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool])  # float64: test_float64.py
    def test_pack_wrong_dtype(self, dtype):
        with pytest.raises(TypeError, match=r"'dense' must have dtype float32, float16, bfloat16 or float64 \(CPU\)"):
            torch.ops.sparse.dense_to_csr(self.a.to(dtype))
