"""sparse::csr_spgemm: C = A @ B against the float64 dense reference, the exact structural pattern
(union of the products' positions, sorted columns) and scipy.sparse's product."""

import numpy as np
import pytest
import scipy.sparse
import torch

from conftest import DTYPES, assert_matches_reference, random_sparse

INDEX_DTYPES = [torch.int32, torch.int64]
SHAPES = [  # (m, k, n)
    (0, 5, 3), (5, 0, 3), (5, 4, 0), (1, 1, 1), (7, 33, 1), (33, 7, 16), (64, 1025, 7),
    (1025, 33, 1), (130, 70, 65), (33, 40, 1025),
]


@pytest.fixture(params=["dense", "hash"])
def accumulator(request, monkeypatch):
    """Runs the test with each accumulator of the kernel (the glue's automatic choice
    depends on n and the work per thread; this forces each one on every shape)."""
    monkeypatch.setenv("SPARSEKERNELS_SPGEMM_ACCUMULATOR", request.param)
    return request.param


def csr_parts(dense, index_dtype=torch.int32):
    s = dense.to_sparse_csr()
    return s.crow_indices().to(index_dtype).clone(), s.col_indices().to(index_dtype).clone(), s.values().clone()


def entry_rows(row_ptr):
    return torch.repeat_interleave(torch.arange(row_ptr.numel() - 1), row_ptr.diff().long())


def to_dense64(row_ptr, col_idx, values, cols):
    """Dense float64 matrix of a CSR triple, duplicates summed."""
    out = torch.zeros(row_ptr.numel() - 1, cols, dtype=torch.float64)
    out.index_put_((entry_rows(row_ptr), col_idx.long()), values.double(), accumulate=True)
    return out


def pattern(row_ptr, col_idx, cols):
    """Dense 0/1 float64 matrix of the stored positions (explicit zeros included)."""
    return to_dense64(row_ptr, col_idx, torch.ones(col_idx.numel()), cols).clamp(max=1)


def spgemm(a, b, n):
    return torch.ops.sparse.csr_spgemm(*a, *b, n)


def check_structure(c, a, b, k, n):
    """C's pattern is exactly the positions some product reaches, columns sorted, right dtypes."""
    row_ptr, col_idx, values = c
    m = a[0].numel() - 1
    wide = torch.int64 in (a[0].dtype, b[0].dtype)
    assert row_ptr.dtype == col_idx.dtype == (torch.int64 if wide else torch.int32)
    assert values.dtype == a[2].dtype
    assert row_ptr.shape == (m + 1,) and col_idx.shape == values.shape == (int(row_ptr[-1]),)
    assert int(row_ptr[0]) == 0 and bool((row_ptr.diff() >= 0).all())
    rows = entry_rows(row_ptr)
    same_row = rows[1:] == rows[:-1]
    assert bool((col_idx[1:] > col_idx[:-1])[same_row].all()), "columns not strictly increasing within a row"
    expected = (pattern(*a[:2], k) @ pattern(*b[:2], n)) > 0
    assert torch.equal(pattern(row_ptr, col_idx, n) > 0, expected)


def check(a, b, k, n):
    c = spgemm(a, b, n)
    check_structure(c, a, b, k, n)
    a64, b64 = to_dense64(*a, k), to_dense64(*b, n)
    dtype = a[2].dtype
    torch_same = (a64.to(dtype) @ b64.to(dtype)) if dtype != torch.float32 else None
    # Exact in dtype: C holds distinct positions, so the dense form just places its values.
    assert_matches_reference(to_dense64(*c, n).to(dtype), a64 @ b64, dtype, torch_same)
    return c


@pytest.mark.parametrize("m,k,n", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_csr_spgemm_matches_reference(isa, accumulator, m, k, n, dtype):
    a = csr_parts(random_sparse(m, k, 0.2, dtype, empty_rows=(0, 3)))
    b = csr_parts(random_sparse(k, n, 0.2, dtype, empty_rows=(1,), generator=torch.Generator().manual_seed(k + n)))
    check(a, b, k, n)


@pytest.mark.parametrize("a_index", INDEX_DTYPES)
@pytest.mark.parametrize("b_index", INDEX_DTYPES)
@pytest.mark.parametrize("density", [0.0, 1.0, 0.05])
def test_csr_spgemm_index_dtypes_and_density(isa, accumulator, a_index, b_index, density):
    a = csr_parts(random_sparse(37, 45, density), a_index)
    b = csr_parts(random_sparse(45, 29, density, generator=torch.Generator().manual_seed(1)), b_index)
    c = check(a, b, 45, 29)
    if density == 0.0:
        assert c[1].numel() == 0 and c[0].tolist() == [0] * 38
    elif density == 1.0:
        assert c[1].numel() == 37 * 29


def power_law_graph(nodes, avg_degree, seed):
    """Random directed graph whose out- and in-degrees follow a power law (Chung-Lu style)."""
    rng = np.random.default_rng(seed)
    weight = (np.arange(1, nodes + 1) ** -0.8)
    weight /= weight.sum()
    edges = nodes * avg_degree
    src = rng.choice(nodes, size=edges, p=weight)
    dst = rng.choice(nodes, size=edges, p=rng.permutation(weight))
    vals = rng.standard_normal(edges).astype(np.float32)
    g = scipy.sparse.coo_matrix((vals, (src, dst)), shape=(nodes, nodes)).tocsr()
    g.sum_duplicates()
    return g


def scipy_parts(s, index_dtype):
    return (torch.from_numpy(s.indptr).to(index_dtype).clone(), torch.from_numpy(s.indices).to(index_dtype).clone(),
            torch.from_numpy(s.data).clone())


@pytest.mark.parametrize("index_dtype", INDEX_DTYPES)
def test_csr_spgemm_power_law_graph_matches_scipy(isa, accumulator, index_dtype):
    g = power_law_graph(3000, 6, seed=0)
    a = scipy_parts(g, index_dtype)
    row_ptr, col_idx, values = spgemm(a, a, 3000)
    expected = g.astype(np.float64) @ g.astype(np.float64)
    expected.sort_indices()
    # Random normal values never cancel exactly, so scipy (which drops zeros) has the same pattern.
    np.testing.assert_array_equal(row_ptr.numpy(), expected.indptr)
    np.testing.assert_array_equal(col_idx.numpy(), expected.indices)
    ref = torch.from_numpy(expected.data)
    assert_matches_reference(values, ref, torch.float32)


def test_csr_spgemm_automatic_accumulator_wide_output(isa):
    # n > 2^20: the automatic choice is the hash accumulator.
    n = 2**20 + 3
    a = scipy.sparse.random(6, 9, density=0.5, format="csr", random_state=1, dtype=np.float32)
    b = scipy.sparse.random(9, n, density=4e-5, format="csr", random_state=2, dtype=np.float32)
    b.indices[:3] = [n - 1, 0, n - 2]  # reach both ends of the column range
    b.has_sorted_indices = False
    row_ptr, col_idx, values = spgemm(scipy_parts(a, torch.int32), scipy_parts(b, torch.int32), n)
    expected = a.astype(np.float64) @ b.astype(np.float64)
    expected.sort_indices()
    np.testing.assert_array_equal(row_ptr.numpy(), expected.indptr)
    np.testing.assert_array_equal(col_idx.numpy(), expected.indices)
    assert_matches_reference(values, torch.from_numpy(expected.data), torch.float32)


@pytest.mark.parametrize("shape", [(40, 50, 60), (300, 2, 900)])
def test_csr_spgemm_automatic_accumulator(isa, shape):
    m, k, n = shape
    a = csr_parts(random_sparse(m, k, 0.3))
    b = csr_parts(random_sparse(k, n, 0.3, generator=torch.Generator().manual_seed(5)))
    check(a, b, k, n)


def test_csr_spgemm_cancellation_is_kept(isa, accumulator):
    # C[0, 0] = 1*1 + 1*(-1) = 0 stays stored (structural product); stored zeros in A count too.
    a = (torch.tensor([0, 2, 3]), torch.tensor([0, 1, 0]), torch.tensor([1.0, 1.0, 0.0]))
    b = (torch.tensor([0, 1, 2]), torch.tensor([0, 0]), torch.tensor([1.0, -1.0]))
    row_ptr, col_idx, values = spgemm(a, b, 1)
    assert row_ptr.tolist() == [0, 1, 2] and col_idx.tolist() == [0, 0] and values.tolist() == [0.0, 0.0]


@pytest.mark.parametrize("dtype", DTYPES)
def test_csr_spgemm_unsorted_and_duplicate_columns(isa, accumulator, dtype):
    # Unsorted rows with duplicate columns in both operands: summed, output sorted.
    a = (torch.tensor([0, 4, 4, 6]), torch.tensor([2, 0, 2, 1, 1, 1]), torch.tensor([1., 2, 3, 4, 5, 6], dtype=dtype))
    b = (torch.tensor([0, 3, 5, 7]), torch.tensor([4, 0, 4, 3, 1, 0, 4]),
         torch.tensor([1., -2, 3, 4, 5, 6, 7], dtype=dtype))
    c = check(a, b, 3, 5)
    assert c[0].tolist() == [0, 4, 4, 6]
    assert c[1].tolist() == [0, 1, 3, 4, 1, 3]


def test_csr_spgemm_nnz_overflowing_int32_needs_int64_indices():
    # C = ones(2^16, 1) @ ones(1, 2^15 + 1) has 2^31 + 2^16 entries: past int32 indices.
    m, n = 2**16, 2**15 + 1
    a = (torch.arange(m + 1, dtype=torch.int32), torch.zeros(m, dtype=torch.int32), torch.ones(m))
    b = (torch.tensor([0, n], dtype=torch.int32), torch.arange(n, dtype=torch.int32), torch.ones(n))
    with pytest.raises(ValueError, match="more than int32 indices can address; pass A's or B's indices as int64"):
        spgemm(a, b, n)


@pytest.mark.parametrize("a_index,b_index", [(torch.int32, torch.int32), (torch.int32, torch.int64)])
def test_csr_spgemm_opcheck(a_index, b_index):
    a = csr_parts(random_sparse(9, 12, 0.4), a_index)
    b = csr_parts(random_sparse(12, 7, 0.4, generator=torch.Generator().manual_seed(3)), b_index)
    # Every opcheck sub-test applies, test_faketensor and test_aot_dispatch_dynamic included: the
    # registered fake gives C's nnz as an unbacked dynamic size (python/sparsekernels/ops.py).
    results = torch.library.opcheck(torch.ops.sparse.csr_spgemm.default, (*a, *b, 7))
    assert set(results.values()) == {"SUCCESS"} and "test_aot_dispatch_dynamic" in results


class TestBadInput:
    def setup_method(self):
        self.a = list(csr_parts(random_sparse(6, 8, 0.5)))
        self.b = list(csr_parts(random_sparse(8, 5, 0.5, generator=torch.Generator().manual_seed(4))))

    def call(self, a=None, b=None, n=5):
        return spgemm(self.a if a is None else a, self.b if b is None else b, n)

    def replaced(self, which, index, tensor):
        parts = list(self.a if which == "a" else self.b)
        parts[index] = tensor
        return {which: parts}

    @pytest.mark.parametrize("which", ["a", "b"])
    def test_row_ptr_not_monotone(self, which):
        row_ptr = getattr(self, which)[0].clone()
        row_ptr[3], row_ptr[4] = int(row_ptr[4]) + 1, int(row_ptr[3])
        with pytest.raises(ValueError, match=f"operand {which.upper()}.*non-decreasing"):
            self.call(**self.replaced(which, 0, row_ptr))

    @pytest.mark.parametrize("which", ["a", "b"])
    def test_row_ptr_end_not_nnz(self, which):
        row_ptr = getattr(self, which)[0].clone()
        row_ptr[-1] -= 1
        with pytest.raises(ValueError, match=rf"operand {which.upper()}.*row_ptr\[m\]"):
            self.call(**self.replaced(which, 0, row_ptr))

    @pytest.mark.parametrize("which,bad", [("a", 8), ("a", -1), ("b", 5), ("b", -3), ("b", 2**31 - 1)])
    def test_col_idx_out_of_range(self, which, bad):
        col_idx = getattr(self, which)[1].clone()
        col_idx[1] = bad
        cols = 8 if which == "a" else 5
        with pytest.raises(ValueError, match=f"operand {which.upper()}.*out of range for {cols} columns"):
            self.call(**self.replaced(which, 1, col_idx))

    def test_a_columns_must_match_b_rows(self):
        # A has 8 columns in its indices but B only 7 rows: k = 7 makes A's column 7 out of range.
        a = list(csr_parts(torch.eye(6, 8)[:, [7, 1, 2, 3, 4, 5, 6, 0]].contiguous()))
        b = list(csr_parts(random_sparse(7, 5, 0.5)))
        with pytest.raises(ValueError, match="operand A.*out of range for 7 columns"):
            self.call(a=a, b=b)

    def test_values_dtype_mismatch(self):
        with pytest.raises(TypeError, match="'a_values' and 'b_values' must have the same dtype"):
            self.call(**self.replaced("b", 2, self.b[2].half()))

    def test_unsupported_dtype(self):
        a, b = list(self.a), list(self.b)
        a[2], b[2] = a[2].long(), b[2].long()  # float64: test_float64.py
        with pytest.raises(TypeError, match="unsupported dtype"):
            self.call(a=a, b=b)

    @pytest.mark.parametrize("which", ["a", "b"])
    def test_index_dtype_mismatch_within_operand(self, which):
        with pytest.raises(TypeError, match=f"operand {which.upper()}.*same dtype"):
            self.call(**self.replaced(which, 0, getattr(self, which)[0].long()))

    def test_values_length_mismatch(self):
        with pytest.raises(ValueError, match="operand A.*same length"):
            self.call(**self.replaced("a", 2, self.a[2][:-1]))

    def test_negative_n(self):
        with pytest.raises(ValueError, match="'n'"):
            self.call(n=-1)

    @pytest.mark.parametrize("which", ["a", "b"])
    def test_empty_row_ptr(self, which):
        with pytest.raises(ValueError, match="row_ptr' must be a 1-D tensor with"):
            self.call(**self.replaced(which, 0, torch.zeros(0, dtype=torch.int32)))


@pytest.fixture(params=["bound", "exact"])
def sizing(request, monkeypatch):
    """C allocated for its bound (parts written apart, then moved down) or, forced here, for its exact
    size after a symbolic pass (the path taken when the bound is past int32 or too large)."""
    if request.param == "exact":
        monkeypatch.setenv("SPARSEKERNELS_SPGEMM_EXACT", "1")
    return request.param


@pytest.fixture(params=[1, 2, 3])
def threads(request):
    """Row parts: one per thread (3 parts also on a 2-core machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(before)


def test_csr_spgemm_parts_and_sizing_match_scipy(isa, accumulator, sizing, threads):
    # ~1.8e6 products: one part per 2^18 of them (the glue's minimum) gives up to 4 per thread;
    # power-law rows: very uneven parts.
    g = power_law_graph(6000, 20, seed=threads)
    a = scipy_parts(g, torch.int32)
    row_ptr, col_idx, values = spgemm(a, a, 6000)
    expected = g.astype(np.float64) @ g.astype(np.float64)
    expected.sort_indices()
    np.testing.assert_array_equal(row_ptr.numpy(), expected.indptr)
    np.testing.assert_array_equal(col_idx.numpy(), expected.indices)
    assert_matches_reference(values, torch.from_numpy(expected.data), torch.float32)
    # Shrunk to nnz: the tensors' sizes are exact whatever their storage holds.
    assert col_idx.shape == values.shape == (expected.nnz,)


@pytest.mark.parametrize("dtype", DTYPES)
def test_csr_spgemm_sort_and_bitmap_read_off(isa, accumulator, sizing, dtype):
    # The dense accumulator reads a row off its bitmap, or sorts the row's column list when the
    # row has few entries over a wide column range, or reads its flags 64 at a time when the row
    # has many products against n (n <= 8 flops). Rows here: 2 entries at both ends (sorted),
    # 1 entry (sorted), columns on word boundaries (63, 64, 127, 128), a dense row (flags: 1667
    # products, n = 5000 not a multiple of 64), and an empty row between them; the rows after the
    # flag read-off reuse its columns (the flags must be clear).
    n = 5000
    b_rows = [[0, n - 1], [2500], [63, 64, 127, 128, 0, 4095, 4096], list(range(0, n, 3)), [n - 1, 64, 1]]
    b_row_ptr = torch.tensor([0] + list(np.cumsum([len(r) for r in b_rows])))
    b_col = torch.tensor([c for r in b_rows for c in r])
    g = torch.Generator().manual_seed(9)
    b = (b_row_ptr, b_col, torch.randn(b_col.numel(), generator=g).to(dtype))
    a_rows = [[0], [1], [2], [], [3], [0, 2, 4], [4, 0, 1, 2, 3]]
    a_row_ptr = torch.tensor([0] + list(np.cumsum([len(r) for r in a_rows])))
    a_col = torch.tensor([c for r in a_rows for c in r])
    a = (a_row_ptr, a_col, torch.randn(a_col.numel(), generator=g).to(dtype))
    c = check(a, b, len(b_rows), n)
    assert c[1][: int(c[0][3])].tolist() == [0, n - 1, 2500, 0, 63, 64, 127, 128, 4095, 4096]


def test_csr_spgemm_heavy_duplication(isa, accumulator, sizing):
    # One column of A repeated 200 times and B rows repeating columns: every entry of C sums many
    # products (the accumulator's "seen" case), also with unsorted rows.
    g = torch.Generator().manual_seed(11)
    a_col = torch.tensor([3] * 200 + [0, 3, 1, 0])
    a = (torch.tensor([0, 200, 200, 204]), a_col, torch.randn(204, generator=g))
    b_col = torch.tensor([7, 7, 2, 7, 2, 5, 5, 5, 0, 1, 2, 3, 4, 5, 6, 7, 7, 6, 5, 4, 3, 2, 1, 0])
    b = (torch.tensor([0, 3, 5, 8, 24]), b_col, torch.randn(24, generator=g))
    c = check(a, b, 4, 8)
    assert c[0].tolist() == [0, 8, 8, 16]


def test_csr_spgemm_dense_accumulator_wide_output(isa, monkeypatch):
    # The dense accumulator forced on n > 2^20 columns with rows of a few entries each (the sort
    # read-off) and one long row (the bitmap read-off over a wide range).
    monkeypatch.setenv("SPARSEKERNELS_SPGEMM_ACCUMULATOR", "dense")
    n = 2**20 + 3
    a = scipy.sparse.random(6, 9, density=0.5, format="csr", random_state=3, dtype=np.float32)
    b = scipy.sparse.random(9, n, density=4e-4, format="csr", random_state=4, dtype=np.float32)
    b.indices[:3] = [n - 1, 0, n - 2]
    b.has_sorted_indices = False
    row_ptr, col_idx, values = spgemm(scipy_parts(a, torch.int32), scipy_parts(b, torch.int32), n)
    expected = a.astype(np.float64) @ b.astype(np.float64)
    expected.sort_indices()
    np.testing.assert_array_equal(row_ptr.numpy(), expected.indptr)
    np.testing.assert_array_equal(col_idx.numpy(), expected.indices)
    assert_matches_reference(values, torch.from_numpy(expected.data), torch.float32)


def test_csr_spgemm_repeated_calls_leave_no_state(isa, accumulator):
    # The accumulator's bitmap must be clean after every row and call: a product, then one with
    # fewer columns, then the first again, each matching scipy.
    g1 = power_law_graph(700, 4, seed=5)
    g2 = scipy.sparse.random(700, 300, density=0.02, format="csr", random_state=6, dtype=np.float32)
    for x, y in [(g1, g1), (g1, g2), (g1, g1)]:
        row_ptr, col_idx, values = spgemm(scipy_parts(x, torch.int64), scipy_parts(y, torch.int32), y.shape[1])
        expected = x.astype(np.float64) @ y.astype(np.float64)
        expected.sort_indices()
        np.testing.assert_array_equal(col_idx.numpy(), expected.indices)
        np.testing.assert_array_equal(row_ptr.numpy(), expected.indptr)
        assert_matches_reference(values, torch.from_numpy(expected.data), torch.float32)


@pytest.mark.parametrize("bad", [float("inf"), float("nan")])
@pytest.mark.parametrize("width", [8, 5000])
def test_csr_spgemm_non_finite_product_stays_in_its_row(isa, accumulator, bad, width):
    """A non-finite product lands in its own entry only: the accumulator that summed it is clean for the
    next rows that reach the same column (both read-offs: a narrow row range, and few entries spread over
    a wide one, which sorts its column list)."""
    n = width
    cols = [0, 3, n - 1]
    # B row 0 reaches columns 0, 3, n-1; B row 1 the same columns with finite values
    b = (torch.tensor([0, 3, 6]), torch.tensor(cols + cols), torch.tensor([bad, 2.0, -1.0, 0.5, 0.25, 4.0]))
    # A rows: 0 uses B row 0 (non-finite in column 0), rows 1 and 2 only B row 1, row 3 both
    a = (torch.tensor([0, 1, 2, 3, 5]), torch.tensor([0, 1, 1, 0, 1]), torch.tensor([1.5, 2.0, -3.0, 1.0, 1.0]))
    row_ptr, col_idx, values = spgemm(a, b, n)
    assert row_ptr.tolist() == [0, 3, 6, 9, 12]
    assert col_idx.tolist() == cols * 4
    v = values.view(4, 3)
    assert not v[0, 0].isfinite() and not v[3, 0].isfinite()
    torch.testing.assert_close(v[1], torch.tensor([1.0, 0.5, 8.0]), rtol=0, atol=0)
    torch.testing.assert_close(v[2], torch.tensor([-1.5, -0.75, -12.0]), rtol=0, atol=0)
    torch.testing.assert_close(v[0, 1:], torch.tensor([3.0, -1.5]), rtol=0, atol=0)
    torch.testing.assert_close(v[3, 1:], torch.tensor([2.25, 3.0]), rtol=0, atol=0)


def test_csr_spgemm_accumulator_reused_across_calls_stays_clean(isa, accumulator):
    """The accumulators are kept per thread between calls: a call whose products were non-finite, on a wider
    n, leaves nothing behind for the next, narrower one (and the other way round)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: every call below runs on the same thread's arrays
    try:
        b_bad = (torch.tensor([0, 3]), torch.tensor([0, 40, 4999]), torch.tensor([float("nan"), float("inf"), 1.0]))
        a1 = (torch.tensor([0, 1]), torch.tensor([0]), torch.tensor([2.0]))
        c = spgemm(a1, b_bad, 5000)
        assert c[1].tolist() == [0, 40, 4999] and c[2][0].isnan() and c[2][1].isinf()
        for n in (64, 5000):
            b = (torch.tensor([0, 3]), torch.tensor([0, 40, 63]), torch.tensor([1.0, 2.0, 3.0]))
            row_ptr, col_idx, values = spgemm(a1, b, n)
            assert col_idx.tolist() == [0, 40, 63]
            torch.testing.assert_close(values, torch.tensor([2.0, 4.0, 6.0]), rtol=0, atol=0)
    finally:
        torch.set_num_threads(threads)
