// BSR SpMM on the CPU: for block row I and each block p of it (block column J),
// out[I*r + i, :] += sum_j blocks[p, i, j] * b[J*c + j, :].
// Two paths; edge blocks (m or k not a multiple of r or c) are clipped in both:
// padding rows/columns of a block are never read.
//
// Tiled path (bsr_tiled: r <= 4, n >= 64, the range's stored values >= 8 k,
// the 1x4 / 4x1 prefill shapes). Per thread and per panel of W = NV vectors of
// output columns (NV = 8, 4, 4, 3 for r = 1, 2, 3, 4: R = r rows x NV <= 12
// accumulators):
//   - columns [j0, j0 + W) of b are packed once into a contiguous fp32 panel
//     (k x W, zero past n; 16-bit b widened once): b's rows are 4 * n bytes
//     apart, so without it the rows of a block alias in the L1/L2 sets;
//   - block rows go in groups (fp32 accumulator tile of 32 KiB, zeroed, written
//     to out once: 16-bit outputs are rounded once), and within a group K goes
//     in chunks of 32768 / W panel rows (128 KiB, L2-resident while every row
//     of the group uses it). Each block row keeps a cursor into its block list
//     across the chunks (block columns sorted: checked per block row; a block
//     row that is not sorted, or has duplicates out of order, is done whole in
//     the first chunk, which is only slower);
//   - per visit (block row, chunk) the R x NV accumulators are loaded from the
//     tile, each stored value is broadcast against the NV vectors of its panel
//     row, and stored back.
// The scratch (panel, tile, cursors) is thread-local and reused by every call.
// Measured against L1-sized chunks (24 KiB: more reuse of b but 2.4 blocks per
// visit at 1x4 90 %, whose per-visit cost lost 30-50 %), a schedule of single
// blocks sorted by chunk (accumulators through memory per block: 40 % slower),
// software prefetch of the next block's rows (slower), huge pages for the panel
// and NV = 12 / unrolled c = 4 or c = 1 blocks (no difference): see
// docs/performance.md.
//
// Direct path (everything else, e.g. 32x32 blocks, small n, N = 1): rows of a
// block row R (<= 6) at a time so that every vector of b loaded is used R
// times; out columns in registers in panels of NV vectors (R * NV <= 12: 6 x 2
// vectors is the AVX2 register budget with the 2 b vectors and a broadcast).
// Columns past the last panel go one by one, which is also the whole of N = 1.
// Wide n (>= 1024) goes in column blocks of 64, the block outermost and
// copied contiguous (b's block stays in cache; see kColumnBlock).
#include "kernels/cpu/kernels.h"
#include "kernels/cpu/scratch.h"
#include "kernels/cpu/simd.h"

#include <cstdlib>

SK_CPU_NAMESPACE_BEGIN

static inline int64_t min_i64(int64_t x, int64_t y) { return x < y ? x : y; }
static inline int64_t max_i64(int64_t x, int64_t y) { return x > y ? x : y; }

// acc[t][u] += vals[t * vstride] * brow[u * kW ..] for t < R, u < NV: one row
// of b (NV vectors, loaded once) times one column of R block values.
template <int R, int NV, typename T, typename B>
static inline void block_column_fma(const T* vals, int64_t vstride, const B* brow, VecF (&acc)[R][NV]) {
  VecF bv[NV];
  for (int u = 0; u < NV; ++u) bv[u] = vload(brow + u * kW);
  for (int t = 0; t < R; ++t) {
    const VecF v = vset1(to_float(vals[t * vstride]));
    for (int u = 0; u < NV; ++u) acc[t][u] = vfma(v, bv[u], acc[t][u]);
  }
}

// Output columns [j, j + NV*kW) of rows i0 .. i0+R-1 (global row numbers) for
// block rows whose blocks run over p0 .. p1-1; ii = i0 - (first row of the block row).
template <int R, int NV, typename T, typename I>
static inline void bsr_panel(const BsrSpmmArgs<T, I>& a, I p0, I p1, int64_t i0, int64_t ii, int64_t j) {
  const int64_t c = a.c, rc = a.r * a.c;
  VecF acc[R][NV];
  for (int t = 0; t < R; ++t)
    for (int u = 0; u < NV; ++u) acc[t][u] = vzero();
  if (c == 1) {
    // r x 1 blocks: one b row per block, no column loop (the general loop's
    // per-block bookkeeping was ~2/3 of its instructions at 4x1)
    const T* blk = a.blocks + int64_t(p0) * rc + ii;
    for (I p = p0; p < p1; ++p, blk += rc)
      block_column_fma(blk, 1, a.b + int64_t(a.block_col_idx[p]) * a.ldb + j, acc);
    p1 = p0;  // done: skip the general loop
  }
  for (I p = p0; p < p1; ++p) {
    const T* blk = a.blocks + int64_t(p) * rc + ii * c;
    const int64_t col0 = int64_t(a.block_col_idx[p]) * c;
    const int64_t cw = min_i64(c, a.k - col0);
    const T* brow = a.b + col0 * a.ldb + j;
    for (int64_t q = 0; q < cw; ++q, brow += a.ldb) block_column_fma(blk + q, c, brow, acc);
  }
  for (int t = 0; t < R; ++t) {
    add_row_bias(a.bias, i0 + t, acc[t]);
    T* out = a.out + (i0 + t) * a.ldo + j;
    for (int u = 0; u < NV; ++u) vstore(out + u * kW, acc[t][u]);
  }
}

// One output column j of rows i0 .. i0+R-1.
template <int R, typename T, typename I>
static inline void bsr_column(const BsrSpmmArgs<T, I>& a, I p0, I p1, int64_t i0, int64_t ii, int64_t j) {
  const int64_t c = a.c, rc = a.r * a.c;
  float acc[R];
  for (int t = 0; t < R; ++t) acc[t] = 0.f;
  for (I p = p0; p < p1; ++p) {
    const T* blk = a.blocks + int64_t(p) * rc + ii * c;
    const int64_t col0 = int64_t(a.block_col_idx[p]) * c;
    const int64_t cw = min_i64(c, a.k - col0);
    const T* bcol = a.b + col0 * a.ldb + j;
    for (int64_t q = 0; q < cw; ++q) {
      const float bv = to_float(bcol[q * a.ldb]);
      for (int t = 0; t < R; ++t) acc[t] += to_float(blk[t * c + q]) * bv;
    }
  }
  for (int t = 0; t < R; ++t)
    a.out[(i0 + t) * a.ldo + j] = from_float<T>(a.bias ? acc[t] + to_float(a.bias[i0 + t]) : acc[t]);
}

// Columns [j0, j1) of rows i0 .. i0+R-1. Fewer rows leave registers for wider panels.
template <int R, typename T, typename I>
static void bsr_rows(const BsrSpmmArgs<T, I>& a, I p0, I p1, int64_t i0, int64_t ii, int64_t j0, int64_t j1) {
  constexpr int NV = R == 1 ? 8 : (R == 2 ? 4 : 2);  // 8 accumulators: 8 independent FMA chains
  int64_t j = j0;
  for (; j + NV * kW <= j1; j += NV * kW) bsr_panel<R, NV>(a, p0, p1, i0, ii, j);
  for (; j + kW <= j1; j += kW) bsr_panel<R, 1>(a, p0, p1, i0, ii, j);
  for (; j < j1; ++j) bsr_column<R>(a, p0, p1, i0, ii, j);
}

// Wide n (direct path): columns in blocks of kColumnBlock, the block
// outermost and copied to a contiguous buffer (bsr_spmm), so the block of b
// (k x kColumnBlock) stays in cache while every block row of the range uses
// it. Measured first without the copy (1 thread, 4096^2 at 90 %, n = 2048:
// 32x32 321 -> 231 ms; 4x1 slower, but r <= 4 now takes the tiled path), then
// with it, for every block shape (2 threads, alternating processes, min of
// 3-5 calls): n = 2048 32x32 110-132 -> 87-97 ms, 8x8 477-520 -> 87-119,
// 5x3 407-601 -> 98-138; n = 1024 8x8 110-127 -> 59-76, 5x3 54-84 -> 53-94;
// at n = 512 mixed (5x3 23 -> 33-43 ms, 8x8 28-42 -> 33-39), n = 256 a tie.
// Hence n >= kColumnBlockMinN, any block shape.
constexpr int64_t kColumnBlock = 64;
constexpr int64_t kColumnBlockMinN = 1024;


// ---------------------------------------------------------------------------
// Tiled path (r <= 4, n >= kTiledMinN): see the comment at the top of the file.
// ---------------------------------------------------------------------------


// A growable int64 buffer (the FloatBuffer pattern of scratch.h).
struct Int64Buffer {
  int64_t* data = nullptr;
  int64_t size = 0;
  Int64Buffer() = default;
  Int64Buffer(const Int64Buffer&) = delete;
  Int64Buffer& operator=(const Int64Buffer&) = delete;
  ~Int64Buffer() { std::free(data); }
  bool reserve(int64_t n) {
    if (n <= size) return true;
    int64_t* p = static_cast<int64_t*>(std::malloc(size_t(n) * sizeof(int64_t)));
    if (p == nullptr) return false;
    std::free(data);
    data = p;
    size = n;
    return true;
  }
};

// Per-thread scratch, reused by every call on the thread.
struct BsrTiledScratch {
  FloatBuffer panel;   // [k, W] fp32: columns [j0, j0 + W) of b, zero past n
  FloatBuffer acc;     // [rows of a group, W] fp32 accumulators
  Int64Buffer cursor;  // per block row of a group: its next block, or -1 (columns not sorted)
  Int64Buffer start;   // per block row of the range: its first block, or -1 (columns not sorted)
};

// Rows 0 .. R-1 of a block row against its blocks from p0 on, up to p1 or
// the first block whose column is kb1 or more; all W = NV * kW columns of the
// panel. bt: the packed panel (b row kk at bt + kk * W); acc: the block row's
// R fp32 accumulator rows (stride W). Returns where it stopped.
template <int R, int NV, typename T, typename I>
static inline int64_t tiled_rows(const BsrSpmmArgs<T, I>& a, int64_t p0, int64_t p1, int64_t kb1, const float* bt,
                                 float* acc) {
  constexpr int64_t W = NV * kW;
  const int64_t c = a.c, rc = a.r * a.c;
  const I* const ci = a.block_col_idx;
  VecF s[R][NV];
  for (int t = 0; t < R; ++t)
    for (int u = 0; u < NV; ++u) s[t][u] = vload(acc + t * W + u * kW);
  int64_t p = p0;
  if (c == 1) {
    // r x 1 blocks: one panel row per block (as in bsr_panel)
    const T* blk = a.blocks + p * rc;
    for (; p < p1 && int64_t(ci[p]) < kb1; ++p, blk += rc) block_column_fma(blk, 1, bt + int64_t(ci[p]) * W, s);
    p1 = p;  // done: skip the general loop
  }
  for (; p < p1 && int64_t(ci[p]) < kb1; ++p) {
    const T* blk = a.blocks + p * rc;
    const int64_t col0 = int64_t(ci[p]) * c;
    const int64_t cw = min_i64(c, a.k - col0);  // edge block: padding columns are not read
    const float* brow = bt + col0 * W;
    for (int64_t q = 0; q < cw; ++q, brow += W) block_column_fma(blk + q, c, brow, s);
  }
  for (int t = 0; t < R; ++t)
    for (int u = 0; u < NV; ++u) vstore(acc + t * W + u * kW, s[t][u]);
  return p;
}

// rows (1 .. RMAX) rows of a block row.
template <int RMAX, int NV, typename T, typename I>
static inline int64_t tiled_block_row(const BsrSpmmArgs<T, I>& a, int64_t rows, int64_t p0, int64_t p1, int64_t kb1,
                                      const float* bt, float* acc) {
  if (rows == RMAX) return tiled_rows<RMAX, NV>(a, p0, p1, kb1, bt, acc);
  if constexpr (RMAX > 1) return tiled_block_row<RMAX - 1, NV>(a, rows, p0, p1, kb1, bt, acc);
  return p1;
}

// Panel width: NV vectors, R * NV <= 12 accumulators for R = r rows (with
// the NV b vectors and a broadcast: the 16 AVX2 registers).
template <int RMAX>
constexpr int tiled_nv() {
  return RMAX == 1 ? 8 : (RMAX <= 3 ? 4 : 3);
}
static inline int64_t tiled_width(int64_t r) { return (r == 1 ? 8 : (r <= 3 ? 4 : 3)) * kW; }

constexpr int64_t kTiledMaxR = 4;
constexpr int64_t kTiledMinN = 64;
constexpr int64_t kChunkFloats = 32768;  // b rows of one K chunk of the panel: 128 KiB, in L2
constexpr int64_t kAccFloats = 8192;     // accumulator tile of a row group: 32 KiB
constexpr int64_t kPanelMaxFloats = int64_t(1) << 23;  // 32 MiB of packed b at most, else the direct path
constexpr int64_t kTiledMinNnzPerK = 8;  // stored values of the range >= 8 k: packing b costs <= 1/8 of the FMAs
// (4x1 blocks took the tiled path only from n = 1024 until both paths got an
// r x 1 loop without the per-block column bookkeeping; since then the tiled
// path is as fast or faster from n = 64 on: docs/performance.md.)

// Columns [j0, j0 + jw) of block rows [begin, end) through one packed panel
// of W = NV * kW columns (jw <= W). `start` holds each block row's first block
// or -1 (columns not sorted); the scratch is reserved by bsr_tiled.
template <int RMAX, int NV, typename T, typename I>
static void tiled_panel(const BsrSpmmArgs<T, I>& a, int64_t begin, int64_t end, int64_t j0, int64_t jw,
                        BsrTiledScratch& s) {
  constexpr int64_t W = NV * kW;
  const int64_t r = a.r, c = a.c;
  const int64_t kblocks = (a.k + c - 1) / c;
  const int64_t kb_chunk = max_i64(1, kChunkFloats / (W * c));  // block columns per K chunk
  const int64_t group = min_i64(end - begin, max_i64(1, kAccFloats / (W * r)));  // block rows per group
  float* const bt = s.panel.data;
  float* const acc = s.acc.data;
  int64_t* const cursor = s.cursor.data;
  const I* const rp = a.block_row_ptr;
  const I* const ci = a.block_col_idx;
  // Pack columns [j0, j0 + jw) of b as fp32 rows of W (zero past jw; a
  // non-finite b is copied as it is, and only stored values meet it).
  copy_columns_fp32(a.b, a.ldb, a.k, a.k, j0, jw, W, bt);
  for (int64_t g0 = begin; g0 < end; g0 += group) {
    const int64_t g1 = min_i64(end, g0 + group);
    for (int64_t x = 0; x < (g1 - g0) * r * W; x += kW) vstore(acc + x, vzero());
    for (int64_t bi = g0; bi < g1; ++bi) cursor[bi - g0] = s.start.data[bi - begin];
    for (int64_t kb0 = 0; kb0 < kblocks; kb0 += kb_chunk) {
      const int64_t kb1 = kb0 + kb_chunk;
      for (int64_t bi = g0; bi < g1; ++bi) {
        const int64_t rows = min_i64(r, a.m - bi * r);
        float* acc_rows = acc + (bi - g0) * r * W;
        const int64_t p1 = rp[bi + 1];
        int64_t p = cursor[bi - g0];
        if (p < 0) {  // unsorted block columns: the whole block row in the first chunk
          if (kb0 == 0) tiled_block_row<RMAX, NV>(a, rows, int64_t(rp[bi]), p1, kblocks, bt, acc_rows);
          continue;
        }
        if (p < p1 && int64_t(ci[p]) < kb1) cursor[bi - g0] = tiled_block_row<RMAX, NV>(a, rows, p, p1, kb1, bt, acc_rows);
      }
    }
    // Write the group's tile to out.
    for (int64_t bi = g0; bi < g1; ++bi) {
      const int64_t rows = min_i64(r, a.m - bi * r);
      for (int64_t t = 0; t < rows; ++t) {
        store_row_sums(a.out + (bi * r + t) * a.ldo + j0, acc + ((bi - g0) * r + t) * W, jw,
                       a.bias ? a.bias + bi * r + t : nullptr);
      }
    }
  }
}

// Block rows [begin, end), r == RMAX (or fewer rows in the last block row).
// Panels of NV = tiled_nv<RMAX>() vectors; the last (or only) one is as narrow
// as its columns allow (NV / 2 or NV / 4 vectors, at least one): a full-width
// panel for n = 64 on AVX-512 (128 columns, half of them zero) cost as much as
// n = 128. Returns false when the scratch could not be allocated (nothing
// written).
template <int RMAX, typename T, typename I>
static bool bsr_tiled(const BsrSpmmArgs<T, I>& a, int64_t begin, int64_t end) {
  constexpr int NV = tiled_nv<RMAX>();
  constexpr int NV2 = NV / 2 > 0 ? NV / 2 : 1, NV4 = NV / 4 > 0 ? NV / 4 : 1;
  constexpr int64_t W = NV * kW;
  static thread_local BsrTiledScratch s;
  // the accumulator tile of a group of any of the widths: at most kAccFloats, or one block row
  const int64_t acc_floats = max_i64(min_i64((end - begin) * a.r * W, kAccFloats), a.r * W);
  if (!s.panel.reserve(max_i64(1, a.k) * W) || !s.acc.reserve(acc_floats) ||
      !s.cursor.reserve(max_i64(1, min_i64(end - begin, kAccFloats / a.r))) || !s.start.reserve(end - begin))
    return false;
  const I* const rp = a.block_row_ptr;
  const I* const ci = a.block_col_idx;
  // whether each block row's columns are sorted, once per call (per panel it
  // was ~10 % of the instructions at 4x1, n = 2048)
  for (int64_t bi = begin; bi < end; ++bi) {
    const int64_t p0 = rp[bi], p1 = rp[bi + 1];
    bool sorted = true;
    for (int64_t p = p0 + 1; p < p1; ++p) sorted &= ci[p - 1] <= ci[p];
    s.start.data[bi - begin] = sorted ? p0 : -1;
  }
  for (int64_t j0 = 0; j0 < a.n; j0 += W) {
    const int64_t jw = min_i64(W, a.n - j0);
    if (jw <= NV4 * kW)
      tiled_panel<RMAX, NV4>(a, begin, end, j0, jw, s);
    else if (jw <= NV2 * kW)
      tiled_panel<RMAX, NV2>(a, begin, end, j0, jw, s);
    else
      tiled_panel<RMAX, NV>(a, begin, end, j0, jw, s);
  }
  return true;
}

template <typename T, typename I>
void bsr_spmm(const BsrSpmmArgs<T, I>& a, int64_t begin, int64_t end) {
  const int64_t nnz_range = (int64_t(a.block_row_ptr[end]) - int64_t(a.block_row_ptr[begin])) * a.r * a.c;
  if (a.r <= kTiledMaxR && a.n >= kTiledMinN &&
      a.k * tiled_width(a.r) <= kPanelMaxFloats && nnz_range >= kTiledMinNnzPerK * a.k) {
    bool done = false;
    switch (a.r) {
      case 1:
        done = bsr_tiled<1>(a, begin, end);
        break;
      case 2:
        done = bsr_tiled<2>(a, begin, end);
        break;
      case 3:
        done = bsr_tiled<3>(a, begin, end);
        break;
      default:
        done = bsr_tiled<4>(a, begin, end);
        break;
    }
    if (done) return;
  }
  const bool blocked = a.n >= kColumnBlockMinN;
  const int64_t width = blocked ? kColumnBlock : (a.n > 0 ? a.n : 1);
  // Column blocks are copied into a contiguous buffer (rows kColumnBlock
  // elements apart): read in place, b's rows are 4 n bytes apart (8 KiB at
  // n = 2048) and the 32 rows of a 32 x 32 block land in the same few L1 and
  // L2 sets, so each block row's b came from L3 (~1 instruction per cycle).
  static thread_local FloatBuffer packed;
  const bool pack = blocked && packed.reserve((a.k * kColumnBlock * int64_t(sizeof(T)) + 3) / 4);
  for (int64_t j0 = 0; j0 < a.n; j0 += width) {
    const int64_t j1 = min_i64(a.n, j0 + width);
    BsrSpmmArgs<T, I> ab = a;  // columns [jb0, jb1) of ab are columns [j0, j1) of a
    int64_t jb0 = j0, jb1 = j1;
    if (pack) {
      T* dst = reinterpret_cast<T*>(packed.data);
      const int64_t w = j1 - j0;
      copy_column_block(a.b, a.ldb, a.k, j0, w, dst);
      ab.b = dst;
      ab.ldb = w;
      ab.out = a.out + j0;
      jb0 = 0;
      jb1 = w;
    }
    for (int64_t bi = begin; bi < end; ++bi) {
      const I p0 = a.block_row_ptr[bi], p1 = a.block_row_ptr[bi + 1];
      const int64_t row0 = bi * a.r;
      const int64_t rows = min_i64(a.r, a.m - row0);
      int64_t ii = 0;
      for (; ii + 6 <= rows; ii += 6) bsr_rows<6>(ab, p0, p1, row0 + ii, ii, jb0, jb1);
      switch (rows - ii) {
        case 5:
          bsr_rows<5>(ab, p0, p1, row0 + ii, ii, jb0, jb1);
          break;
        case 4:
          bsr_rows<4>(ab, p0, p1, row0 + ii, ii, jb0, jb1);
          break;
        case 3:
          bsr_rows<3>(ab, p0, p1, row0 + ii, ii, jb0, jb1);
          break;
        case 2:
          bsr_rows<2>(ab, p0, p1, row0 + ii, ii, jb0, jb1);
          break;
        case 1:
          bsr_rows<1>(ab, p0, p1, row0 + ii, ii, jb0, jb1);
          break;
        default:
          break;
      }
    }
  }
}

#define SK_INSTANTIATE(T, I) template void bsr_spmm<T, I>(const BsrSpmmArgs<T, I>&, int64_t, int64_t);
SK_INSTANTIATE(float, int32_t)
SK_INSTANTIATE(float, int64_t)
SK_INSTANTIATE(half_t, int32_t)
SK_INSTANTIATE(half_t, int64_t)
SK_INSTANTIATE(bf16_t, int32_t)
SK_INSTANTIATE(bf16_t, int64_t)
#undef SK_INSTANTIATE

SK_CPU_NAMESPACE_END
