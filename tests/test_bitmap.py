"""The bitmap format: sparse::bitmap_spmm, dense_to_bitmap, bitmap_to_dense.

The layout (docs/formats.md, bitmap) is pinned by `layout_pack` below, an
independent element-by-element re-implementation of the packer: the C++ packer
must match it bit for bit, and the SpMM kernel must read what it writes.
"""

import pytest
import torch

from conftest import DTYPES, assert_matches_reference, random_dense, random_sparse


@pytest.fixture
def isa(isa_all):
    """Every CPU variant, avx512bf16 included: bf16 bitmap SpMM has vdpbf16ps paths there."""
    return isa_all

SIZES = [0, 1, 7, 33, 65, 1025]
NS = [0, 1, 7, 16, 33]
U64 = 2**64


def _has_kernel(op, device):
    return torch._C._dispatch_has_kernel_for_dispatch_key(f"sparse::{op}", device.upper())


@pytest.fixture
def spmm_device(device):
    if not _has_kernel("bitmap_spmm", device):
        pytest.skip(f"sparse::bitmap_spmm has no {device} kernel in this build")
    return device


def pack(dense):
    return torch.ops.sparse.dense_to_bitmap(dense)


def packed_on(dense, device):
    """The format packed on the CPU, moved to `device` (SpMM tests do not depend on a device packer)."""
    return [t.to(device) for t in pack(dense.cpu())]


def to_signed64(mask):
    return mask - U64 if mask >= 2**63 else mask


def layout_pack(dense):
    """docs/formats.md's bitmap layout, written out element by element in Python."""
    m, k = dense.shape
    gm, gk = -(-m // 64), -(-k // 64)
    offsets, bitmaps, values = [0], [], []
    for g in range(gm * gk):
        gi, gj = divmod(g, gk)
        count = 0
        for t in range(64):
            f, q = divmod(t, 4)
            fr, fc = divmod(f, 4)
            row0 = 64 * gi + 16 * fr + (8 if q in (1, 3) else 0)
            col0 = 64 * gj + 16 * fc + (8 if q in (2, 3) else 0)
            mask = 0
            for bit in range(64):
                r, c = row0 + bit // 8, col0 + bit % 8
                if r < m and c < k and dense[r, c].item() != 0:
                    mask |= 1 << bit
                    values.append(dense[r, c].item())
                    count += 1
            bitmaps.append(to_signed64(mask))
        while count % 8:
            values.append(0.0)
            count += 1
        offsets.append(offsets[-1] + count)
    return (
        torch.tensor(offsets, dtype=torch.int64),
        torch.tensor(bitmaps, dtype=torch.int64),
        torch.tensor(values, dtype=torch.float64).to(dense.dtype),
    )


def ref_and_torch(a, b, dtype):
    ref = a.double().cpu() @ b.double().cpu()
    return ref, (a @ b if dtype != torch.float32 else None)


# ---- SpMM against the float64 reference ----------------------------------------
@pytest.mark.parametrize("k", SIZES)
@pytest.mark.parametrize("m", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_bitmap_spmm_matches_reference(isa, spmm_device, m, k, dtype):
    a = random_sparse(m, k, 0.3, dtype, empty_rows=(0, 3, 64))
    parts = packed_on(a, spmm_device)
    a = a.to(spmm_device)
    for n in NS:
        b = random_dense(k, n, dtype=dtype, device=spmm_device, seed=n)
        out = torch.ops.sparse.bitmap_spmm(*parts, b, m)
        ref, same = ref_and_torch(a, b, dtype)
        assert_matches_reference(out, ref, dtype, same)


@pytest.mark.parametrize("density", [0.0, 1.0, 0.02])
@pytest.mark.parametrize("n", [1, 5, 40])
def test_bitmap_spmm_density(isa, spmm_device, density, n):
    a = random_sparse(130, 200, density, device=spmm_device)
    b = random_dense(200, n, device=spmm_device)
    out = torch.ops.sparse.bitmap_spmm(*packed_on(a, spmm_device), b, 130)
    assert_matches_reference(out, a.double().cpu() @ b.double().cpu(), torch.float32)


@pytest.mark.parametrize("n", [1, 9, 70])
def test_bitmap_spmm_mixed_groups(isa, spmm_device, n):
    """Empty groups, full groups, a lone element, empty rows and empty columns side by side."""
    a = torch.zeros(150, 200)
    a[:64, 64:128] = random_dense(64, 64, seed=3)  # a full group
    a[64:128, :] = random_sparse(64, 200, 0.5)  # a half-full group row
    a[70:80] = 0  # empty rows inside it
    a[:, 150:160] = 0  # empty columns
    a[149, 199] = 2.5  # a lone element in the corner group
    a = a.to(spmm_device)
    b = random_dense(200, n, device=spmm_device)
    out = torch.ops.sparse.bitmap_spmm(*packed_on(a, spmm_device), b, 150)
    assert_matches_reference(out, a.double().cpu() @ b.double().cpu(), torch.float32)


@pytest.mark.parametrize("n", [256, 300, 529])
def test_bitmap_spmm_wide_n(isa, spmm_device, n):
    """n beyond the kernel's 256-column pass: several passes, the last one partial."""
    a = random_sparse(70, 90, 0.3, device=spmm_device, empty_rows=(2,))
    b = random_dense(90, n, device=spmm_device)
    out = torch.ops.sparse.bitmap_spmm(*packed_on(a, spmm_device), b, 70)
    assert_matches_reference(out, a.double().cpu() @ b.double().cpu(), torch.float32)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [511, 512, 1030])
def test_bitmap_spmm_wide_n_packed_b(isa, dtype, n):
    """The decode at n > 16 (density below the dense-tile threshold) copies each 256-column pass of b into a
    contiguous buffer when b's rows are >= 2 KiB apart (fp32 from n = 512, 16-bit from 1024); the last pass
    partial, edge groups in m and k."""
    a = random_sparse(70, 90, 0.2, dtype, empty_rows=(2,))
    b = random_dense(90, n, dtype=dtype, seed=n)
    out = torch.ops.sparse.bitmap_spmm(*pack(a), b, 70)
    ref, same = ref_and_torch(a, b, dtype)
    assert_matches_reference(out, ref, dtype, same)


def test_bitmap_spmm_wide_n_packed_b_non_finite_and_strided():
    """Packed b keeps its values: an inf in b reaches exactly the rows storing its column; a column slice of a
    wide b (rows 4 KiB apart, 40 columns) takes the packed decode too. (Density 0.2: below the dense tile.)"""
    a = random_sparse(70, 90, 0.2)
    a[:, 13] = 0
    a[[4, 40], 13] = 1.5
    b = random_dense(90, 600, seed=3)
    b[13, 333] = float("inf")
    out = torch.ops.sparse.bitmap_spmm(*pack(a), b, 70)
    hit = torch.zeros(70, dtype=torch.bool)
    hit[[4, 40]] = True
    assert not out[hit, 333].isfinite().any() and out[~hit].isfinite().all()
    b_ok = b.clone()
    b_ok[13, 333] = 0.0
    ref = a.double() @ b_ok.double()
    assert_matches_reference(out[~hit], ref[~hit], torch.float32)
    bs = random_dense(90, 1024, seed=4)[:, 100:140]
    out = torch.ops.sparse.bitmap_spmm(*pack(a), bs, 70)
    assert_matches_reference(out, a.double() @ bs.double(), torch.float32)


@pytest.mark.parametrize("n", [2, 8, 9, 12])
def test_bitmap_spmm_path_boundaries(isa, spmm_device, n):
    """n at the edges of the kernel's paths (expansion up to 8, register decode up to 16), odd m and k."""
    a = random_sparse(97, 131, 0.4, device=spmm_device, empty_rows=(0, 64))
    b = random_dense(131, n, device=spmm_device, seed=n)
    out = torch.ops.sparse.bitmap_spmm(*packed_on(a, spmm_device), b, 97)
    assert_matches_reference(out, a.double().cpu() @ b.double().cpu(), torch.float32)


# The CPU kernel multiplies n >= 9 columns either through a dense 64 x 64 tile
# per group (density above a threshold that grows with n: 0.25 up to n = 16,
# 0.35 up to 64, 0.5 above; bf16 under avx512bf16 0.05, 0.2, 0.25) or through
# per-row decoded lists. Each case below is run at a density on each side of
# every threshold.
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [9, 16, 17, 24, 30, 40, 60, 64, 65, 130])
@pytest.mark.parametrize("density", [0.03, 0.1, 0.22, 0.3, 0.45, 0.7, 1.0])
def test_bitmap_spmm_tile_and_decode_paths(isa, spmm_device, dtype, n, density):
    """Odd m and k (edge groups in both directions), several 64-column chunks, every dtype."""
    a = random_sparse(97, 131, density, dtype, device=spmm_device, empty_rows=(0, 64, 96))
    b = random_dense(131, n, dtype=dtype, device=spmm_device, seed=n)
    out = torch.ops.sparse.bitmap_spmm(*packed_on(a, spmm_device), b, 97)
    ref, same = ref_and_torch(a, b, dtype)
    assert_matches_reference(out, ref, dtype, same)


@pytest.mark.parametrize("n", [9, 16, 33, 64, 65, 130])
@pytest.mark.parametrize("k", [63, 64, 65, 131, 200])
def test_bitmap_spmm_bf16_tile_path(isa, n, k):
    """bf16 through the dense tile (avx512bf16: the group expanded in bf16 and multiplied by b's rows in
    pairs, the last pair half past k when k is odd, 64-column chunks with a partial last one), b contiguous
    and with a row stride; the last group's values end the array (masked loads there)."""
    a = random_sparse(71, k, 0.6, torch.bfloat16, empty_rows=(0, 70))
    parts = pack(a)
    past = random_dense(k + 1, n, dtype=torch.bfloat16, seed=n)
    past[k] = float("nan")  # the row after b's last: a copy that read it would put NaN in every row
    for b in (random_dense(k, n, dtype=torch.bfloat16, seed=n),
              random_dense(k, n + 9, dtype=torch.bfloat16, seed=n)[:, 4 : 4 + n], past[:k]):
        out = torch.ops.sparse.bitmap_spmm(*parts, b, 71)
        assert_matches_reference(out, a.double() @ b.double(), torch.bfloat16, a @ b)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 8])
@pytest.mark.parametrize("m,k", [(1, 1), (9, 63), (71, 65), (130, 200), (64, 1030)])
def test_bitmap_spmm_bf16_expansion(isa, m, k, n):
    """bf16, n <= 8 (avx512bf16, n != 2: tile rows expanded in bf16 and multiplied with vdpbf16ps against
    b copied in bf16, zero past k, in 8-row blocks of 4 or 8 columns): b contiguous, strided, and with NaN
    in the row after its last; a non-finite b value reaches only the rows that store its row of b."""
    a = random_sparse(m, k, 0.4, torch.bfloat16, empty_rows=(0,))
    parts = pack(a)
    past = random_dense(k + 1, n, dtype=torch.bfloat16, seed=k)
    past[k] = float("nan")
    for b in (random_dense(k, n, dtype=torch.bfloat16, seed=k),
              random_dense(k, n + 3, dtype=torch.bfloat16)[:, 1 : 1 + n], past[:k]):
        out = torch.ops.sparse.bitmap_spmm(*parts, b, m)
        assert_matches_reference(out, a.double() @ b.double(), torch.bfloat16, a @ b)
    b = random_dense(k, n, dtype=torch.bfloat16, seed=k)
    c = k // 2
    b[c, n - 1] = float("nan")
    out = torch.ops.sparse.bitmap_spmm(*parts, b, m)
    hit = a[:, c] != 0
    assert not out[hit, n - 1].isfinite().any()
    assert out[~hit].isfinite().all(), "a non-finite b value reached a row that does not store its column"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [9, 16, 40])
def test_bitmap_spmm_tile_path_empty_groups(isa, n, dtype):
    """The dense tile path expands each group while the previous group's product runs (two tile buffers):
    group rows whose nonempty groups are separated by empty ones, a group row with one nonempty group, an
    empty group row, and edge groups (130 x 300: 3 x 5 groups); a stale or swapped buffer shows as a wrong
    group's product."""
    a = random_sparse(130, 300, 0.65, dtype, generator=torch.Generator().manual_seed(n))
    a[0:64, 64:128] = 0  # group row 0: groups 1 and 3 empty
    a[0:64, 192:256] = 0
    a[64:128, :] = 0  # group row 1: only group 2 (columns 128..191) stored
    a[64:128, 128:192] = random_sparse(64, 64, 0.65, dtype, generator=torch.Generator().manual_seed(n + 1))
    a[128:130, 0:256] = 0  # group row 2 (2 rows): only the last, edge group stored
    parts = pack(a)
    b = random_dense(300, n, dtype=dtype, seed=n)
    out = torch.ops.sparse.bitmap_spmm(*parts, b, 130)
    assert_matches_reference(out, a.double() @ b.double(), dtype, a @ b)
    a[:] = 0  # every group empty: the output is zero
    out = torch.ops.sparse.bitmap_spmm(*pack(a), b, 130)
    assert (out == 0).all()


@pytest.mark.parametrize("n", [16, 100])
def test_bitmap_spmm_tile_path_strided_b(isa, n):
    """The dense tile path copies b's chunk with b's row stride (stride > n)."""
    a = random_sparse(70, 90, 0.7)
    bw = random_dense(90, 2 * n + 3)[:, 3 : 3 + n]
    out = torch.ops.sparse.bitmap_spmm(*pack(a), bw, 70)
    assert_matches_reference(out, a.double() @ bw.double(), torch.float32)


# (n, column of b made non-finite, density): n = 130 at 70 % is multiplied in 64-column chunks through dense
# tiles, and only the chunk holding the bad value (columns 64..127) is decoded instead (bf16 under avx512bf16:
# the same for its vdpbf16ps tile, and n = 1 / 3 for its bf16 copy of b)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("n,col,density", [(1, 0, 0.5), (3, 0, 0.5), (12, 0, 0.5), (20, 0, 0.5), (130, 70, 0.7)])
@pytest.mark.parametrize("bad", [float("inf"), float("nan")])
def test_bitmap_spmm_non_finite_b_only_reaches_rows_that_store_it(isa, spmm_device, n, col, density, bad, dtype):
    """Only stored entries multiply b: a non-finite b[c, :] reaches exactly the rows that store column c
    (a kernel that multiplied the zeros of a tile or a padding slot by b would put NaN in other rows)."""
    a = random_sparse(70, 90, density, dtype, device=spmm_device)
    a[:, 13] = 0
    a[[4, 40, 69], 13] = 1.5  # column 13 stored by three rows only
    b = random_dense(90, n, dtype=dtype, device=spmm_device)
    b[13, col] = bad
    out = torch.ops.sparse.bitmap_spmm(*packed_on(a, spmm_device), b, 70).cpu()
    hit = torch.zeros(70, dtype=torch.bool)
    hit[[4, 40, 69]] = True
    assert not out[hit, col].isfinite().any()
    assert out[~hit].isfinite().all(), "a non-finite b value reached a row that does not store its column"
    b_ok = b.clone()
    b_ok[13, col] = 0.0
    ref, same = ref_and_torch(a, b_ok, dtype)
    same = same.cpu() if same is not None else None
    assert_matches_reference(out[~hit], ref[~hit], dtype, same[~hit] if same is not None else None)
    others = torch.arange(n) != col
    if others.any():
        assert_matches_reference(out[:, others], ref[:, others], dtype,
                                 same[:, others] if same is not None else None)


@pytest.mark.parametrize("n", [1, 3, 8, 12])
@pytest.mark.parametrize("bad", [float("inf"), float("nan")])
def test_bitmap_spmm_non_finite_value_only_reaches_its_row(isa, spmm_device, n, bad):
    """A non-finite stored value reaches only its own row. The expansion reads 8 packed values from a row's
    start, so it also loads the next rows' values and must drop them by selection, not by multiplying by 0."""
    a = random_sparse(70, 90, 0.6, device=spmm_device)
    bad_rows = [3, 11, 67]
    for r in bad_rows:
        # in the 8 x 8 tile of columns 16..23 the row above (same tile) stores one value and row r stores
        # columns 16..22, the last one non-finite: the 8 values read from the row above's start end with it,
        # and lane 7 is where the expansion's unselected lanes point
        a[r - 1 : r + 1, 16:24] = 0
        a[r - 1, 17] = 1.25
        a[r, 16:23] = torch.arange(1, 8, dtype=a.dtype, device=spmm_device) * 0.5
        a[r, 22] = bad
    b = random_dense(90, n, device=spmm_device)
    out = torch.ops.sparse.bitmap_spmm(*packed_on(a, spmm_device), b, 70).cpu()
    hit = torch.zeros(70, dtype=torch.bool)
    hit[bad_rows] = True
    assert not out[hit].isfinite().all(dim=1).any()
    assert out[~hit].isfinite().all(), "a non-finite stored value reached another row"
    ref = a.double().cpu() @ b.double().cpu()
    assert_matches_reference(out[~hit], ref[~hit], torch.float32)


@pytest.mark.parametrize("n", [1, 4, 12])
def test_bitmap_spmm_strided_b_small_n(isa, n):
    """Row stride > n on the small-n paths (the expansion copies b; the register decode scales columns by it)."""
    a = random_sparse(70, 90, 0.3)
    bw = random_dense(90, 50)[:, 5 : 5 + n]
    out = torch.ops.sparse.bitmap_spmm(*pack(a), bw, 70)
    assert_matches_reference(out, a.double() @ bw.double(), torch.float32)


def test_bitmap_spmm_strided_b(isa):
    a = random_sparse(70, 90, 0.3)
    bt = random_dense(33, 90).T                 # [90, 33], column-major: copied to contiguous rows
    out = torch.ops.sparse.bitmap_spmm(*pack(a), bt, 70)
    assert_matches_reference(out, a.double() @ bt.double(), torch.float32)
    bw = random_dense(90, 50)[:, 3:40]          # row stride 50 > n = 37
    out = torch.ops.sparse.bitmap_spmm(*pack(a), bw, 70)
    assert_matches_reference(out, a.double() @ bw.double(), torch.float32)


@pytest.mark.parametrize("dtype", DTYPES)
def test_bitmap_spmm_reads_the_documented_layout(isa, spmm_device, dtype):
    """The kernel on a format built by layout_pack, not by the C++ packer."""
    a = random_sparse(70, 130, 0.4, dtype)
    parts = [t.to(spmm_device) for t in layout_pack(a)]
    a = a.to(spmm_device)
    for n in (1, 7, 33):
        b = random_dense(130, n, dtype=dtype, device=spmm_device, seed=n)
        out = torch.ops.sparse.bitmap_spmm(*parts, b, 70)
        ref, same = ref_and_torch(a, b, dtype)
        assert_matches_reference(out, ref, dtype, same)


# ---- pack / unpack ---------------------------------------------------------------
@pytest.mark.parametrize("m,k", [(0, 0), (0, 5), (5, 0), (1, 1), (10, 70), (64, 64), (70, 130), (129, 65)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_dense_to_bitmap_matches_layout(m, k, dtype):
    a = random_sparse(m, k, 0.35, dtype)
    got = pack(a)
    want = layout_pack(a)
    for name, g, w in zip(("group_offsets", "bitmaps", "values"), got, want):
        assert g.dtype == w.dtype, name
        assert torch.equal(g, w), name


def test_docs_worked_example():
    """The example in docs/formats.md (bitmap), byte for byte."""
    a = torch.zeros(10, 70, dtype=torch.float16)
    a[0, 1], a[0, 9], a[9, 0], a[2, 3], a[1, 68] = 1, 2, 3, 4, 5
    offsets, bitmaps, values = pack(a)
    assert offsets.tolist() == [0, 8, 16]
    expected = torch.zeros(128, dtype=torch.int64)
    expected[0], expected[1], expected[2], expected[64] = 0x80002, 0x100, 0x2, 0x1000
    assert torch.equal(bitmaps, expected)
    assert values.tolist() == [1, 4, 3, 2, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0]


def test_dense_to_bitmap_high_bit_and_full_group():
    """Bit 63 (last element of a tile) makes the int64 negative; a full group has 4096 values."""
    a = torch.ones(64, 64)
    offsets, bitmaps, values = pack(a)
    assert offsets.tolist() == [0, 4096]
    assert (bitmaps == -1).all()
    b = torch.zeros(8, 8)
    b[7, 7] = 1.0
    assert pack(b)[1][0].item() == to_signed64(1 << 63)


def _bits(t):
    return t.view(torch.int32 if t.dtype == torch.float32 else torch.int16)


@pytest.mark.parametrize("m,k", [(1, 1), (7, 33), (65, 1025), (1025, 7), (200, 300)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_bitmap_round_trip_is_exact(m, k, dtype):
    a = random_sparse(m, k, 0.3, dtype, empty_rows=(0, 5))
    if m * k >= 4:  # special values survive bit for bit; -0.0 is a zero and is dropped
        flat = a.view(-1)
        flat[0], flat[1], flat[2], flat[3] = float("nan"), float("inf"), -float("inf"), -0.0
        flat[-1] = torch.finfo(dtype).tiny / 4  # subnormal
    back = torch.ops.sparse.bitmap_to_dense(*pack(a), m, k)
    expected = torch.where(a == 0, torch.zeros_like(a), a)  # -0.0 -> +0.0
    assert back.dtype == dtype and back.shape == (m, k)
    assert torch.equal(_bits(back), _bits(expected))


def test_dense_to_bitmap_non_contiguous():
    a = random_sparse(90, 70, 0.3).T  # [70, 90] column-major
    got = pack(a)
    for g, w in zip(got, pack(a.contiguous())):
        assert torch.equal(g, w)
    assert torch.equal(torch.ops.sparse.bitmap_to_dense(*got, 70, 90), a)


def test_bitmap_to_dense_reads_the_documented_layout():
    a = random_sparse(70, 130, 0.4, torch.bfloat16)
    assert torch.equal(torch.ops.sparse.bitmap_to_dense(*layout_pack(a), 70, 130), a)


# ---- opcheck -----------------------------------------------------------------------
def test_bitmap_opcheck():
    a = random_sparse(70, 90, 0.3)
    b = random_dense(90, 5)
    parts = tuple(t.clone() for t in pack(a))
    torch.library.opcheck(torch.ops.sparse.bitmap_spmm.default, (*parts, b, 70))
    torch.library.opcheck(torch.ops.sparse.bitmap_to_dense.default, (*parts, 70, 90))
    torch.library.opcheck(torch.ops.sparse.dense_to_bitmap.default, (a,))


# ---- bad input ----------------------------------------------------------------------
OPS = ["bitmap_spmm", "bitmap_to_dense"]


class TestBadInput:
    m, k = 70, 100  # 2 x 2 groups, both edges partial

    def setup_method(self):
        self.a = random_sparse(self.m, self.k, 0.5)
        self.offsets, self.bitmaps, self.values = pack(self.a)
        self.b = random_dense(self.k, 3)

    def call(self, op, offsets=None, bitmaps=None, values=None, b=None, m=None, k=None):
        offsets = self.offsets if offsets is None else offsets
        bitmaps = self.bitmaps if bitmaps is None else bitmaps
        values = self.values if values is None else values
        m = self.m if m is None else m
        if op == "bitmap_spmm":
            b = self.b if b is None else b
            return torch.ops.sparse.bitmap_spmm(offsets, bitmaps, values, b, m)
        return torch.ops.sparse.bitmap_to_dense(offsets, bitmaps, values, m, self.k if k is None else k)

    @pytest.mark.parametrize("op", OPS)
    def test_first_offset_not_zero(self, op):
        offsets = self.offsets + 8
        values = torch.cat([self.values, torch.zeros(8)])
        with pytest.raises(ValueError, match=r"group_offsets\[0\]' must be 0"):
            self.call(op, offsets=offsets, values=values)

    @pytest.mark.parametrize("op", OPS)
    def test_group_count_mismatch(self, op):
        offsets = self.offsets.clone()
        offsets[2] += 8  # group 1 claims 8 more values, group 2 8 fewer
        with pytest.raises(ValueError, match=r"group 1 .* set bits"):
            self.call(op, offsets=offsets)

    @pytest.mark.parametrize("op", OPS)
    def test_count_not_padded_to_8(self, op):
        a = torch.zeros(self.m, self.k)
        a[0, :5] = 1.0
        offsets, bitmaps, values = pack(a)
        offsets = offsets.clone()
        offsets[1:] = 5  # unpadded count
        with pytest.raises(ValueError, match="multiple of 8"):
            self.call(op, offsets=offsets, bitmaps=bitmaps, values=values[:5].clone())

    @pytest.mark.parametrize("op", OPS)
    @pytest.mark.parametrize("bad", [-2**63, 2**63 - 1, -8])
    def test_offset_extremes(self, op, bad):
        offsets = self.offsets.clone()
        offsets[1] = bad
        with pytest.raises(ValueError, match="group 0"):
            self.call(op, offsets=offsets)

    @pytest.mark.parametrize("op", OPS)
    def test_last_offset_not_values_length(self, op):
        with pytest.raises(ValueError, match=r"group_offsets\[G\]"):
            self.call(op, values=self.values[:-8].clone())

    @pytest.mark.parametrize("op", OPS)
    @pytest.mark.parametrize("where", ["row", "col"])
    def test_bit_outside_matrix(self, op, where):
        # Group 3 covers rows 64..69 and columns 64..99; its tile 0 spans rows
        # 64..71 x columns 64..71, its tile 12 (fragment 3, q 0) columns 112..119.
        a = torch.zeros(self.m, self.k)
        a[64, 64] = 1.0
        offsets, bitmaps, values = pack(a)
        bitmaps = bitmaps.clone()
        if where == "row":
            bitmaps[3 * 64 + 0] |= 1 << (6 * 8)  # row 70 >= m, column 64
            element = r"\(70, 64\)"
        else:
            bitmaps[3 * 64 + 12] |= 1 << 3  # fragment 3 (cols 112..127), q 0: row 64, column 115 >= k
            element = r"\(64, 115\)"
        offsets = torch.tensor([0, 0, 0, 0, 8])
        with pytest.raises(ValueError, match=rf"element {element}, outside the 70 x 100 matrix"):
            self.call(op, offsets=offsets, bitmaps=bitmaps, values=values)

    @pytest.mark.parametrize("op", OPS)
    def test_bitmaps_wrong_length(self, op):
        with pytest.raises(ValueError, match=r"'bitmaps' must have G \* 64 = 256"):
            self.call(op, bitmaps=self.bitmaps[:-1].clone())

    @pytest.mark.parametrize("op", OPS)
    def test_offsets_wrong_length_for_m(self, op):
        with pytest.raises(ValueError, match="'group_offsets' must have G \\+ 1 = 7"):
            self.call(op, m=129)

    @pytest.mark.parametrize("op", OPS)
    def test_offsets_wrong_dtype(self, op):
        with pytest.raises(TypeError, match="'group_offsets' must have dtype Long"):
            self.call(op, offsets=self.offsets.int())

    @pytest.mark.parametrize("op", OPS)
    def test_bitmaps_wrong_dtype(self, op):
        with pytest.raises(TypeError, match="'bitmaps' must have dtype Long"):
            self.call(op, bitmaps=self.bitmaps.int())

    @pytest.mark.parametrize("op", OPS)
    def test_values_unsupported_dtype(self, op):
        with pytest.raises(TypeError, match="unsupported dtype"):
            self.call(op, values=self.values.long(), b=self.b.long())  # float64: test_float64.py

    @pytest.mark.parametrize("op", OPS)
    def test_offsets_wrong_rank(self, op):
        with pytest.raises(ValueError, match="'group_offsets' must be a 1-D"):
            self.call(op, offsets=self.offsets[None])

    @pytest.mark.parametrize("op", OPS)
    def test_values_wrong_rank(self, op):
        with pytest.raises(ValueError, match="'values' must be a 1-D"):
            self.call(op, values=self.values.view(-1, 8))

    @pytest.mark.parametrize("op", OPS)
    def test_values_not_contiguous(self, op):
        doubled = torch.stack([self.values, self.values], 1).view(-1)[::2]
        with pytest.raises(ValueError, match="'values' must be contiguous"):
            self.call(op, values=doubled)

    def test_spmm_b_dtype_mismatch(self):
        with pytest.raises(TypeError, match="same dtype"):
            self.call("bitmap_spmm", b=self.b.half())

    def test_spmm_b_wrong_rank(self):
        with pytest.raises(ValueError, match="'b' must be a 2-D"):
            self.call("bitmap_spmm", b=self.b[:, 0].clone())

    def test_spmm_b_rows_not_k(self):
        # k comes from b: 64 rows make G = 2 x 1, so the metadata no longer fits.
        with pytest.raises(ValueError, match="G \\+ 1 = 3"):
            self.call("bitmap_spmm", b=self.b[:64].clone())

    def test_negative_shape(self):
        with pytest.raises(ValueError, match="non-negative"):
            self.call("bitmap_to_dense", m=-1)

    def test_pack_wrong_rank(self):
        with pytest.raises(ValueError, match="'dense' must be a 2-D"):
            pack(torch.ones(4))

    @pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool])  # float64: test_float64.py
    def test_pack_unsupported_dtype(self, dtype):
        with pytest.raises(TypeError, match="unsupported dtype"):
            pack(torch.ones(4, 4, dtype=dtype))

    def test_pack_sparse_layout(self):
        with pytest.raises((TypeError, NotImplementedError)):
            pack(torch.eye(4).to_sparse_csr())


class TestBadInputWidePacked(TestBadInput):
    """The same checks with b 600 columns wide at a density below the dense tile: the decode runs on b copied
    into a contiguous buffer, one 256-column pass after another."""

    def setup_method(self):
        self.m, self.k = 70, 100
        self.a = random_sparse(self.m, self.k, 0.2)
        self.offsets, self.bitmaps, self.values = pack(self.a)
        self.b = random_dense(self.k, 600)


class TestBadInputTilePath(TestBadInput):
    """The same checks with b 16 columns wide: at this density the kernel multiplies through dense tiles, and
    its fused metadata checks must report what the validator reports."""

    def setup_method(self):
        super().setup_method()
        self.b = random_dense(self.k, 16)
