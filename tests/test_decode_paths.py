"""The decode path (N = 1..17) of the CPU SpMM kernels of CSR, bitmap and 2:4, and the
metadata checks fused into those kernels (docs/design.md, "Validation").

Every N in 1..17 exercises one small-N template (or the wide path at 17) against the
float64 reference; corrupt metadata in the first, a middle and the LAST row / group row
must raise the same message as the standalone validator, on any thread count (parallel
chunks report their first error and the smallest wins)."""

import pytest
import torch

import sparsekernels as sk
from conftest import DTYPES, assert_matches_reference, random_dense, random_sparse

NS = list(range(1, 18))
# every N for float32; for the 16-bit types the N that change the vector split (kW = 4, 8, 16)
CASES = [(n, torch.float32) for n in NS] + [(n, dt) for dt in DTYPES if dt != torch.float32
                                             for n in (1, 2, 5, 8, 9, 16, 17)]


def csr_parts(dense, index_dtype):
    s = dense.to_sparse_csr()
    return s.crow_indices().to(index_dtype).clone(), s.col_indices().to(index_dtype).clone(), s.values().clone()


def ref_and_torch(a, b, dtype):
    return a.double() @ b.double(), (a @ b if dtype != torch.float32 else None)


# ---- every small N against the float64 reference ---------------------------------
@pytest.mark.parametrize("n,dtype", CASES)
@pytest.mark.parametrize("index_dtype", [torch.int32, torch.int64])
def test_csr_decode_n(isa, n, dtype, index_dtype):
    # 101 columns: rows of ~60 entries cover the 4*kW unrolled, single-vector and scalar tails
    a = random_sparse(37, 101, 0.6, dtype, empty_rows=(0, 5, 36))
    b = random_dense(101, n, dtype=dtype, seed=n)
    out = torch.ops.sparse.csr_spmm(*csr_parts(a, index_dtype), b, 37)
    ref, same = ref_and_torch(a, b, dtype)
    assert_matches_reference(out, ref, dtype, same)


@pytest.mark.parametrize("n,dtype", CASES)
def test_bitmap_decode_n(isa, n, dtype):
    # 70 x 100: one full group and edge groups in both directions
    a = random_sparse(70, 100, 0.5, dtype, empty_rows=(3,))
    b = random_dense(100, n, dtype=dtype, seed=n)
    A = sk.to_bitmap(a)
    out = torch.ops.sparse.bitmap_spmm(A.group_offsets, A.bitmaps, A.values, b, 70)
    ref, same = ref_and_torch(a, b, dtype)
    assert_matches_reference(out, ref, dtype, same)


@pytest.mark.parametrize("density", [0.0, 0.05, 1.0])
@pytest.mark.parametrize("n", [1, 3, 16])
def test_bitmap_decode_density(isa, density, n):
    # empty and full groups: the 8-value windows of the expansion at the end of a group
    a = random_sparse(128, 192, density)
    b = random_dense(192, n)
    A = sk.to_bitmap(a)
    out = torch.ops.sparse.bitmap_spmm(A.group_offsets, A.bitmaps, A.values, b, 128)
    assert_matches_reference(out, a.double() @ b.double(), torch.float32)


def random_24(m, k, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(m, k, generator=g, dtype=torch.float64)
    w = torch.where(w.abs() < 0.05, torch.full_like(w, 0.5), w)
    return sk.prune_n_m(w, 2, 4).to(dtype)


@pytest.mark.parametrize("n,dtype", CASES)
@pytest.mark.parametrize("k", [16, 101])
def test_sparse24_decode_n(isa, n, dtype, k):
    a = random_24(19, k, dtype, seed=n)
    b = random_dense(k, n, dtype=dtype, seed=n)
    A = sk.to_sparse24(a)
    out = torch.ops.sparse.sparse24_spmm(A.values, A.meta, b)
    ref, same = ref_and_torch(a, b, dtype)
    assert_matches_reference(out, ref, dtype, same)


@pytest.mark.parametrize("fmt", ["csr", "bitmap", "sparse24"])
def test_n1_strided_b(isa, fmt):
    # a column of a wider matrix: n == 1 with a row stride != 1 (no gather / expansion path)
    a = random_24(40, 96, torch.float32) if fmt == "sparse24" else random_sparse(40, 96, 0.4)
    wide = random_dense(96, 5)
    b = wide[:, 2:3]
    assert b.stride(0) == 5
    A = {"csr": sk.to_csr, "bitmap": sk.to_bitmap, "sparse24": sk.to_sparse24}[fmt](a)
    out = A._spmm(b)
    assert_matches_reference(out, a.double() @ b.double(), torch.float32)


# ---- fused checks: same messages, first error wins, last chunk covered -------------
@pytest.fixture(params=[1, 2])
def threads(request):
    old = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(old)


M_BIG = 4096  # many rows, so the kernel runs in several parallel chunks


class TestCsrFused:
    def setup_method(self):
        self.a = random_sparse(M_BIG, 64, 0.1)
        self.b = random_dense(64, 1)

    @pytest.mark.parametrize("row", [0, 2000, M_BIG - 1])
    @pytest.mark.parametrize("n", [1, 4, 17])
    def test_col_out_of_range(self, isa, threads, row, n):
        rp, ci, v = csr_parts(self.a, torch.int32)
        p = int(rp[row + 1]) - 1 if int(rp[row + 1]) > int(rp[row]) else int(rp[row])
        ci[p] = 64
        with pytest.raises(ValueError, match=rf"'col_idx\[{p}\]' = 64 is out of range for 64 columns"):
            torch.ops.sparse.csr_spmm(rp, ci, v, random_dense(64, n), M_BIG)

    def test_first_of_two_errors(self, isa, threads):
        rp, ci, v = csr_parts(self.a, torch.int64)
        ci[5] = -1
        ci[-1] = 1 << 40
        with pytest.raises(ValueError, match=r"'col_idx\[5\]' = -1 is out of range"):
            torch.ops.sparse.csr_spmm(rp, ci, v, self.b, M_BIG)

    @pytest.mark.parametrize("row", [1, M_BIG - 2])
    def test_row_ptr_not_monotone(self, isa, threads, row):
        rp, ci, v = csr_parts(self.a, torch.int32)
        rp[row + 1] = int(rp[row]) - 1
        with pytest.raises(ValueError, match=rf"non-decreasing, but row_ptr\[{row}\]"):
            torch.ops.sparse.csr_spmm(rp, ci, v, self.b, M_BIG)

    def test_row_ptr_past_nnz_then_back(self, isa, threads):
        # locally monotone in one chunk but pointing past nnz: must not be read
        rp, ci, v = csr_parts(self.a, torch.int32)
        rp[100] = 1 << 30
        with pytest.raises(ValueError, match=r"non-decreasing, but row_ptr\[100\]"):
            torch.ops.sparse.csr_spmm(rp, ci, v, self.b, M_BIG)

    def test_bad_index_with_n_zero(self, isa):
        rp, ci, v = csr_parts(self.a, torch.int32)
        ci[3] = 99
        with pytest.raises(ValueError, match="out of range"):
            torch.ops.sparse.csr_spmm(rp, ci, v, torch.zeros(64, 0), M_BIG)


class TestBitmapFused:
    def setup_method(self):
        self.m, self.k = 64 * 40 + 6, 64 * 2 + 3  # the last group row is an edge row
        self.a = random_sparse(self.m, self.k, 0.3)
        A = sk.to_bitmap(self.a)
        self.offs, self.masks, self.values = A.group_offsets.clone(), A.bitmaps.clone(), A.values.clone()
        self.gk = 3

    def call(self, n=1, offs=None, masks=None):
        return torch.ops.sparse.bitmap_spmm(self.offs if offs is None else offs,
                                            self.masks if masks is None else masks,
                                            self.values, random_dense(self.k, n), self.m)

    @pytest.mark.parametrize("g", [1, 60, 3 * 41 - 2])
    @pytest.mark.parametrize("n", [1, 5, 20])
    def test_count_mismatch(self, isa, threads, g, n):
        offs = self.offs.clone()
        offs[g] += 8  # group g - 1 claims 8 more values, group g 8 fewer
        with pytest.raises(ValueError, match=rf"group {g - 1} .* set bits"):
            self.call(n, offs=offs)

    @pytest.mark.parametrize("n", [1, 16])
    def test_bit_outside_in_last_group(self, isa, threads, n):
        masks = self.masks.clone()
        g = 3 * 41 - 1  # the last group: 6 rows x 3 columns inside
        masks[g * 64 + 0] = masks[g * 64 + 0] | (1 << 7)  # tile 0, row 0, column 7 (past k)
        with pytest.raises(ValueError, match=r"has bit 7 set for element \(2560, 135\), outside"):
            self.call(n, masks=masks)

    def test_offset_out_of_range(self, isa, threads):
        offs = self.offs.clone()
        offs[50] = 1 << 40
        with pytest.raises(ValueError, match="group 49 "):
            self.call(1, offs=offs)


class TestSparse24Fused:
    def setup_method(self):
        self.k = 70
        a = random_24(M_BIG, self.k, torch.float32)
        A = sk.to_sparse24(a)
        self.values, self.meta = A.values.clone(), A.meta.clone()

    @pytest.mark.parametrize("row", [0, 1500, M_BIG - 1])
    @pytest.mark.parametrize("n", [1, 3, 17])
    def test_bad_positions(self, isa, threads, row, n):
        meta = self.meta.clone()
        meta[row, 1] = meta[row, 1] & ~0xF  # group 4 -> positions (0, 0)
        with pytest.raises(ValueError, match=rf"'meta' of row {row}, group 4 .*positions \(0, 0\)"):
            torch.ops.sparse.sparse24_spmm(self.values, meta, random_dense(self.k, n))

    def test_padding_group_in_last_row(self, isa, threads):
        meta = self.meta.clone()
        meta[-1, -1] = 0  # groups 16..19, wholly past k = 70 for 17..19
        with pytest.raises(ValueError, match=rf"'meta' of row {M_BIG - 1}, group 16 "):
            torch.ops.sparse.sparse24_spmm(self.values, meta, random_dense(self.k, 1))


@pytest.mark.parametrize("first,second", [(70_001, 250_000), (511, 512), (0, 299_999)])
def test_validator_names_the_smallest_bad_column(first, second):
    """The validators search blocks of 512 indices branch-free on every thread (parallel_find_first_pure): with
    two bad columns in different blocks (and in one block), the message names the smaller position."""
    m, k, per_row = 3000, 4096, 100
    row_ptr = torch.arange(0, (m + 1) * per_row, per_row, dtype=torch.int32)
    col_idx = torch.randint(0, k, (m * per_row,), generator=torch.Generator().manual_seed(first), dtype=torch.int32)
    col_idx[first] = k
    col_idx[second] = -3
    values = random_dense(m * per_row)
    for b in (random_dense(k, 1), random_dense(k, 4)):
        with pytest.raises(ValueError, match=rf"'col_idx\[{first}\]' = {k} is out of range"):
            torch.ops.sparse.csr_spmm(row_ptr, col_idx, values, b, m)
    with pytest.raises(ValueError, match=rf"'col_idx\[{first}\]' = {k} is out of range"):
        torch.ops.sparse.csr_spmm_t(row_ptr, col_idx, values, random_dense(m, 4), k)
