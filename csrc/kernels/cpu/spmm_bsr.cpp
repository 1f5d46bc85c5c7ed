// BSR SpMM on the CPU: for block row I and each block p of it (block column J),
// out[I*r + i, :] += sum_j blocks[p, i, j] * b[J*c + j, :].
//
// Rows of a block row are processed R (<= 6) at a time so that every vector of
// b loaded is used R times; out columns are kept in registers in panels of NV
// vectors (R * NV <= 12 accumulators: 6 x 2 vectors is the AVX2 register
// budget with the 2 b vectors and a broadcast). Columns past the last panel go one by one,
// which is also the whole of N = 1. Wide n goes in column blocks of 64, the
// block outermost (b's block stays in cache), for the block shapes where that
// measured faster (bsr_spmm). Edge blocks (m or k not a
// multiple of r or c) are clipped: padding rows/columns of a block are never
// read.
#include "kernels/cpu/kernels.h"
#include "kernels/cpu/simd.h"

SK_CPU_NAMESPACE_BEGIN

static inline int64_t min_i64(int64_t x, int64_t y) { return x < y ? x : y; }

// Output columns [j, j + NV*kW) of rows i0 .. i0+R-1 (global row numbers) for
// block rows whose blocks run over p0 .. p1-1; ii = i0 - (first row of the block row).
template <int R, int NV, typename T, typename I>
static inline void bsr_panel(const BsrSpmmArgs<T, I>& a, I p0, I p1, int64_t i0, int64_t ii, int64_t j) {
  const int64_t c = a.c, rc = a.r * a.c;
  VecF acc[R][NV];
  for (int t = 0; t < R; ++t)
    for (int u = 0; u < NV; ++u) acc[t][u] = vzero();
  for (I p = p0; p < p1; ++p) {
    const T* blk = a.blocks + int64_t(p) * rc + ii * c;
    const int64_t col0 = int64_t(a.block_col_idx[p]) * c;
    const int64_t cw = min_i64(c, a.k - col0);
    const T* brow = a.b + col0 * a.ldb + j;
    for (int64_t q = 0; q < cw; ++q, brow += a.ldb) {
      VecF bv[NV];
      for (int u = 0; u < NV; ++u) bv[u] = vload(brow + u * kW);
      for (int t = 0; t < R; ++t) {
        const VecF v = vset1(to_float(blk[t * c + q]));
        for (int u = 0; u < NV; ++u) acc[t][u] = vfma(v, bv[u], acc[t][u]);
      }
    }
  }
  for (int t = 0; t < R; ++t) {
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
  for (int t = 0; t < R; ++t) a.out[(i0 + t) * a.ldo + j] = from_float<T>(acc[t]);
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

// Wide n: columns in blocks of kColumnBlock, the block outermost, so the
// block of b (k x kColumnBlock) stays in cache while every block row of the
// range uses it (without it, each row group re-reads its blocks' b rows
// across all n columns from memory). Measured (1 thread, CPU time, 4096^2 at
// 90 %): at n = 2048 it helps 1x4 (1158 -> 773 ms) and 32x32 (321 -> 231 ms)
// but slows 4x1 (286 -> 465 ms), whose 4 rows already reuse each b vector 4
// times; at n = 256 it helps none. Hence: n >= kColumnBlockMinN, and blocks of
// fewer than 4 rows or at least 16 columns.
constexpr int64_t kColumnBlock = 64;
constexpr int64_t kColumnBlockMinN = 1024;

template <typename T, typename I>
void bsr_spmm(const BsrSpmmArgs<T, I>& a, int64_t begin, int64_t end) {
  const bool blocked = a.n >= kColumnBlockMinN && (a.r < 4 || a.c >= 16);
  const int64_t width = blocked ? kColumnBlock : (a.n > 0 ? a.n : 1);
  for (int64_t j0 = 0; j0 < a.n; j0 += width) {
    const int64_t j1 = min_i64(a.n, j0 + width);
    for (int64_t bi = begin; bi < end; ++bi) {
      const I p0 = a.block_row_ptr[bi], p1 = a.block_row_ptr[bi + 1];
      const int64_t row0 = bi * a.r;
      const int64_t rows = min_i64(a.r, a.m - row0);
      int64_t ii = 0;
      for (; ii + 6 <= rows; ii += 6) bsr_rows<6>(a, p0, p1, row0 + ii, ii, j0, j1);
      switch (rows - ii) {
        case 5:
          bsr_rows<5>(a, p0, p1, row0 + ii, ii, j0, j1);
          break;
        case 4:
          bsr_rows<4>(a, p0, p1, row0 + ii, ii, j0, j1);
          break;
        case 3:
          bsr_rows<3>(a, p0, p1, row0 + ii, ii, j0, j1);
          break;
        case 2:
          bsr_rows<2>(a, p0, p1, row0 + ii, ii, j0, j1);
          break;
        case 1:
          bsr_rows<1>(a, p0, p1, row0 + ii, ii, j0, j1);
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
