"""sparse::sparse24_spmm, sparse::dense_to_sparse24 and sparse::sparse24_to_dense."""

import pytest
import torch

from conftest import DTYPES, assert_matches_reference, random_dense


@pytest.fixture
def isa(isa_all):
    """Every CPU variant, avx512bf16 included: bf16 2:4 SpMM has a vdpbf16ps kernel there."""
    return isa_all

SHAPES = [  # (m, k, n)
    (0, 5, 3), (5, 0, 3), (5, 4, 0), (1, 1, 1), (7, 33, 1), (33, 7, 16), (9, 16, 45), (64, 1025, 7),
    (130, 70, 65), (1025, 33, 1), (40, 100, 4), (40, 50, 200),
]


def random_24(m, k, dtype=torch.float32, seed=0, nnz_per_group=None):
    """Dense m x k in the 2:4 pattern: each group of 4 columns has 0, 1 or 2 non-zeros at random
    positions (exactly `nnz_per_group` if given); columns past k simply do not exist."""
    g = torch.Generator().manual_seed(seed * 1000003 + m * 7919 + k * 31)
    groups = (k + 3) // 4
    scores = torch.rand(m, groups, 4, generator=g)
    if nnz_per_group is None:
        counts = torch.randint(0, 3, (m, groups, 1), generator=g)
    else:
        counts = torch.full((m, groups, 1), nnz_per_group)
    rank = scores.argsort(-1).argsort(-1)  # a random permutation of 0..3 per group
    mask = (rank < counts).reshape(m, groups * 4)[:, :k]
    vals = torch.randn(m, k, generator=g, dtype=torch.float64)
    vals = torch.where(vals.abs() < 0.05, torch.full_like(vals, 0.5), vals)
    return (vals * mask).to(dtype)


def sparse24_reference_pack(dense):
    """An independent 2:4 packer written from docs/formats.md, one group at a time."""
    m, k = dense.shape
    kp = (k + 15) // 16 * 16
    values = torch.zeros(m, kp // 2, dtype=dense.dtype)
    meta = [[0] * (kp // 16) for _ in range(m)]
    for i in range(m):
        for g in range(kp // 4):
            nz = [q for q in range(4) if 4 * g + q < k and dense[i, 4 * g + q] != 0]
            assert len(nz) <= 2
            if len(nz) == 2:
                pos = nz
            elif len(nz) == 1:
                pos = [0, 1] if nz[0] == 0 else [0, nz[0]]
            else:
                pos = [0, 1]
            for s, q in enumerate(pos):
                if q in nz:
                    values[i, 2 * g + s] = dense[i, 4 * g + q]
            meta[i][g // 4] |= (pos[0] | pos[1] << 2) << (4 * (g % 4))
    meta = torch.tensor(meta, dtype=torch.int32).reshape(m, kp // 16)
    meta = torch.where(meta >= 2**15, meta - 2**16, meta).to(torch.int16)  # uint16 bit pattern
    return values, meta


def f16_reference(dense, b, dtype):
    return None if dtype == torch.float32 else dense @ b


@pytest.mark.parametrize("m,k,n", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_sparse24_spmm_matches_reference(isa, m, k, n, dtype):
    a = random_24(m, k, dtype)
    b = random_dense(k, n, dtype=dtype, seed=1)
    values, meta = torch.ops.sparse.dense_to_sparse24(a)
    out = torch.ops.sparse.sparse24_spmm(values, meta, b)
    assert_matches_reference(out, a.double() @ b.double(), dtype, f16_reference(a, b, dtype))


@pytest.mark.parametrize("nnz_per_group", [0, 1, 2])
@pytest.mark.parametrize("k", [16, 37])
def test_sparse24_spmm_group_fill(isa, nnz_per_group, k):
    a = random_24(29, k, nnz_per_group=nnz_per_group)
    b = random_dense(k, 40)
    out = torch.ops.sparse.sparse24_spmm(*torch.ops.sparse.dense_to_sparse24(a), b)
    assert_matches_reference(out, a.double() @ b.double(), torch.float32)


@pytest.mark.parametrize("n", [1, 3, 8, 35])
@pytest.mark.parametrize("k", [1, 2, 3, 5, 15, 17, 37])
def test_sparse24_spmm_skips_positions_past_k(isa, n, k):
    """Hand-made meta pointing past k (allowed: padding) with NaN there: never read, never reaches out."""
    m = 6
    a = random_24(m, k)
    values, meta = torch.ops.sparse.dense_to_sparse24(a)
    kp = values.shape[1] * 2
    values = values.clone()
    meta32 = meta.to(torch.int32) & 0xFFFF
    for g in range((k + 3) // 4, kp // 4):  # groups wholly past k: positions (2, 3), values NaN
        meta32[:, g // 4] = (meta32[:, g // 4] & ~(0xF << (4 * (g % 4)))) | (0b1110 << (4 * (g % 4)))
        values[:, 2 * g:2 * g + 2] = float("nan")
    if k % 4:  # the straddling group: every position past k holds NaN
        g = k // 4
        nib = (meta32[:, g // 4] >> (4 * (g % 4))) & 0xF
        for s, pos in ((0, nib & 3), (1, nib >> 2)):
            past = 4 * g + pos >= k
            values[past, 2 * g + s] = float("nan")
    meta = torch.where(meta32 >= 2**15, meta32 - 2**16, meta32).to(torch.int16)
    b = random_dense(k, n)
    out = torch.ops.sparse.sparse24_spmm(values, meta, b)
    assert_matches_reference(out, a.double() @ b.double(), torch.float32)
    assert torch.equal(torch.ops.sparse.sparse24_to_dense(values, meta, k), a)


@pytest.mark.parametrize("n", [2, 3, 4, 9, 16])
@pytest.mark.parametrize("k", [16, 50, 100])
def test_sparse24_spmm_path_boundaries(isa, n, k):
    """n at the edges of the kernel's small-n paths (per-column select up to 3, broadcast up to 16), with and
    without a partial last meta word, b contiguous and with a row stride."""
    a = random_24(37, k)
    parts = torch.ops.sparse.dense_to_sparse24(a)
    b = random_dense(k, n, seed=n)
    assert_matches_reference(torch.ops.sparse.sparse24_spmm(*parts, b), a.double() @ b.double(), torch.float32)
    bw = random_dense(k, n + 7, seed=n)[:, 3 : 3 + n]
    assert_matches_reference(torch.ops.sparse.sparse24_spmm(*parts, bw), a.double() @ bw.double(), torch.float32)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [2, 3, 4, 5, 8])
@pytest.mark.parametrize("k", [7, 16, 37, 100])
def test_sparse24_spmm_expansion_and_non_finite_b(isa, dtype, n, k):
    """2 <= n <= 8: the expansion (finite b; 8-column blocks, rows in blocks of 2-4 with a remainder) and the
    forms a b with a NaN / infinity takes instead: such a value reaches only the rows that store (a value, zero or
    not, at) its row of b."""
    m = 4 * 9 + 3
    a = random_24(m, k, dtype)
    parts = torch.ops.sparse.dense_to_sparse24(a)
    b = random_dense(k, n, dtype=dtype, seed=n + k)
    assert_matches_reference(torch.ops.sparse.sparse24_spmm(*parts, b), a.double() @ b.double(), dtype,
                             f16_reference(a, b, dtype))
    c = k - 1 - k // 3
    b[c, n - 1] = float("inf")
    b[c, 0] = float("nan")
    out = torch.ops.sparse.sparse24_spmm(*parts, b)
    stored = torch.ops.sparse.sparse24_to_dense(torch.ones_like(parts[0]), parts[1], k) != 0  # stored zeros too
    hit = stored[:, c]
    assert hit.any() and (~hit).any()
    assert not out[hit, n - 1].isfinite().any() and out[hit, 0].isnan().all()
    assert out[~hit].isfinite().all(), "a non-finite b value reached a row that does not store its row of b"
    rows, clean = ~hit, torch.nan_to_num(b, nan=0.0, posinf=0.0)
    assert_matches_reference(out[rows], (a.double() @ clean.double())[rows], dtype,
                             None if dtype == torch.float32 else (a @ clean)[rows])


@pytest.mark.parametrize("n", [2, 3, 4, 5, 8, 9, 15, 16])
@pytest.mark.parametrize("k", [1, 3, 4, 7, 16, 33, 100, 257])
def test_sparse24_spmm_bf16_small_n(isa, n, k):
    """bf16 at 2 <= n <= 16 (avx512bf16: group pairs by vdpbf16ps, b pairs 4, 8 or 16 columns wide, the
    straddling group in fp32; 8 groups per step and a remainder), b contiguous and with a row stride."""
    m = 19
    a = random_24(m, k, torch.bfloat16, seed=k)
    parts = torch.ops.sparse.dense_to_sparse24(a)
    b = random_dense(k, n, dtype=torch.bfloat16, seed=n)
    ref = a.double() @ b.double()
    assert_matches_reference(torch.ops.sparse.sparse24_spmm(*parts, b), ref, torch.bfloat16, a @ b)
    bw = random_dense(k, n + 5, dtype=torch.bfloat16, seed=n)[:, 2 : 2 + n]
    assert_matches_reference(torch.ops.sparse.sparse24_spmm(*parts, bw), a.double() @ bw.double(), torch.bfloat16,
                             a @ bw)


@pytest.mark.parametrize("n", [3, 8, 16])
@pytest.mark.parametrize("m,k", [(33, 257), (70, 1030), (65, 1100), (31, 2051)])
def test_sparse24_spmm_bf16_row_tiles_and_k_chunks(isa, m, k, n):
    """bf16 small n in row tiles of 32 with k in chunks of 1024 / NP groups (avx512bf16): partial last tiles,
    several chunks with a partial last one, the straddling group after them."""
    a = random_24(m, k, torch.bfloat16, seed=m)
    parts = torch.ops.sparse.dense_to_sparse24(a)
    b = random_dense(k, n, dtype=torch.bfloat16, seed=k)
    assert_matches_reference(torch.ops.sparse.sparse24_spmm(*parts, b), a.double() @ b.double(), torch.bfloat16,
                             a @ b)


@pytest.mark.parametrize("n", [2, 7, 16])
@pytest.mark.parametrize("k", [5, 37, 70])
def test_sparse24_spmm_bf16_padding_never_read(isa, n, k):
    """bf16 small n: NaN values at the positions past k (in the straddling group and the padding groups)
    and NaN in b's columns past n never reach out."""
    a = random_24(6, k, torch.bfloat16, seed=3)
    values, meta = torch.ops.sparse.dense_to_sparse24(a)
    values = values.clone()
    kp = values.shape[1] * 2
    meta32 = meta.to(torch.int32) & 0xFFFF
    for g in range((k + 3) // 4, kp // 4):
        values[:, 2 * g:2 * g + 2] = float("nan")
    if k % 4:
        g = k // 4
        nib = (meta32[:, g // 4] >> (4 * (g % 4))) & 0xF
        for s, pos in ((0, nib & 3), (1, nib >> 2)):
            values[4 * g + pos >= k, 2 * g + s] = float("nan")
    bw = random_dense(k, n + 3, dtype=torch.bfloat16, seed=n)
    bw[:, n:] = float("nan")
    b = bw[:, :n]
    out = torch.ops.sparse.sparse24_spmm(values, meta, b)
    assert_matches_reference(out, a.double() @ b.double(), torch.bfloat16, a @ b)


def test_sparse24_spmm_bf16_bad_meta_is_reported(isa):
    """The bf16 small-n kernel checks each row before using it (the next row's pair offsets are computed
    ahead, from a row not yet checked)."""
    k = 341
    a = random_24(9, k, torch.bfloat16)
    values, meta = torch.ops.sparse.dense_to_sparse24(a)
    for n in (2, 8, 16):
        b = random_dense(k, n, dtype=torch.bfloat16)
        for row in (0, 5, 8):
            bad = with_group_meta(meta, row, 40, 0b0110)
            with pytest.raises(ValueError, match=rf"'meta' of row {row}, group 40 .*positions \(2, 1\)"):
                torch.ops.sparse.sparse24_spmm(values, bad, b)


@pytest.mark.parametrize("n", [6, 11, 16])
@pytest.mark.parametrize("m,k", [(31, 256), (32, 257), (33, 271), (65, 512), (70, 520), (3, 15)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_sparse24_spmm_row_tiles_and_k_chunks(isa, m, k, n, dtype):
    """The broadcast form (n = 6..16) goes through rows in tiles of 32 and k in chunks of 16 meta words (256 columns), partial sums kept in fp32 between chunks: tile
    edges (31, 32, 33, 65, 70 rows), k at, just past and well past chunk edges with and without a tail past
    the last whole word, k shorter than one word; half precision must round once, at the end."""
    a = random_24(m, k, dtype, seed=n)
    b = random_dense(k, n, dtype=dtype, seed=n)
    out = torch.ops.sparse.sparse24_spmm(*torch.ops.sparse.dense_to_sparse24(a), b)
    assert_matches_reference(out, a.double() @ b.double(), dtype, f16_reference(a, b, dtype))


@pytest.mark.parametrize("n", [17, 63, 64, 65, 130])
@pytest.mark.parametrize("m,k", [(33, 271), (70, 64), (5, 15)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_sparse24_spmm_wide_packed_panels(isa, m, k, n, dtype):
    """n > 16: b in panels of 8 vectors (64 columns on AVX2, 128 on AVX-512), each copied to an fp32 buffer zero
    past n, then the broadcast form with k in chunks of 4 meta words (2 on AVX-512): panel edges, a partial last
    panel, k past chunk edges with a tail past the last whole word, k shorter than one word, 32-row tile edges."""
    a = random_24(m, k, dtype, seed=n)
    b = random_dense(k, n, dtype=dtype, seed=n + 1)
    out = torch.ops.sparse.sparse24_spmm(*torch.ops.sparse.dense_to_sparse24(a), b)
    assert_matches_reference(out, a.double() @ b.double(), dtype, f16_reference(a, b, dtype))
    bs = random_dense(k, 3 * n, dtype=dtype, seed=n + 2)[:, n: 2 * n]  # rows 3n elements apart
    out = torch.ops.sparse.sparse24_spmm(*torch.ops.sparse.dense_to_sparse24(a), bs)
    assert_matches_reference(out, a.double() @ bs.double(), dtype, f16_reference(a, bs, dtype))


def test_sparse24_spmm_strided_b(isa):
    a = random_24(20, 30)
    bt = random_dense(17, 30).T  # [30, 17], column-major
    out = torch.ops.sparse.sparse24_spmm(*torch.ops.sparse.dense_to_sparse24(a), bt)
    assert_matches_reference(out, a.double() @ bt.double(), torch.float32)


# ---- packing ------------------------------------------------------------------------
@pytest.mark.parametrize("m,k", [(0, 0), (0, 9), (3, 0), (1, 1), (5, 4), (7, 33), (16, 64), (9, 70)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_dense_to_sparse24_layout_and_round_trip(m, k, dtype):
    a = random_24(m, k, dtype)
    values, meta = torch.ops.sparse.dense_to_sparse24(a)
    kp = (k + 15) // 16 * 16
    assert values.dtype == dtype and values.shape == (m, kp // 2)
    assert meta.dtype == torch.int16 and meta.shape == (m, kp // 16)
    for t in (values, meta):
        assert t.is_contiguous() and t._base is None
    exp_values, exp_meta = sparse24_reference_pack(a)
    assert torch.equal(values, exp_values)
    assert torch.equal(meta, exp_meta)
    assert torch.equal(torch.ops.sparse.sparse24_to_dense(values, meta, k), a)


def test_dense_to_sparse24_non_contiguous_input():
    a = random_24(24, 19).T.contiguous().T  # column-major copy of the same matrix
    assert not a.is_contiguous()
    values, meta = torch.ops.sparse.dense_to_sparse24(a)
    exp_values, exp_meta = sparse24_reference_pack(a.contiguous())
    assert torch.equal(values, exp_values) and torch.equal(meta, exp_meta)


def test_dense_to_sparse24_negative_zero_is_zero():
    a = torch.tensor([[-0.0, 0.0, 3.0, -0.0, 1.0, -0.0, 2.0, 0.0]])
    values, meta = torch.ops.sparse.dense_to_sparse24(a)
    # group 0: one non-zero at 2 -> (0, 2) with (0, 3); group 1: (0, 2) with (1, 2)
    assert values[0, :4].tolist() == [0.0, 3.0, 1.0, 2.0]
    assert not torch.signbit(values).any()
    assert (int(meta[0, 0]) & 0xFF) == (0b1000 | 0b1000 << 4)


def test_sparse24_docs_example():
    """The worked example in docs/formats.md (2:4 section): k = 14, padded to kp = 16."""
    a = torch.tensor([[0, 5, 0, 7, 0, 0, 3, 0, 1, 0, 0, 0, 0, 6],
                      [4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 9, 2, 0]], dtype=torch.float16)
    values, meta = torch.ops.sparse.dense_to_sparse24(a)
    assert values.tolist() == [[5, 7, 0, 3, 1, 0, 0, 6],
                               [4, 0, 0, 0, 8, 9, 2, 0]]
    assert meta.tolist() == [[0x448D], [0x4E44]]
    assert torch.equal(torch.ops.sparse.sparse24_to_dense(values, meta, 14), a)


# ---- opcheck --------------------------------------------------------------------------
def test_sparse24_opcheck():
    a = random_24(9, 21)
    b = random_dense(21, 5)
    values, meta = torch.ops.sparse.dense_to_sparse24(a)
    torch.library.opcheck(torch.ops.sparse.sparse24_spmm.default, (values, meta, b))
    torch.library.opcheck(torch.ops.sparse.dense_to_sparse24.default, (a,))
    torch.library.opcheck(torch.ops.sparse.sparse24_to_dense.default, (values, meta, 21))


# ---- bad input ------------------------------------------------------------------------
def with_group_meta(meta, row, group, nibble):
    m32 = meta.to(torch.int32) & 0xFFFF
    w = group // 4
    m32[row, w] = (m32[row, w] & ~(0xF << (4 * (group % 4)))) | (nibble << (4 * (group % 4)))
    return torch.where(m32 >= 2**15, m32 - 2**16, m32).to(torch.int16)


class TestBadInput:
    def setup_method(self):
        self.k = 37  # kp = 48: values [m, 24], meta [m, 3]
        self.a = random_24(6, self.k)
        self.values, self.meta = torch.ops.sparse.dense_to_sparse24(self.a)
        self.b = random_dense(self.k, 4)

    @pytest.mark.parametrize("nibble,pos", [(0b0000, "0, 0"), (0b0101, "1, 1"), (0b0111, "3, 1"),
                                            (0b0010, "2, 0"), (0b1111, "3, 3")])
    @pytest.mark.parametrize("group", [0, 9, 11])  # 11: a padding group wholly past k
    def test_meta_positions_not_increasing(self, nibble, pos, group):
        meta = with_group_meta(self.meta, 4, group, nibble)
        msg = rf"'meta' of row 4, group {group} .*positions \({pos}\).*strictly increasing"
        with pytest.raises(ValueError, match=msg):
            torch.ops.sparse.sparse24_spmm(self.values, meta, self.b)
        with pytest.raises(ValueError, match=msg):
            torch.ops.sparse.sparse24_to_dense(self.values, meta, self.k)

    def test_first_bad_group_is_reported(self):
        meta = with_group_meta(with_group_meta(self.meta, 5, 0, 0), 2, 7, 0b1010)
        with pytest.raises(ValueError, match="row 2, group 7"):
            torch.ops.sparse.sparse24_spmm(self.values, meta, self.b)

    @pytest.mark.parametrize("n", [1, 3, 8, 40])
    @pytest.mark.parametrize("group", [0, 63, 66, 85, 86])
    def test_bad_group_in_each_part_of_the_row_check(self, isa, n, group):
        """k = 341: 22 meta words per row, which the kernel checks as one step of 16 words, one of 4 and two
        single words; groups 0 and 63 lie in the first part, 66 in the second, 85 (the last group inside k)
        and 86 (padding past k) in the last. Every kernel path (n = 1, select, broadcast, wide) checks."""
        k = 341
        a = random_24(9, k)
        values, meta = torch.ops.sparse.dense_to_sparse24(a)
        b = random_dense(k, n)
        bad = with_group_meta(meta, 7, group, 0b0110)  # positions (2, 1)
        with pytest.raises(ValueError, match=rf"'meta' of row 7, group {group} .*positions \(2, 1\)"):
            torch.ops.sparse.sparse24_spmm(values, bad, b)
        assert_matches_reference(torch.ops.sparse.sparse24_spmm(values, meta, b), a.double() @ b.double(),
                                 torch.float32)

    @pytest.mark.parametrize("k", [32, 49, 16])
    def test_shapes_do_not_match_k(self, k):
        # kp for these k is 32, 64, 16, not 48
        b = random_dense(k, 4)
        with pytest.raises(ValueError, match=r"'values' must have shape \[m, roundup\(k, 16\) / 2\]"):
            torch.ops.sparse.sparse24_spmm(self.values, self.meta, b)
        with pytest.raises(ValueError, match="'values' must have shape"):
            torch.ops.sparse.sparse24_to_dense(self.values, self.meta, k)

    def test_k_in_same_padding_is_accepted(self):
        # k = 33..48 share kp = 48: the format is valid for all of them
        out = torch.ops.sparse.sparse24_to_dense(self.values, self.meta, 40)
        assert torch.equal(out[:, :37], self.a) and (out[:, 37:] == 0).all()

    def test_meta_wrong_width(self):
        with pytest.raises(ValueError, match=r"'meta' must have shape \[m, roundup\(k, 16\) / 16\] = \[6, 3\]"):
            torch.ops.sparse.sparse24_spmm(self.values, self.meta[:, :2].contiguous(), self.b)

    def test_meta_wrong_rows(self):
        with pytest.raises(ValueError, match="'meta' must have shape"):
            torch.ops.sparse.sparse24_spmm(self.values, self.meta[:5], self.b)

    def test_meta_wrong_dtype(self):
        with pytest.raises(TypeError, match="'meta' must have dtype Short"):
            torch.ops.sparse.sparse24_spmm(self.values, self.meta.int(), self.b)

    def test_values_wrong_rank(self):
        with pytest.raises(ValueError, match="'values' must be a 2-D tensor"):
            torch.ops.sparse.sparse24_spmm(self.values.flatten(), self.meta, self.b)

    def test_meta_wrong_rank(self):
        with pytest.raises(ValueError, match="'meta' must be a 2-D tensor"):
            torch.ops.sparse.sparse24_to_dense(self.values, self.meta.flatten(), self.k)

    def test_values_not_contiguous(self):
        values = self.values.T.contiguous().T
        with pytest.raises(ValueError, match="'values' must be contiguous"):
            torch.ops.sparse.sparse24_spmm(values, self.meta, self.b)

    def test_dtype_mismatch(self):
        with pytest.raises(TypeError, match="same dtype"):
            torch.ops.sparse.sparse24_spmm(self.values, self.meta, self.b.half())

    def test_unsupported_dtype(self):
        with pytest.raises(TypeError, match="unsupported dtype"):
            torch.ops.sparse.sparse24_spmm(self.values.long(), self.meta, self.b.long())  # float64: test_float64.py
        with pytest.raises(TypeError, match="unsupported dtype"):
            torch.ops.sparse.sparse24_to_dense(self.values.long(), self.meta, self.k)

    def test_b_wrong_rank(self):
        with pytest.raises(ValueError, match="'b' must be a 2-D tensor"):
            torch.ops.sparse.sparse24_spmm(self.values, self.meta, self.b[:, 0])

    def test_negative_k(self):
        with pytest.raises(ValueError, match="non-negative"):
            torch.ops.sparse.sparse24_to_dense(self.values, self.meta, -1)

    @pytest.mark.parametrize("row,group,cols", [(0, 0, (0, 1, 3)), (2, 4, (16, 17, 18, 19)), (3, 8, (32, 33, 35))])
    def test_pack_pattern_violation(self, row, group, cols):
        a = self.a.clone()
        a[row, list(cols)] = 1.0
        a[5, 0:3] = 1.0  # a later violation: the first one is reported
        msg = rf"not 2:4 sparse: row {row}, group {group} \(columns {4 * group}..{4 * group + 3}\) has {len(cols)} non-zeros"
        with pytest.raises(ValueError, match=msg):
            torch.ops.sparse.dense_to_sparse24(a)

    def test_pack_wrong_rank(self):
        with pytest.raises(ValueError, match="'dense' must be a 2-D tensor"):
            torch.ops.sparse.dense_to_sparse24(self.a[None])

    def test_pack_wrong_dtype(self):
        with pytest.raises(TypeError, match="float32, float16, bfloat16 or float64"):
            torch.ops.sparse.dense_to_sparse24(self.a.long())
