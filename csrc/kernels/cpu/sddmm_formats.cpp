// SDDMM at the stored slots of BSR, bitmap and 2:4 on the CPU: the gradient
// of each format's values tensor, out[slot] = dot(x[row(slot)], y[col(slot)]),
// 0 for slots outside the matrix (grad_kernels.h). Slots of one row go four at
// a time through vdot4 (simd.h: the x row loaded once per four y rows, 8
// independent FMA chains, one horizontal reduction), the rest one by one
// (vdot); a thread owns whole block rows / groups / rows of the output.
#include "kernels/cpu/grad_kernels.h"
#include "kernels/cpu/simd.h"

SK_CPU_NAMESPACE_BEGIN

template <typename T, typename I>
void bsr_sddmm(const BsrSddmmArgs<T, I>& a, int64_t begin, int64_t end) {
  const T zero = from_float<T>(0.f);
  for (int64_t bi = begin; bi < end; ++bi) {
    const int64_t rows = a.m - bi * a.r < a.r ? a.m - bi * a.r : a.r;
    const int64_t p1 = int64_t(a.block_row_ptr[bi + 1]);
    for (int64_t p = int64_t(a.block_row_ptr[bi]); p < p1; ++p) {
      const int64_t bj = int64_t(a.block_col_idx[p]);
      const int64_t cols = a.k - bj * a.c < a.c ? a.k - bj * a.c : a.c;
      T* o = a.out + p * a.r * a.c;
      const T* yblk = a.y + bj * a.c * a.ldy;
      for (int64_t ii = 0; ii < a.r; ++ii) {
        T* orow = o + ii * a.c;
        if (ii >= rows) {
          for (int64_t jj = 0; jj < a.c; ++jj) orow[jj] = zero;
          continue;
        }
        const T* xrow = a.x + (bi * a.r + ii) * a.ldx;
        int64_t jj = 0;
        for (; jj + 4 <= cols; jj += 4) {  // four columns per x row load (vdot4)
          float r4[4];
          vdot4(xrow, yblk + jj * a.ldy, yblk + (jj + 1) * a.ldy, yblk + (jj + 2) * a.ldy, yblk + (jj + 3) * a.ldy,
                a.d, r4);
          for (int q = 0; q < 4; ++q) orow[jj + q] = from_float<T>(r4[q]);
        }
        for (; jj < cols; ++jj) orow[jj] = from_float<T>(vdot(xrow, yblk + jj * a.ldy, a.d));
        for (; jj < a.c; ++jj) orow[jj] = zero;
      }
    }
  }
}

// Slots in storage order (tile by tile, each tile's bits row-major), four at
// a time through vdot4_pairs (their rows differ; what they share is the group:
// its 64 x and 64 y rows, 16 KiB each at d = 64 in fp32, stay in L1). Walking
// a group row by row instead, to share x rows (vdot4), measured 2.5x slower
// (4096^2 90 %, d = 64, 2 threads, Zen 4): a branch per row byte on its few
// bits, mispredicted about once per byte.
template <typename T>
void bitmap_sddmm(const BitmapSddmmArgs<T>& a, int64_t begin, int64_t end) {
  const int64_t gk = (a.k + 63) / 64;
  const T zero = from_float<T>(0.f);
  for (int64_t g = begin; g < end; ++g) {
    const int64_t r0 = (g / gk) * 64, c0 = (g % gk) * 64;
    const uint64_t* masks = a.bitmaps + g * 64;
    int64_t slot = a.group_offsets[g];  // of xs[0] / ys[0]
    const T* xs[4];
    const T* ys[4];
    int pending = 0;
    for (int t = 0; t < 64; ++t) {
      uint64_t mask = masks[t];
      const int f = t >> 2, q = t & 3;
      const int64_t row0 = r0 + (f >> 2) * 16 + (q & 1) * 8, col0 = c0 + (f & 3) * 16 + (q >> 1) * 8;
      while (mask != 0) {
        const int bit = __builtin_ctzll(mask);
        mask &= mask - 1;
        xs[pending] = a.x + (row0 + (bit >> 3)) * a.ldx;
        ys[pending] = a.y + (col0 + (bit & 7)) * a.ldy;
        if (++pending == 4) {
          float r[4];
          vdot4_pairs(xs, ys, a.d, r);
          for (int e = 0; e < 4; ++e) a.out[slot + e] = from_float<T>(r[e]);
          slot += 4;
          pending = 0;
        }
      }
    }
    for (int e = 0; e < pending; ++e) a.out[slot++] = from_float<T>(vdot(xs[e], ys[e], a.d));
    for (const int64_t s1 = a.group_offsets[g + 1]; slot < s1; ++slot) a.out[slot] = zero;
  }
}

template <typename T>
void sparse24_sddmm(const Sparse24SddmmArgs<T>& a, int64_t begin, int64_t end) {
  const int64_t kp = (a.k + 15) / 16 * 16;
  const T zero = from_float<T>(0.f);
  for (int64_t i = begin; i < end; ++i) {
    const uint16_t* meta = a.meta + i * (kp / 16);
    const T* xrow = a.x + i * a.ldx;
    T* o = a.out + i * (kp / 2);
    int64_t g = 0;
    // two groups of 4 columns (four slots) per vdot4 while all their columns are < k
    for (; g + 2 <= kp / 4 && 4 * g + 8 <= a.k; g += 2) {
      const unsigned byte = (unsigned(meta[g >> 2]) >> ((g & 3) * 4)) & 0xffu;  // g even: one byte
      const int64_t c0 = 4 * g + (byte & 3u), c1 = 4 * g + ((byte >> 2) & 3u), c2 = 4 * g + 4 + ((byte >> 4) & 3u),
                    c3 = 4 * g + 4 + (byte >> 6);
      float r4[4];
      vdot4(xrow, a.y + c0 * a.ldy, a.y + c1 * a.ldy, a.y + c2 * a.ldy, a.y + c3 * a.ldy, a.d, r4);
      for (int q = 0; q < 4; ++q) o[2 * g + q] = from_float<T>(r4[q]);
    }
    for (; g < kp / 4; ++g) {
      const unsigned nib = (unsigned(meta[g >> 2]) >> ((g & 3) * 4)) & 0xfu;
      const int64_t col0 = 4 * g + (nib & 3u), col1 = 4 * g + (nib >> 2);
      o[2 * g] = col0 < a.k ? from_float<T>(vdot(xrow, a.y + col0 * a.ldy, a.d)) : zero;
      o[2 * g + 1] = col1 < a.k ? from_float<T>(vdot(xrow, a.y + col1 * a.ldy, a.d)) : zero;
    }
  }
}

#define SK_INSTANTIATE(T, I) template void bsr_sddmm<T, I>(const BsrSddmmArgs<T, I>&, int64_t, int64_t);
SK_INSTANTIATE(float, int32_t)
SK_INSTANTIATE(float, int64_t)
SK_INSTANTIATE(half_t, int32_t)
SK_INSTANTIATE(half_t, int64_t)
SK_INSTANTIATE(bf16_t, int32_t)
SK_INSTANTIATE(bf16_t, int64_t)
#undef SK_INSTANTIATE

#define SK_INSTANTIATE(T)                                                                \
  template void bitmap_sddmm<T>(const BitmapSddmmArgs<T>&, int64_t, int64_t);           \
  template void sparse24_sddmm<T>(const Sparse24SddmmArgs<T>&, int64_t, int64_t);
SK_INSTANTIATE(float)
SK_INSTANTIATE(half_t)
SK_INSTANTIATE(bf16_t)
#undef SK_INSTANTIATE

SK_CPU_NAMESPACE_END
