// Bitmap SpMM on the CPU: out = A @ b with A in the bitmap format
// (docs/formats.md: 64 x 64 groups, 16 x 16 fragments, 8 x 8 tiles in mma
// A-register order, one 64-bit mask per tile, values tile by tile).
//
// Work unit: one group row (64 output rows) and up to 256 columns of out,
// accumulated in fp32 scratch while the row's groups are visited left to
// right, so each group's masks and values (<= 16 KiB) and b's 64 rows for it
// stay in cache while all 64 rows use them. Inside a group, a row's 8 mask bytes give its columns (ctz)
// and the popcounts of the mask bits before them give its values' positions.
//   n == 1, contiguous b: tile by tile, each row byte of a tile's mask
//           expands the row's packed values into 8 lanes (v8expand: a
//           permutation from a 256-entry table), one FMA against the 8 b
//           values of the tile's columns; the 8 rows of a tile row stay in
//           registers across its 8 tiles. Values are read contiguously.
//   n == 1, strided b: sparse dot products straight from the masks.
//   n >  1: the group is decoded once into (column, value) lists per row, then
//           b's rows are streamed in panels of up to 4 vectors held in
//           registers (as in the CSR kernel).
//
// The metadata checks are fused (docs/design.md, Validation): before a group
// is used, 0 <= group_offsets[g] <= group_offsets[g+1] <= len(values), the
// count equals its masks' popcount rounded up to 8, and edge groups have no
// bit outside m x k. A bad group stops the chunk and its group row is reported
// through *first_bad. The scratch is thread-local (no allocation per call).
#include "kernels/cpu/kernels.h"
#include "kernels/cpu/simd.h"

SK_CPU_NAMESPACE_BEGIN

namespace {

constexpr int kGroup = 64;          // group edge, in elements
constexpr int kTilesPerGroup = 64;  // 4 x 4 fragments x 4 tiles
// Columns of out per pass over a group row: bounds the fp32 scratch to 64 KiB
// (a pass re-decodes the groups, negligible against 256 columns of work).
constexpr int64_t kColumnChunk = 256;

static inline int popcount64(uint64_t x) { return __builtin_popcountll(x); }
static inline int ctz64(uint64_t x) { return __builtin_ctzll(x); }

// One row of one group, ready to iterate: w has a bit per stored column (0..63
// inside the group); the i-th set bit of w (column c) has its value at
// vals[base[c / 8] + i]. The row's 8 mask bytes (one per 8-column tile:
// fragment column fc = j / 2, tile column qc = j % 2) are joined into w, so the
// set-bit loop runs once per (row, group) rather than once per tile; base[j] is
// byte j's first value (tile start + set bits of the rows above it) minus the
// set bits of w before byte j.
struct GroupRow {
  uint64_t w;
  int base[8];
};

static inline GroupRow group_row(const uint64_t* masks, const uint16_t* starts, int lr) {
  const int fr = lr >> 4;          // fragment row
  const int qr = (lr >> 3) & 1;    // tile row inside the fragment: q = qr + 2 * qc
  const int shift = (lr & 7) * 8;  // the row's byte inside each tile mask
  const uint64_t below = (uint64_t(1) << shift) - 1;  // mask bits of the rows above it
  GroupRow gr;
  gr.w = 0;
  int before = 0;
  for (int j = 0; j < 8; ++j) {
    const int t = (fr * 4 + (j >> 1)) * 4 + qr + 2 * (j & 1);
    const uint64_t mask = masks[t];
    const uint64_t byte = (mask >> shift) & 0xffu;
    gr.w |= byte << (8 * j);
    gr.base[j] = int(starts[t]) + popcount64(mask & below) - before;
    before += popcount64(byte);
  }
  return gr;
}

// Scratch of one kernel call (one thread), allocated once (~100 KiB).
struct Scratch {
  uint16_t starts[kTilesPerGroup];     // tile starts of the current group
  float acc[kGroup * kColumnChunk];    // fp32 accumulators of the group row, rows nc long
  // n > 1: the current group decoded row by row (CSR inside the group)
  int row_begin[kGroup + 1];
  int cols[kGroup * kGroup];           // 0..63
  float vals[kGroup * kGroup];
};

// acc[lr, :] += row lr of the current group @ b[col0 .. col0 + 63, j0 .. j0 + nc),
// for the group's rows decoded in sc (acc's rows are nc long); b's columns in
// panels of 4, then 1 vector(s).
template <typename T>
static void group_times_b(const BitmapSpmmArgs<T>& a, Scratch& sc, int rows, int64_t col0, int64_t j0,
                          int64_t n) {
  const T* b = a.b + col0 * a.ldb + j0;
  int64_t j = 0;
  for (; j + 4 * kW <= n; j += 4 * kW) {
    for (int lr = 0; lr < rows; ++lr) {
      const int p0 = sc.row_begin[lr], p1 = sc.row_begin[lr + 1];
      if (p0 == p1) continue;
      float* acc = sc.acc + lr * n + j;
      VecF c0 = vload(acc), c1 = vload(acc + kW), c2 = vload(acc + 2 * kW), c3 = vload(acc + 3 * kW);
      for (int p = p0; p < p1; ++p) {
        const VecF v = vset1(sc.vals[p]);
        const T* brow = b + sc.cols[p] * a.ldb + j;
        c0 = vfma(v, vload(brow), c0);
        c1 = vfma(v, vload(brow + kW), c1);
        c2 = vfma(v, vload(brow + 2 * kW), c2);
        c3 = vfma(v, vload(brow + 3 * kW), c3);
      }
      vstore(acc, c0);
      vstore(acc + kW, c1);
      vstore(acc + 2 * kW, c2);
      vstore(acc + 3 * kW, c3);
    }
  }
  for (; j + kW <= n; j += kW) {
    for (int lr = 0; lr < rows; ++lr) {
      const int p0 = sc.row_begin[lr], p1 = sc.row_begin[lr + 1];
      if (p0 == p1) continue;
      float* acc = sc.acc + lr * n + j;
      VecF c0 = vload(acc);
      for (int p = p0; p < p1; ++p) c0 = vfma(vset1(sc.vals[p]), vload(b + sc.cols[p] * a.ldb + j), c0);
      vstore(acc, c0);
    }
  }
  for (; j < n; ++j) {
    for (int lr = 0; lr < rows; ++lr) {
      float s = 0.f;
      for (int p = sc.row_begin[lr]; p < sc.row_begin[lr + 1]; ++p)
        s += sc.vals[p] * to_float(b[sc.cols[p] * a.ldb + j]);
      sc.acc[lr * n + j] += s;
    }
  }
}

// Tile starts of group g's 64 tiles, relative to the group's first value.
// Returns the group's number of set bits.
static inline int tile_starts(const uint64_t* masks, uint16_t* starts) {
  int acc = 0;
  for (int t = 0; t < kTilesPerGroup; ++t) {
    starts[t] = uint16_t(acc);
    acc += popcount64(masks[t]);
  }
  return acc;
}

// Mask of the elements of tile t that lie inside the matrix for a group with
// `rows` x `cols` valid elements (the rule of core/validate_bitmap.cpp).
static inline uint64_t tile_inside_mask(int t, int64_t rows, int64_t cols) {
  const int f = t / 4, q = t % 4;
  const int64_t r0 = (f / 4) * 16 + (q & 1) * 8;
  const int64_t c0 = (f % 4) * 16 + (q >> 1) * 8;
  const int64_t nr = rows - r0 < 0 ? 0 : (rows - r0 > 8 ? 8 : rows - r0);
  const int64_t nc = cols - c0 < 0 ? 0 : (cols - c0 > 8 ? 8 : cols - c0);
  const uint64_t row_bits = nr == 8 ? ~uint64_t(0) : (uint64_t(1) << (8 * nr)) - 1;
  const uint64_t col_bits = ((uint64_t(1) << nc) - 1) * 0x0101010101010101ull;
  return row_bits & col_bits;
}

// The fused check of group g (rows x cols valid elements) whose masks have
// `bits` set bits.
template <typename T>
static inline bool group_ok(const BitmapSpmmArgs<T>& a, int64_t g, const uint64_t* masks, int bits, int64_t rows,
                            int64_t cols) {
  const int64_t o0 = a.group_offsets[g], o1 = a.group_offsets[g + 1];
  if (!(o0 >= 0 && o0 <= o1 && o1 <= a.nvalues)) return false;
  if (o1 - o0 != int64_t((bits + 7) / 8 * 8)) return false;
  if (rows < kGroup || cols < kGroup) {
    uint64_t outside = 0;
    for (int t = 0; t < kTilesPerGroup; ++t) outside |= masks[t] & ~tile_inside_mask(t, rows, cols);
    if (outside != 0) return false;
  }
  return true;
}

// n == 1 with b contiguous: acc[lr] (lr < 64) += row lr of the group @
// b[col0 .. col0 + cols), tile by tile with 8-lane expansions.
template <typename T>
static inline void group_dot_expand(const uint64_t* masks, const uint16_t* starts, const T* vals, int count,
                                    const T* b, int64_t cols, float* acc) {
  for (int fr = 0; fr < 4; ++fr) {
    for (int qr = 0; qr < 2; ++qr) {
      Vec8 r[8];
      for (int i = 0; i < 8; ++i) r[i] = v8zero();
      for (int fc = 0; fc < 4; ++fc) {
        for (int qc = 0; qc < 2; ++qc) {
          const int t = (fr * 4 + fc) * 4 + qr + 2 * qc;
          const uint64_t mask = masks[t];
          if (mask == 0) continue;
          const int c0 = fc * 16 + qc * 8;
          const Vec8 bv = c0 + 8 <= cols ? v8load(b + c0) : v8load_partial(b + c0, int(cols - c0));
          const int s = starts[t];
          // Row i's values start after the set bits of the rows above it
          // (independent popcounts, no serial chain).
          if (s + 64 <= count) {
            // every row's 8-value window lies inside the group's values
            for (int i = 0; i < 8; ++i) {
              const unsigned byte = unsigned(mask >> (8 * i)) & 0xffu;
              const int pos = s + (i ? __builtin_popcountll(mask & ((uint64_t(1) << (8 * i)) - 1)) : 0);
              r[i] = v8fma(v8expand_full(vals + pos, byte), bv, r[i]);
            }
          } else {
            for (int i = 0; i < 8; ++i) {
              const unsigned byte = unsigned(mask >> (8 * i)) & 0xffu;
              const int pos = s + (i ? __builtin_popcountll(mask & ((uint64_t(1) << (8 * i)) - 1)) : 0);
              r[i] = v8fma(pos + 8 <= count ? v8expand_full(vals + pos, byte) : v8expand(vals + pos, byte), bv,
                           r[i]);
            }
          }
        }
      }
      float* out = acc + fr * 16 + qr * 8;
      for (int i = 0; i < 8; ++i) out[i] += v8hsum(r[i]);
    }
  }
}

// 1 <= N <= 16 columns: acc[lr, 0..N) += row lr of the decoded group @ b's
// rows, the N columns in NF full vectors plus one partial of R lanes.
template <int N, typename T>
static void group_times_b_small(const BitmapSpmmArgs<T>& a, Scratch& sc, int rows, int64_t col0) {
  constexpr int NF = N / kW, R = N % kW, NV = NF + (R ? 1 : 0);
  constexpr int S = NV == 1 ? 2 : 1;
  const T* b = a.b + col0 * a.ldb;
  for (int lr = 0; lr < rows; ++lr) {
    const int p0 = sc.row_begin[lr], p1 = sc.row_begin[lr + 1];
    if (p0 == p1) continue;
    float* acc = sc.acc + lr * N;
    VecF c[S][NV];
    for (int u = 0; u < NF; ++u) c[0][u] = vload(acc + u * kW);
    if (R) c[0][NF] = vload_partial(acc + NF * kW, R);
    for (int s = 1; s < S; ++s)
      for (int u = 0; u < NV; ++u) c[s][u] = vzero();
    int p = p0;
    for (; p + S <= p1; p += S) {
      for (int s = 0; s < S; ++s) {
        const VecF v = vset1(sc.vals[p + s]);
        const T* brow = b + sc.cols[p + s] * a.ldb;
        for (int u = 0; u < NF; ++u) c[s][u] = vfma(v, vload(brow + u * kW), c[s][u]);
        if (R) c[s][NF] = vfma(v, vload_partial(brow + NF * kW, R), c[s][NF]);
      }
    }
    for (; p < p1; ++p) {
      const VecF v = vset1(sc.vals[p]);
      const T* brow = b + sc.cols[p] * a.ldb;
      for (int u = 0; u < NF; ++u) c[0][u] = vfma(v, vload(brow + u * kW), c[0][u]);
      if (R) c[0][NF] = vfma(v, vload_partial(brow + NF * kW, R), c[0][NF]);
    }
    for (int s = 1; s < S; ++s)
      for (int u = 0; u < NV; ++u) c[0][u] = vadd(c[0][u], c[s][u]);
    for (int u = 0; u < NF; ++u) vstore(acc + u * kW, c[0][u]);
    if (R) vstore_partial(acc + NF * kW, c[0][NF], R);
  }
}

// Output rows of group row gi, columns [j0, j0 + nc).
template <typename T>
static bool group_row_spmm(const BitmapSpmmArgs<T>& a, Scratch& sc, int64_t gi, int64_t j0, int64_t nc) {
  const int64_t gk = (a.k + kGroup - 1) / kGroup;
  const int64_t r0 = gi * kGroup;
  const int rows = int(a.m - r0 < kGroup ? a.m - r0 : kGroup);
  for (int64_t p = 0; p < rows * nc; ++p) sc.acc[p] = 0.f;
  for (int64_t gj = 0; gj < gk; ++gj) {
    const int64_t g = gi * gk + gj;
    const uint64_t* masks = a.bitmaps + g * kTilesPerGroup;
    const int64_t col0 = gj * kGroup;
    const int64_t cols = a.k - col0 < kGroup ? a.k - col0 : kGroup;
    const int bits = tile_starts(masks, sc.starts);
    if (!group_ok(a, g, masks, bits, rows, cols)) return false;
    if (bits == 0) continue;  // empty group
    const T* vals = a.values + a.group_offsets[g];
    if (a.n == 1 && a.ldb == 1) {
      group_dot_expand(masks, sc.starts, vals, (bits + 7) / 8 * 8, a.b + col0, cols, sc.acc);
    } else if (a.n == 1) {
      // Dot products straight from the masks, two accumulators per row.
      const T* b = a.b + col0 * a.ldb;
      for (int lr = 0; lr < rows; ++lr) {
        GroupRow gr = group_row(masks, sc.starts, lr);
        float s0 = 0.f, s1 = 0.f;
        int i = 0;
        while (gr.w != 0) {
          int c = ctz64(gr.w);
          gr.w &= gr.w - 1;
          s0 += to_float(vals[gr.base[c >> 3] + i]) * to_float(b[c * a.ldb]);
          ++i;
          if (gr.w == 0) break;
          c = ctz64(gr.w);
          gr.w &= gr.w - 1;
          s1 += to_float(vals[gr.base[c >> 3] + i]) * to_float(b[c * a.ldb]);
          ++i;
        }
        sc.acc[lr] += s0 + s1;
      }
    } else {
      // Decode the group once, then stream b's 64 rows of this group per panel.
      int p = 0;
      for (int lr = 0; lr < rows; ++lr) {
        sc.row_begin[lr] = p;
        GroupRow gr = group_row(masks, sc.starts, lr);
        for (int i = 0; gr.w != 0; ++i) {
          const int c = ctz64(gr.w);
          gr.w &= gr.w - 1;
          sc.cols[p] = c;
          sc.vals[p] = to_float(vals[gr.base[c >> 3] + i]);
          ++p;
        }
      }
      sc.row_begin[rows] = p;
      if (nc == a.n && a.n <= 16) {
        switch (a.n) {
#define SK_CASE(N) \
  case N: group_times_b_small<N>(a, sc, rows, col0); break;
          SK_CASE(1) SK_CASE(2) SK_CASE(3) SK_CASE(4) SK_CASE(5) SK_CASE(6) SK_CASE(7) SK_CASE(8)
          SK_CASE(9) SK_CASE(10) SK_CASE(11) SK_CASE(12) SK_CASE(13) SK_CASE(14) SK_CASE(15) SK_CASE(16)
#undef SK_CASE
          default: break;
        }
      } else {
        group_times_b(a, sc, rows, col0, j0, nc);
      }
    }
  }
  for (int lr = 0; lr < rows; ++lr) {
    const float* acc = sc.acc + lr * nc;
    T* out = a.out + (r0 + lr) * a.ldo + j0;
    int64_t j = 0;
    for (; j + kW <= nc; j += kW) vstore(out + j, vload(acc + j));
    if (j < nc) vstore_partial(out + j, vload_partial(acc + j, int(nc - j)), int(nc - j));
  }
  return true;
}

__attribute__((noinline)) static Scratch& thread_scratch() {
  static thread_local Scratch sc;
  return sc;
}

}  // namespace

template <typename T>
void bitmap_spmm(const BitmapSpmmArgs<T>& a, int64_t begin, int64_t end, int64_t* first_bad) {
  // One scratch per thread, reused by every call (the thread-local address is
  // looked up once here, not inside the loops).
  Scratch& sc = thread_scratch();
  *first_bad = -1;
  for (int64_t gi = begin; gi < end; ++gi)
    for (int64_t j0 = 0; j0 < a.n; j0 += kColumnChunk)
      if (!group_row_spmm(a, sc, gi, j0, a.n - j0 < kColumnChunk ? a.n - j0 : kColumnChunk)) {
        *first_bad = gi;
        return;
      }
}

template void bitmap_spmm<float>(const BitmapSpmmArgs<float>&, int64_t, int64_t, int64_t*);
template void bitmap_spmm<half_t>(const BitmapSpmmArgs<half_t>&, int64_t, int64_t, int64_t*);
template void bitmap_spmm<bf16_t>(const BitmapSpmmArgs<bf16_t>&, int64_t, int64_t, int64_t*);

SK_CPU_NAMESPACE_END
