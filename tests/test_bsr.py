"""sparse::bsr_spmm, sparse::dense_to_bsr and sparse::bsr_to_dense against float64 / torch references."""

import math
import warnings

import pytest
import torch

from conftest import DTYPES, assert_matches_reference, random_dense

BLOCKS = [(1, 4), (4, 1), (3, 5), (5, 3), (16, 16), (32, 32)]
SHAPES = [  # (m, k, n): none is a multiple of every block size; n covers panels, vector tail and scalar tail
    (0, 5, 3), (5, 0, 3), (5, 4, 0), (1, 1, 1), (7, 33, 1), (33, 7, 16), (70, 65, 45), (97, 130, 33), (40, 50, 200),
]


def random_block_sparse(m, k, r, c, dtype=torch.float32, block_density=0.4, seed=0):
    """Dense m x k with about `block_density` of its r x c blocks populated (70 % of their elements)."""
    g = torch.Generator().manual_seed(seed * 1000003 + m * 7919 + k * 31 + r * 7 + c)
    mb, kb = math.ceil(m / r), math.ceil(k / c)
    block_mask = torch.rand(mb, kb, generator=g) < block_density
    mask = block_mask.repeat_interleave(r, 0).repeat_interleave(c, 1)[:m, :k]
    mask &= torch.rand(m, k, generator=g) < 0.7
    vals = torch.randn(m, k, generator=g, dtype=torch.float64)
    vals = torch.where(vals.abs() < 0.05, torch.full_like(vals, 0.5), vals)
    return (vals * mask).to(dtype)


def bsr_reference_pack(dense, r, c, index_dtype=torch.int32):
    """An independent BSR packer in torch: pad to whole blocks, keep blocks with a non-zero."""
    m, k = dense.shape
    mb, kb = math.ceil(m / r), math.ceil(k / c)
    padded = dense.new_zeros(mb * r, kb * c)
    padded[:m, :k] = dense
    tiles = padded.reshape(mb, r, kb, c).permute(0, 2, 1, 3)  # [mb, kb, r, c]
    keep = (tiles != 0).flatten(2).any(-1)  # [mb, kb]
    rows, cols = keep.nonzero(as_tuple=True)
    row_ptr = torch.zeros(mb + 1, dtype=torch.int64)
    row_ptr[1:] = torch.cumsum(keep.sum(1), 0)
    return row_ptr.to(index_dtype), cols.to(index_dtype), tiles[rows, cols].contiguous()


def f16_reference(dense, b, dtype):
    return None if dtype == torch.float32 else dense @ b


@pytest.mark.parametrize("m,k,n", SHAPES)
@pytest.mark.parametrize("r,c", BLOCKS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_bsr_spmm_matches_reference(isa, m, k, n, r, c, dtype):
    a = random_block_sparse(m, k, r, c, dtype)
    b = random_dense(k, n, dtype=dtype, seed=1)
    parts = torch.ops.sparse.dense_to_bsr(a, r, c)
    out = torch.ops.sparse.bsr_spmm(*parts, b, m)
    assert_matches_reference(out, a.double() @ b.double(), dtype, f16_reference(a, b, dtype))


@pytest.mark.parametrize("index_dtype", [torch.int32, torch.int64])
@pytest.mark.parametrize("block_density", [0.0, 1.0])
def test_bsr_spmm_index_dtypes_empty_and_full(isa, index_dtype, block_density):
    m, k, n, r, c = 37, 45, 19, 4, 8
    a = random_block_sparse(m, k, r, c, block_density=block_density)
    if block_density == 1.0:
        a = random_dense(m, k, seed=3)  # every element non-zero
    b = random_dense(k, n)
    parts = bsr_reference_pack(a, r, c, index_dtype)
    assert parts[1].numel() == (0 if block_density == 0.0 else math.ceil(m / r) * math.ceil(k / c))
    out = torch.ops.sparse.bsr_spmm(*parts, b, m)
    assert_matches_reference(out, a.double() @ b.double(), torch.float32)


@pytest.mark.parametrize("r,c", [(1, 4), (16, 16)])
def test_bsr_spmm_large_split_across_threads(isa, r, c):
    m, k, n = 513, 257, 64
    a = random_block_sparse(m, k, r, c, block_density=0.3)
    b = random_dense(k, n)
    out = torch.ops.sparse.bsr_spmm(*torch.ops.sparse.dense_to_bsr(a, r, c), b, m)
    assert_matches_reference(out, a.double() @ b.double(), torch.float32)


def test_bsr_spmm_empty_block_rows(isa):
    a = random_block_sparse(40, 30, 4, 3, block_density=0.6)
    a[8:20] = 0  # block rows 2..4 empty
    a[36:] = 0  # the last block row too
    b = random_dense(30, 21)
    parts = torch.ops.sparse.dense_to_bsr(a, 4, 3)
    assert (parts[0][3:6] == parts[0][2]).all() and parts[0][-1] == parts[0][-2]
    out = torch.ops.sparse.bsr_spmm(*parts, b, 40)
    assert_matches_reference(out, a.double() @ b.double(), torch.float32)


@pytest.mark.parametrize("n", [1, 9, 40])
def test_bsr_spmm_never_reads_padding(isa, n):
    """NaN in the padding of every edge block must not reach the output (nor an index past k of b)."""
    m, k, r, c = 13, 22, 5, 6  # 3 x 4 block grid, last block row has 3 rows, last block column 4 columns
    a = random_block_sparse(m, k, r, c, block_density=1.0)
    row_ptr, col_idx, blocks = bsr_reference_pack(a, r, c)
    assert col_idx.numel() == 12
    blocks = blocks.clone()
    for p in range(12):
        bi, bj = p // 4, int(col_idx[p])
        rows, cols = min(r, m - bi * r), min(c, k - bj * c)
        blocks[p, rows:, :] = float("nan")
        blocks[p, :, cols:] = float("nan")
    assert blocks.isnan().any()
    b = random_dense(k, n)
    out = torch.ops.sparse.bsr_spmm(row_ptr, col_idx, blocks, b, m)
    assert_matches_reference(out, a.double() @ b.double(), torch.float32)
    assert torch.equal(torch.ops.sparse.bsr_to_dense(row_ptr, col_idx, blocks, m, k), a)


def test_bsr_spmm_unsorted_and_duplicate_blocks_are_summed(isa):
    row_ptr = torch.tensor([0, 3, 3], dtype=torch.int32)
    col_idx = torch.tensor([1, 0, 1], dtype=torch.int32)
    blocks = random_dense(3, 2, 2, seed=5)
    b = random_dense(4, 11, seed=6)
    expected = torch.zeros(4, 4, dtype=torch.float64)
    expected[0:2, 2:4] = blocks[0].double() + blocks[2].double()
    expected[0:2, 0:2] = blocks[1].double()
    out = torch.ops.sparse.bsr_spmm(row_ptr, col_idx, blocks, b, 4)
    assert_matches_reference(out, expected @ b.double(), torch.float32)
    dense = torch.ops.sparse.bsr_to_dense(row_ptr, col_idx, blocks, 4, 4)
    torch.testing.assert_close(dense.double(), expected, rtol=1e-6, atol=0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("r,c", [(1, 4), (4, 1), (2, 3), (5, 3), (8, 8), (6, 16), (32, 32)])
def test_bsr_spmm_wide_n_column_blocks(isa, r, c, dtype):
    """n >= 1024: the direct path (r > 4) copies b in column blocks of 64 to a buffer, the last block partial;
    r <= 4 takes the tiled path's panels. Padding of the edge blocks is NaN, so a block that reads it shows."""
    m, k, n = 45, 70, 1100
    a = random_block_sparse(m, k, r, c, dtype, block_density=0.5)
    row_ptr, col_idx, blocks = bsr_reference_pack(a, r, c)
    blocks = blocks.clone()
    for p in range(col_idx.numel()):
        bi = int(torch.searchsorted(row_ptr[1:], torch.tensor(p, dtype=row_ptr.dtype), right=True))
        bj = int(col_idx[p])
        blocks[p, min(r, m - bi * r):, :] = float("nan")
        blocks[p, :, min(c, k - bj * c):] = float("nan")
    b = random_dense(k, n, dtype=dtype)
    out = torch.ops.sparse.bsr_spmm(row_ptr, col_idx, blocks, b, m)
    assert_matches_reference(out, a.double() @ b.double(), dtype, f16_reference(a, b, dtype))


def test_bsr_spmm_strided_b(isa):
    a = random_block_sparse(20, 30, 4, 4)
    bt = random_dense(17, 30).T  # [30, 17], column-major
    out = torch.ops.sparse.bsr_spmm(*torch.ops.sparse.dense_to_bsr(a, 4, 4), bt, 20)
    assert_matches_reference(out, a.double() @ bt.double(), torch.float32)


# ---- packing ------------------------------------------------------------------------
@pytest.mark.parametrize("m,k", [(0, 0), (0, 7), (7, 0), (1, 1), (13, 22), (64, 64), (33, 100)])
@pytest.mark.parametrize("r,c", BLOCKS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_dense_to_bsr_layout_and_round_trip(m, k, r, c, dtype):
    a = random_block_sparse(m, k, r, c, dtype, block_density=0.5)
    row_ptr, col_idx, blocks = torch.ops.sparse.dense_to_bsr(a, r, c)
    exp_row_ptr, exp_col_idx, exp_blocks = bsr_reference_pack(a, r, c)
    assert row_ptr.dtype == col_idx.dtype == torch.int32
    assert blocks.dtype == dtype and blocks.shape == (col_idx.numel(), r, c)
    assert torch.equal(row_ptr, exp_row_ptr)
    assert torch.equal(col_idx, exp_col_idx)
    assert torch.equal(blocks, exp_blocks)  # padding written as exact zeros
    for t in (row_ptr, col_idx, blocks):
        assert t.is_contiguous() and t._base is None
    assert torch.equal(torch.ops.sparse.bsr_to_dense(row_ptr, col_idx, blocks, m, k), a)
    assert torch.equal(torch.ops.sparse.bsr_to_dense(row_ptr.long(), col_idx.long(), blocks, m, k), a)


@pytest.mark.parametrize("r,c", [(1, 4), (4, 1), (2, 3), (16, 16)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_dense_to_bsr_matches_torch(r, c, dtype):
    m, k = 4 * r * 3, 5 * c  # divisible, as torch requires
    a = random_block_sparse(m, k, r, c, dtype, block_density=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "BSR support is in beta"
        ref = a.to_sparse_bsr((r, c))
    row_ptr, col_idx, blocks = torch.ops.sparse.dense_to_bsr(a, r, c)
    assert torch.equal(row_ptr.long(), ref.crow_indices())
    assert torch.equal(col_idx.long(), ref.col_indices())
    assert torch.equal(blocks, ref.values())


def test_dense_to_bsr_drops_zero_blocks_and_negative_zero():
    a = torch.zeros(4, 6)
    a[0, 0] = -0.0
    a[3, 5] = 2.0
    a[1, 2] = float("nan")  # NaN != 0: kept
    row_ptr, col_idx, blocks = torch.ops.sparse.dense_to_bsr(a, 2, 3)
    assert row_ptr.tolist() == [0, 1, 2]
    assert col_idx.tolist() == [0, 1]
    assert blocks[0].isnan().sum() == 1 and blocks[0, 1, 2].isnan()
    assert blocks[1].tolist() == [[0, 0, 0], [0, 0, 2]]


def test_dense_to_bsr_non_contiguous_input():
    a = random_block_sparse(30, 20, 4, 4).T  # [20, 30] transposed view
    parts = torch.ops.sparse.dense_to_bsr(a, 4, 4)
    assert all(torch.equal(x, y) for x, y in zip(parts, bsr_reference_pack(a.contiguous(), 4, 4)))


def test_bsr_docs_example():
    """The worked example in docs/formats.md (BSR section)."""
    a = torch.tensor([[1, 2, 0, 0, 0],
                      [0, 3, 0, 0, 0],
                      [0, 0, 0, 0, 4],
                      [0, 0, 0, 0, 0],
                      [0, 0, 5, 0, 0]], dtype=torch.float16)
    row_ptr, col_idx, blocks = torch.ops.sparse.dense_to_bsr(a, 2, 2)
    assert row_ptr.tolist() == [0, 1, 2, 3]
    assert col_idx.tolist() == [0, 2, 1]
    assert blocks.tolist() == [[[1, 2], [0, 3]], [[4, 0], [0, 0]], [[5, 0], [0, 0]]]


# ---- opcheck --------------------------------------------------------------------------
def test_bsr_opcheck():
    a = random_block_sparse(9, 14, 2, 4, block_density=0.6)
    b = random_dense(14, 5)
    parts = torch.ops.sparse.dense_to_bsr(a, 2, 4)
    torch.library.opcheck(torch.ops.sparse.bsr_spmm.default, (*parts, b, 9))
    torch.library.opcheck(torch.ops.sparse.dense_to_bsr.default, (a, 2, 4))
    torch.library.opcheck(torch.ops.sparse.bsr_to_dense.default, (*parts, 9, 14))


# ---- bad input ------------------------------------------------------------------------
class TestBadInput:
    def setup_method(self):
        self.a = random_block_sparse(10, 12, 2, 3, block_density=0.7)  # 5 x 4 block grid
        self.parts = bsr_reference_pack(self.a, 2, 3)
        self.b = random_dense(12, 3)

    def spmm(self, row_ptr=None, col_idx=None, blocks=None, b=None, m=10):
        rp, ci, bl = self.parts
        return torch.ops.sparse.bsr_spmm(
            rp if row_ptr is None else row_ptr, ci if col_idx is None else col_idx,
            bl if blocks is None else blocks, self.b if b is None else b, m)

    def to_dense(self, row_ptr=None, col_idx=None, blocks=None, m=10, k=12):
        rp, ci, bl = self.parts
        return torch.ops.sparse.bsr_to_dense(
            rp if row_ptr is None else row_ptr, ci if col_idx is None else col_idx,
            bl if blocks is None else blocks, m, k)

    @pytest.mark.parametrize("call", ["spmm", "to_dense"])
    def test_row_ptr_not_monotone(self, call):
        row_ptr = self.parts[0].clone()
        row_ptr[2] = row_ptr[3] + 1
        with pytest.raises(ValueError, match=r"block_row_ptr' must be non-decreasing.*block_row_ptr\[2\]"):
            getattr(self, call)(row_ptr=row_ptr)

    @pytest.mark.parametrize("call", ["spmm", "to_dense"])
    def test_row_ptr_first_not_zero(self, call):
        row_ptr = self.parts[0].clone()
        row_ptr[0] = 1
        with pytest.raises(ValueError, match=r"block_row_ptr\[0\]' must be 0"):
            getattr(self, call)(row_ptr=row_ptr)

    def test_row_ptr_end_not_nnzb(self):
        row_ptr = self.parts[0].clone()
        row_ptr[-1] -= 1
        with pytest.raises(ValueError, match="must equal nnzb"):
            self.spmm(row_ptr=row_ptr)

    def test_row_ptr_wrong_length_for_m(self):
        with pytest.raises(ValueError, match=r"ceil\(m / r\) \+ 1 = 7"):
            self.spmm(m=11)
        with pytest.raises(ValueError, match=r"ceil\(m / r\) \+ 1"):
            self.to_dense(m=8)

    @pytest.mark.parametrize("bad", [-1, 4, 2**31 - 1])
    @pytest.mark.parametrize("call", ["spmm", "to_dense"])
    def test_col_idx_out_of_range(self, bad, call):
        col_idx = self.parts[1].clone()
        col_idx[1] = bad
        with pytest.raises(ValueError, match=r"block_col_idx\[1\]' = .* out of range"):
            getattr(self, call)(col_idx=col_idx)

    def test_col_idx_out_of_range_for_k_from_b(self):
        # b with fewer rows: the last block column (cols 9..11) no longer exists
        with pytest.raises(ValueError, match="out of range"):
            self.spmm(b=self.b[:9])

    def test_blocks_count_mismatch(self):
        with pytest.raises(ValueError, match="same length"):
            self.spmm(blocks=self.parts[2][:-1])

    def test_blocks_wrong_rank(self):
        with pytest.raises(ValueError, match="'blocks' must be a 3-D tensor"):
            self.spmm(blocks=self.parts[2].flatten(1))

    def test_blocks_zero_block_size(self):
        n = self.parts[1].numel()
        with pytest.raises(ValueError, match="r, c >= 1"):
            self.spmm(blocks=torch.zeros(n, 0, 3))

    def test_blocks_shape_changes_r(self):
        # 3 x 3 blocks imply ceil(10 / 3) + 1 = 5 block-row pointers, not 6
        n = self.parts[1].numel()
        with pytest.raises(ValueError, match=r"ceil\(m / r\) \+ 1 = 5"):
            self.spmm(blocks=torch.zeros(n, 3, 3))

    def test_blocks_not_contiguous(self):
        blocks = self.parts[2].transpose(1, 2).contiguous().transpose(1, 2)
        with pytest.raises(ValueError, match="'blocks' must be contiguous"):
            self.spmm(blocks=blocks)

    def test_index_dtype_mismatch(self):
        with pytest.raises(TypeError, match="same dtype"):
            self.spmm(row_ptr=self.parts[0].long())

    def test_float_indices(self):
        with pytest.raises(TypeError, match="index dtype"):
            self.spmm(row_ptr=self.parts[0].float(), col_idx=self.parts[1].float())

    def test_dtype_mismatch(self):
        with pytest.raises(TypeError, match="'blocks' and 'b' must have the same dtype"):
            self.spmm(b=self.b.half())

    def test_unsupported_dtype(self):
        with pytest.raises(TypeError, match="unsupported dtype"):
            self.spmm(blocks=self.parts[2].long(), b=self.b.long())  # float64: test_float64.py
        with pytest.raises(TypeError, match="unsupported dtype"):
            self.to_dense(blocks=self.parts[2].long())

    def test_b_wrong_rank(self):
        with pytest.raises(ValueError, match="2-D"):
            self.spmm(b=self.b[0])

    def test_negative_m(self):
        with pytest.raises(ValueError, match="non-negative"):
            self.to_dense(m=-2)

    @pytest.mark.parametrize("r,c", [(0, 3), (2, 0), (-1, 1)])
    def test_pack_bad_block_size(self, r, c):
        with pytest.raises(ValueError, match="block size"):
            torch.ops.sparse.dense_to_bsr(self.a, r, c)

    def test_pack_wrong_rank(self):
        with pytest.raises(ValueError, match="'dense' must be a 2-D tensor"):
            torch.ops.sparse.dense_to_bsr(self.a[0], 2, 2)

    def test_pack_wrong_dtype(self):
        with pytest.raises(TypeError, match="float32, float16, bfloat16 or float64"):
            torch.ops.sparse.dense_to_bsr(self.a.long(), 2, 2)
        with pytest.raises(TypeError, match="float32, float16, bfloat16 or float64"):
            torch.ops.sparse.dense_to_bsr(self.a.int(), 2, 2)


# ---- tiled path (r <= 4, n >= 64, stored values >= 8 k): b packed in panels, K chunks, row groups -----
# Panel widths W = (8, 4, 4, 3 vectors for r = 1, 2, 3, 4) x (4 scalar, 8 AVX2, 16 AVX-512 lanes); a K chunk
# holds 32768 / W rows of the panel (256 .. 2730 rows), a row group 8192 / (W r) block rows.
def _nan_padding(a, row_ptr, col_idx, blocks, r, c):
    """A copy of `blocks` whose padding (outside m x k) is NaN, so a kernel that reads it shows."""
    m, k = a.shape
    mb, kb = math.ceil(m / r), math.ceil(k / c)
    blocks = blocks.clone()
    block_row = torch.repeat_interleave(torch.arange(mb), (row_ptr[1:] - row_ptr[:-1]).long())
    edge = (block_row == mb - 1) | (col_idx.long() == kb - 1)  # only edge blocks have padding
    for p in edge.nonzero().flatten().tolist():
        bi, bj = int(block_row[p]), int(col_idx[p])
        blocks[p, min(r, m - bi * r):, :] = float("nan")
        blocks[p, :, min(c, k - bj * c):] = float("nan")
    return blocks


def _check_with_nan_padding(m, k, n, r, c, block_density, seed):
    """bsr_spmm of a random block-sparse m x k (r x c blocks, edge-block padding NaN) against float64."""
    a = random_block_sparse(m, k, r, c, block_density=block_density, seed=seed)
    row_ptr, col_idx, blocks = bsr_reference_pack(a, r, c)
    blocks = _nan_padding(a, row_ptr, col_idx, blocks, r, c)
    b = random_dense(k, n, seed=seed)
    out = torch.ops.sparse.bsr_spmm(row_ptr, col_idx, blocks, b, m)
    assert_matches_reference(out, a.double() @ b.double(), torch.float32)


@pytest.mark.parametrize("r,c", [(1, 4), (4, 1), (2, 3), (3, 2), (4, 4), (1, 1), (2, 1), (3, 1), (3, 7)])
@pytest.mark.parametrize("n", [63, 64, 65, 96, 97, 129, 160])
def test_bsr_spmm_tiled_panel_edges(isa, r, c, n):
    """n just below / at / above the tiled threshold (64) and the panel widths (24..64 columns per ISA); m, k not
    multiples of r, c; edge-block padding NaN. r x 1 blocks take their own loop on both paths."""
    _check_with_nan_padding(40 * r + r // 2 + 1, 9 * c + 1, n, r, c, block_density=0.6, seed=n)


@pytest.mark.parametrize("n", [1023, 1024, 1030])
def test_bsr_spmm_4x1_wide_n(isa, n):
    """4x1 blocks at wide n (many panels; the per-call sortedness of the block rows reused by each): k = 1500
    crossing a K chunk, a partial last block row, edge-block padding NaN."""
    _check_with_nan_padding(65, 1500, n, 4, 1, block_density=0.5, seed=n)


@pytest.mark.parametrize("r,c", [(1, 4), (4, 1), (2, 3), (3, 5)])
@pytest.mark.parametrize("index_dtype", [torch.int32, torch.int64])
def test_bsr_spmm_tiled_k_chunks_and_row_groups(isa, r, c, index_dtype):
    """k = 3001 crosses a K chunk edge on every ISA and block shape (c not dividing the chunk), m spans several
    row groups, empty block rows, the last block row partial."""
    m, k, n = 700 + (r > 1), 3001, 70
    a = random_block_sparse(m, k, r, c, block_density=0.15, seed=2)
    a[5 * r: 9 * r] = 0  # empty block rows
    a[:, : 37 * c] = 0  # leading K chunks empty for every row
    row_ptr, col_idx, blocks = bsr_reference_pack(a, r, c, index_dtype)
    blocks = _nan_padding(a, row_ptr, col_idx, blocks, r, c)
    b = random_dense(k, n, seed=3)
    out = torch.ops.sparse.bsr_spmm(row_ptr, col_idx, blocks, b, m)
    assert_matches_reference(out, a.double() @ b.double(), torch.float32)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("r,c", [(1, 4), (4, 1)])
def test_bsr_spmm_tiled_dtypes(isa, dtype, r, c):
    """16-bit values accumulate in fp32 across K chunks (rounded once, on store)."""
    m, k, n = 203, 777, 130
    a = random_block_sparse(m, k, r, c, dtype, block_density=0.3, seed=4)
    b = random_dense(k, n, dtype=dtype, seed=5)
    out = torch.ops.sparse.bsr_spmm(*torch.ops.sparse.dense_to_bsr(a, r, c), b, m)
    assert_matches_reference(out, a.double() @ b.double(), dtype, f16_reference(a, b, dtype))


@pytest.mark.parametrize("r,c", [(1, 4), (4, 1), (2, 2)])
def test_bsr_spmm_tiled_unsorted_and_duplicates(isa, r, c):
    """Block rows with unsorted block columns and duplicates (summed) next to sorted ones, on the tiled path."""
    m, k, n = 150 * r, 400 * c, 80
    a = random_block_sparse(m, k, r, c, block_density=0.2, seed=7)
    row_ptr, col_idx, blocks = bsr_reference_pack(a, r, c, torch.int64)
    col_idx, blocks = col_idx.clone(), blocks.clone()
    expected = a.double().clone()
    for bi in (1, 4, 8):  # reverse these block rows, then duplicate their first block (its value is added)
        p0, p1 = int(row_ptr[bi]), int(row_ptr[bi + 1])
        assert p1 - p0 >= 3
        col_idx[p0:p1] = col_idx[p0:p1].flip(0)
        blocks[p0:p1] = blocks[p0:p1].flip(0)
    dup = int(row_ptr[4])  # block row 4: one more copy of its (now first) block, inserted after its last
    col_idx = torch.cat([col_idx[: int(row_ptr[5])], col_idx[dup: dup + 1], col_idx[int(row_ptr[5]):]])
    blocks = torch.cat([blocks[: int(row_ptr[5])], blocks[dup: dup + 1], blocks[int(row_ptr[5]):]])
    row_ptr = row_ptr.clone()
    row_ptr[5:] += 1
    j = int(col_idx[dup])
    expected[4 * r: 5 * r, j * c: (j + 1) * c] += blocks[dup].double()
    b = random_dense(k, n, seed=8)
    out = torch.ops.sparse.bsr_spmm(row_ptr, col_idx, blocks, b, m)
    assert_matches_reference(out, expected @ b.double(), torch.float32)


def test_bsr_spmm_tiled_strided_b_and_nonfinite_b(isa):
    """b column-major (the glue copies its rows), and an inf in b reaches exactly the rows that store a block
    over that row of b (a stored zero times inf is NaN, as in dense arithmetic)."""
    m, k, n = 101, 90, 100
    a = random_block_sparse(m, k, 1, 4, block_density=0.3, seed=9)
    bt = random_dense(n, k, seed=10).T
    out = torch.ops.sparse.bsr_spmm(*torch.ops.sparse.dense_to_bsr(a, 1, 4), bt, m)
    assert_matches_reference(out, a.double() @ bt.double(), torch.float32)
    b = bt.contiguous()
    kk = int(a.abs().sum(0).argmax())
    b[kk, 5] = float("inf")
    out = torch.ops.sparse.bsr_spmm(*torch.ops.sparse.dense_to_bsr(a, 1, 4), b, m)
    j = kk // 4
    hit = (a[:, 4 * j: 4 * j + 4] != 0).any(1)
    assert hit.any() and not hit.all()
    assert (~torch.isfinite(out[hit, 5])).all()
    assert torch.isfinite(out[~hit]).all() and torch.isfinite(out[:, :5]).all() and torch.isfinite(out[:, 6:]).all()
