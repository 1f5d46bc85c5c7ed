// Transposed SpMM on the CPU, out[k, n] = A^T @ b with b [m, n]: the gradient
// of the dense operand of every SpMM format. No atomics: every output row (a
// column of A) is owned by one thread, and all of its terms are gathered there.
//   CSR / BSR: the glue first builds the transposed index (csr_transpose: a
//     counting sort, O(nnz + k), on the block level for BSR); then each output
//     row sums values * rows of b over its column's entries, its columns of
//     out held in registers in panels of 4 vectors, then the rest in one pass.
//   bitmap / 2:4: both formats are addressed by position, so a thread owning a
//     strip of 64 columns of A can visit exactly its part of every row. The
//     strip is decoded 64 rows at a time into per-column lists (a local CSC of
//     a 64 x 64 tile), which are accumulated into fp32 scratch [64, <= 256] for
//     the strip's 64 output rows, stored once at the end.
#include <cstring>
#include <new>
#include <type_traits>
#include <vector>

#include "kernels/cpu/grad_kernels.h"
#include "kernels/cpu/kernels.h"
#include "kernels/cpu/scratch.h"
#include "kernels/cpu/simd.h"

SK_CPU_NAMESPACE_BEGIN

// ---------------------------------------------------------------------------
// Transposed index.
// ---------------------------------------------------------------------------
template <typename I>
void csr_transpose(const CsrTransposeArgs<I>& a) {
  const int64_t nnz = int64_t(a.row_ptr[a.m]);
  for (int64_t j = 0; j <= a.k; ++j) a.col_ptr[j] = 0;
  for (int64_t p = 0; p < nnz; ++p) ++a.col_ptr[int64_t(a.col_idx[p]) + 1];
  for (int64_t j = 0; j < a.k; ++j) a.col_ptr[j + 1] += a.col_ptr[j];
  // Scatter with col_ptr[j] as column j's cursor: afterwards col_ptr[j] holds
  // the end of column j, i.e. the start of column j + 1.
  for (int64_t i = 0; i < a.m; ++i) {
    const int64_t p1 = int64_t(a.row_ptr[i + 1]);
    for (int64_t p = int64_t(a.row_ptr[i]); p < p1; ++p) {
      const int64_t q = int64_t(a.col_ptr[int64_t(a.col_idx[p])]++);
      a.row_of[q] = I(i);
      a.perm[q] = I(p);
    }
  }
  for (int64_t j = a.k; j > 0; --j) a.col_ptr[j] = a.col_ptr[j - 1];
  a.col_ptr[0] = 0;
}

namespace {

// ---------------------------------------------------------------------------
// out[0, n) = sum of v * brow[0, n) over the terms for_each(f) passes to
// f(float v, const T* brow), accumulated in fp32 registers.
// ---------------------------------------------------------------------------
template <int NV, typename T, typename ForEach>
static inline void gather_panel(T* out, int64_t j, const ForEach& for_each) {
  VecF acc[NV];
  for (int u = 0; u < NV; ++u) acc[u] = vzero();
  for_each([&](float v, const T* brow) {
    const VecF vv = vset1(v);
    for (int u = 0; u < NV; ++u) acc[u] = vfma(vv, vload(brow + j + u * kW), acc[u]);
  });
  for (int u = 0; u < NV; ++u) vstore(out + j + u * kW, acc[u]);
}

// Columns in panels of 4 vectors, then the rest in one pass over the terms
// (a pass per vector and one per column past the last whole vector made n = 4
// 1.2-3.7x slower than n = 16).
template <typename T, typename ForEach>
static void gather_row(T* out, int64_t n, const ForEach& for_each) {
  int64_t j = 0;
  for (; j + 4 * kW <= n; j += 4 * kW) gather_panel<4>(out, j, for_each);
  if (j == n) return;
  with_tail(int(n - j), [&](auto t) {
    VecF acc[t.kNV];
    t.zero(acc);
    for_each([&](float v, const T* brow) { t.fma(vset1(v), brow + j, acc); });
    t.store(out + j, acc);
  });
}

// ---------------------------------------------------------------------------
// 64 x 64 tiles as local CSC, accumulated into fp32 scratch (bitmap, 2:4).
// ---------------------------------------------------------------------------
constexpr int kTile = 64;
constexpr int64_t kColumnChunk = 256;  // columns of out per pass: 64 KiB of scratch

struct TileScratch {
  float acc[kTile * kColumnChunk];  // the strip's 64 output rows, nc long
  // decoded elements of the current tile, in decoding order ...
  int n_elems;
  uint8_t erow[kTile * kTile], ecol[kTile * kTile];
  float eval[kTile * kTile];
  // ... and sorted by column: column lc is [col_begin[lc], col_begin[lc + 1])
  int col_begin[kTile + 1];
  uint8_t rows[kTile * kTile];
  float vals[kTile * kTile];
};

static inline void tile_push(TileScratch& sc, int lr, int lc, float v) {
  const int e = sc.n_elems++;
  sc.erow[e] = uint8_t(lr);
  sc.ecol[e] = uint8_t(lc);
  sc.eval[e] = v;
}

// Counting sort of the decoded elements by column (stable: rows stay ascending
// as decoded).
static void tile_sort_by_column(TileScratch& sc) {
  int cursor[kTile + 1];
  for (int c = 0; c <= kTile; ++c) cursor[c] = 0;
  for (int e = 0; e < sc.n_elems; ++e) ++cursor[sc.ecol[e] + 1];
  for (int c = 0; c < kTile; ++c) cursor[c + 1] += cursor[c];
  for (int c = 0; c <= kTile; ++c) sc.col_begin[c] = cursor[c];
  for (int e = 0; e < sc.n_elems; ++e) {
    const int q = cursor[sc.ecol[e]]++;
    sc.rows[q] = sc.erow[e];
    sc.vals[q] = sc.eval[e];
  }
}

// acc[lc, 0 .. nc) += sum over column lc's entries of v * b[row, 0 .. nc),
// b pointing at the tile's first row and the chunk's first column.
template <typename T>
static void tile_accumulate(TileScratch& sc, const T* b, int64_t ldb, int64_t nc) {
  for (int lc = 0; lc < kTile; ++lc) {
    const int p0 = sc.col_begin[lc], p1 = sc.col_begin[lc + 1];
    if (p0 == p1) continue;
    float* acc = sc.acc + lc * nc;
    int64_t j = 0;
    for (; j + 4 * kW <= nc; j += 4 * kW) {
      VecF c0 = vload(acc + j), c1 = vload(acc + j + kW), c2 = vload(acc + j + 2 * kW),
           c3 = vload(acc + j + 3 * kW);
      for (int p = p0; p < p1; ++p) {
        const VecF v = vset1(sc.vals[p]);
        const T* brow = b + int64_t(sc.rows[p]) * ldb + j;
        c0 = vfma(v, vload(brow), c0);
        c1 = vfma(v, vload(brow + kW), c1);
        c2 = vfma(v, vload(brow + 2 * kW), c2);
        c3 = vfma(v, vload(brow + 3 * kW), c3);
      }
      vstore(acc + j, c0);
      vstore(acc + j + kW, c1);
      vstore(acc + j + 2 * kW, c2);
      vstore(acc + j + 3 * kW, c3);
    }
    if (j == nc) continue;
    with_tail(int(nc - j), [&](auto t) {
      VecF c[t.kNV];
      t.load(acc + j, c);
      for (int p = p0; p < p1; ++p) t.fma(vset1(sc.vals[p]), b + j + int64_t(sc.rows[p]) * ldb, c);
      t.store(acc + j, c);
    });
  }
}

// out rows [0, rows) (row stride ldo), columns [0, nc) = acc.
template <typename T>
static void tile_store(const TileScratch& sc, T* out, int64_t ldo, int rows, int64_t nc) {
  for (int lc = 0; lc < rows; ++lc) {
    const float* acc = sc.acc + lc * nc;
    T* o = out + lc * ldo;
    int64_t j = 0;
    for (; j + kW <= nc; j += kW) vstore(o + j, vload(acc + j));
    for (; j < nc; ++j) o[j] = from_float<T>(acc[j]);
  }
}

static inline int ctz64(uint64_t x) { return __builtin_ctzll(x); }

}  // namespace

// ---------------------------------------------------------------------------
// CSR
// ---------------------------------------------------------------------------
template <typename T, typename I>
void csr_spmm_t(const CsrSpmmTArgs<T, I>& a, int64_t begin, int64_t end) {
  for (int64_t j = begin; j < end; ++j) {
    const int64_t q0 = int64_t(a.col_ptr[j]), q1 = int64_t(a.col_ptr[j + 1]);
    gather_row(a.out + j * a.ldo, a.n, [&](auto&& f) {
      for (int64_t q = q0; q < q1; ++q) f(to_float(a.values[int64_t(a.perm[q])]), a.b + int64_t(a.row_of[q]) * a.ldb);
    });
  }
}

// Scatter form. Row i's b row (WP floats, zero past n) stays in registers
// while each of its terms adds v * b[i] to its column's buffer row: a load,
// an FMA and a store per vector, in L1/L2 (the buffer is k * WP floats). No
// transposed index: building one (a counting sort with two random writes per
// term) took ~14 ns per term, 70 ms of the 76 at 70 % 4096^2 n = 16 (fp32,
// 2 threads), where this form takes ~4.

// Row i of b in registers for the scatter: WP floats, zero past n.
template <int WP>
struct BRow {
  static constexpr int kNV = WP < kW ? 1 : WP / kW;
  VecF v[kNV];
  float s;  // WP == 1: the value itself
};
template <int WP, typename T>
static inline BRow<WP> load_brow(const T* brow, int64_t n) {
  BRow<WP> r;
  if constexpr (WP == 1) {
    r.s = to_float(brow[0]);
  } else {
    static_assert(WP < kW ? kW % WP == 0 : WP % kW == 0, "a buffer row is whole or half vectors");
    for (int u = 0; u < r.kNV; ++u) {
      const int64_t left = n - int64_t(u) * kW;
      r.v[u] = left >= kW ? vload(brow + u * kW) : left > 0 ? vload_partial(brow + u * kW, int(left)) : vzero();
    }
  }
  return r;
}

// The cnt terms (cols[t], vals[t]) of one row (its b row in br) added to
// their columns' buffer rows. In groups of G terms with increasing columns
// (so distinct: checked, else one by one) whose loads all come before their
// stores: one term at a time, each buffer row's load was predicted to wait on
// the previous term's store (a term took ~9 cycles; 70 % 4096^2 fp32 n = 32,
// 2 threads: 11.8 -> 8.0 ms).
template <int WP, typename C, typename T>
static inline void scatter_terms(const BRow<WP>& br, const C* cols, const T* vals, int64_t cnt, float* acc) {
  if constexpr (WP == 1) {
    for (int64_t t = 0; t < cnt; ++t) acc[int64_t(cols[t])] += to_float(vals[t]) * br.s;
    return;
  } else {
#if defined(__AVX512F__)
    if constexpr (WP < kW) {  // WP == 8: half a vector, 256-bit
      const __m256 bv = _mm512_castps512_ps256(br.v[0].v);
      for (int64_t t = 0; t < cnt; ++t) {
        float* r = acc + int64_t(cols[t]) * WP;
        _mm256_storeu_ps(r, _mm256_fmadd_ps(_mm256_set1_ps(to_float(vals[t])), bv, _mm256_loadu_ps(r)));
      }
      return;
    } else
#endif
    {
      constexpr int NV = BRow<WP>::kNV, G = NV >= 8 ? 1 : NV >= 4 ? 2 : 4;
      int64_t t = 0;
      for (; t + G <= cnt; t += G) {
        int64_t c[G];
        bool increasing = true;
        for (int g = 0; g < G; ++g) c[g] = int64_t(cols[t + g]);
        for (int g = 1; g < G; ++g) increasing &= c[g - 1] < c[g];
        if (!increasing) break;
        VecF x[G][NV];
        for (int g = 0; g < G; ++g)
          for (int u = 0; u < NV; ++u) x[g][u] = vload(acc + c[g] * WP + u * kW);
        for (int g = 0; g < G; ++g) {
          const VecF v = vset1(to_float(vals[t + g]));
          for (int u = 0; u < NV; ++u) vstore(acc + c[g] * WP + u * kW, vfma(v, br.v[u], x[g][u]));
        }
      }
      for (; t < cnt; ++t) {
        const VecF v = vset1(to_float(vals[t]));
        float* r = acc + int64_t(cols[t]) * WP;
        for (int u = 0; u < NV; ++u) vstore(r + u * kW, vfma(v, br.v[u], vload(r + u * kW)));
      }
    }
  }
}

// Rows [begin, end) of a CSR A scattered into acc (k x WP floats); each row's
// pointers are checked and its columns a chunk of kScatterCheckChunk at a time
// just before use. Returns the first bad row, or -1.
constexpr int64_t kScatterCheckChunk = 64;
template <int WP, typename T, typename I>
static int64_t csr_scatter_rows(const CsrSpmmTScatterArgs<T, I>& a, int64_t begin, int64_t end, float* acc) {
  for (int64_t i = begin; i < end; ++i) {
    const int64_t p0 = int64_t(a.row_ptr[i]), p1 = int64_t(a.row_ptr[i + 1]);
    if (!(p0 >= 0 && p0 <= p1 && p1 <= a.nnz)) return i;
    if (p0 == p1) continue;
    const BRow<WP> br = load_brow<WP>(a.b + i * a.ldb, a.n);
    for (int64_t c0 = p0; c0 < p1; c0 += kScatterCheckChunk) {
      const int64_t ce = p1 - c0 < kScatterCheckChunk ? p1 : c0 + kScatterCheckChunk;
      if (!cols_in_range(a.col_idx + c0, ce - c0, a.k)) return i;
      scatter_terms<WP>(br, a.col_idx + c0, a.values + c0, ce - c0, acc);
    }
  }
  return -1;
}

// Rows [begin, end) of a 2:4 A (validated) scattered into acc (kp x WP
// floats: the padding columns' terms land in rows >= k, never read): per meta
// word, its 8 columns (increasing) and values.
template <int WP, typename T>
static void sparse24_scatter_rows(const Sparse24SpmmTArgs<T>& a, int64_t begin, int64_t end, float* acc) {
  const int64_t kp = (a.k + 15) / 16 * 16, words = kp / 16;
  alignas(32) int32_t cols[8];
  for (int64_t i = begin; i < end; ++i) {
    const BRow<WP> br = load_brow<WP>(a.b + i * a.ldb, a.n);
    const uint16_t* meta = a.meta + i * words;
    const T* vals = a.values + i * (kp / 2);
    for (int64_t w = 0; w < words; ++w) {
      v8store_sparse24_offsets(cols, meta[w], 1);
      for (int t = 0; t < 8; ++t) cols[t] += int32_t(16 * w);
      scatter_terms<WP>(br, cols, vals + 8 * w, 8, acc);
    }
  }
}

// Group rows [begin, end) of a bitmap A (validated) scattered into acc (k x
// WP floats), row by row: a row's terms are decoded across all its groups
// into (columns, values) lists first (per (row, tile) byte: the set-bit
// positions from a table and the tile row's 8 values, stored whole, the write
// position advanced by the byte's popcount), so the scatter takes them in
// groups of increasing columns (scattered per (row, tile), ~2.4 terms at 70 %,
// they went one by one: 1.7x slower than the strip kernel). Scratch: the tile
// starts of a group row's groups and the row's lists (k + 8 entries each).
template <int WP, typename T>
static void bitmap_scatter_group_rows(const BitmapSpmmTArgs<T>& a, int64_t begin, int64_t end, float* acc,
                                      uint16_t* starts, int32_t* row_cols, float* row_vals) {
  const int64_t gk = (a.k + 63) / 64;
  const T* const vend = a.values + a.group_offsets[((a.m + 63) / 64) * gk];
  for (int64_t gi = begin; gi < end; ++gi) {
    const int rows = int(a.m - gi * 64 < 64 ? a.m - gi * 64 : 64);
    for (int64_t gj = 0; gj < gk; ++gj) bitmap_tile_starts(a.bitmaps + (gi * gk + gj) * 64, starts + gj * 64);
    for (int lr = 0; lr < rows; ++lr) {
      const int mrow = (lr >> 4) * 16 + ((lr >> 3) & 1), shift = (lr & 7) * 8;
      const uint64_t below = (uint64_t(1) << shift) - 1;
      int64_t cnt = 0;
      for (int64_t gj = 0; gj < gk; ++gj) {
        const int64_t g = gi * gk + gj;
        const uint64_t* masks = a.bitmaps + g * 64;
        const T* vals = a.values + a.group_offsets[g];
        for (int j = 0; j < 8; ++j) {
          const int t = mrow + kBitmapTileOffset[j];
          const uint64_t mask = masks[t];
          const unsigned byte = unsigned(mask >> shift) & 0xffu;
          const int c = __builtin_popcount(byte);
          const T* v = vals + starts[gj * 64 + t] + __builtin_popcountll(mask & below);
          v8store_set_positions(row_cols + cnt, byte, int32_t(gj * 64 + 8 * j), 1);
          v8storef(row_vals + cnt, v + 8 <= vend ? v8load(v) : v8load_partial(v, c));
          cnt += c;
        }
      }
      if (cnt == 0) continue;
      scatter_terms<WP>(load_brow<WP>(a.b + (gi * 64 + lr) * a.ldb, a.n), row_cols, row_vals, cnt, acc);
    }
  }
}

// ---------------------------------------------------------------------------
// BSR
// ---------------------------------------------------------------------------
template <typename T, typename I>
void bsr_spmm_t(const BsrSpmmTArgs<T, I>& a, int64_t begin, int64_t end) {
  const int64_t rc = a.r * a.c;
  for (int64_t bj = begin; bj < end; ++bj) {
    const int64_t q0 = int64_t(a.col_ptr[bj]), q1 = int64_t(a.col_ptr[bj + 1]);
    const int64_t cols = a.k - bj * a.c < a.c ? a.k - bj * a.c : a.c;
    for (int64_t jj = 0; jj < cols; ++jj) {
      gather_row(a.out + (bj * a.c + jj) * a.ldo, a.n, [&](auto&& f) {
        for (int64_t q = q0; q < q1; ++q) {
          const int64_t bi = int64_t(a.row_of[q]);
          const int64_t rows = a.m - bi * a.r < a.r ? a.m - bi * a.r : a.r;
          const T* blk = a.blocks + int64_t(a.perm[q]) * rc + jj;
          const T* b = a.b + bi * a.r * a.ldb;
          for (int64_t ii = 0; ii < rows; ++ii) f(to_float(blk[ii * a.c]), b + ii * a.ldb);
        }
      });
    }
  }
}

// ---------------------------------------------------------------------------
// bitmap
// ---------------------------------------------------------------------------
template <typename T>
void bitmap_spmm_t(const BitmapSpmmTArgs<T>& a, int64_t begin, int64_t end) {
  const int64_t gm = (a.m + kTile - 1) / kTile, gk = (a.k + kTile - 1) / kTile;
  TileScratch* sc = new TileScratch;
  for (int64_t gj = begin; gj < end; ++gj) {
    const int cols = int(a.k - gj * kTile < kTile ? a.k - gj * kTile : kTile);
    for (int64_t j0 = 0; j0 < a.n; j0 += kColumnChunk) {
      const int64_t nc = a.n - j0 < kColumnChunk ? a.n - j0 : kColumnChunk;
      for (int64_t p = 0; p < kTile * nc; ++p) sc->acc[p] = 0.f;
      for (int64_t gi = 0; gi < gm; ++gi) {
        const int64_t g = gi * gk + gj;
        const int64_t off = a.group_offsets[g];
        if (a.group_offsets[g + 1] == off) continue;
        const uint64_t* masks = a.bitmaps + g * 64;
        const T* vals = a.values + off;
        sc->n_elems = 0;
        for (int t = 0; t < 64; ++t) {
          uint64_t mask = masks[t];
          const int f = t >> 2, q = t & 3;
          const int lr0 = (f >> 2) * 16 + (q & 1) * 8, lc0 = (f & 3) * 16 + (q >> 1) * 8;
          while (mask != 0) {
            const int bit = ctz64(mask);
            mask &= mask - 1;
            tile_push(*sc, lr0 + (bit >> 3), lc0 + (bit & 7), to_float(vals[sc->n_elems]));
          }
        }
        tile_sort_by_column(*sc);
        tile_accumulate(*sc, a.b + gi * kTile * a.ldb + j0, a.ldb, nc);
      }
      tile_store(*sc, a.out + gj * kTile * a.ldo + j0, a.ldo, cols, nc);
    }
  }
  delete sc;
}

// ---------------------------------------------------------------------------
// 2:4
// ---------------------------------------------------------------------------
template <typename T>
void sparse24_spmm_t(const Sparse24SpmmTArgs<T>& a, int64_t begin, int64_t end) {
  const int64_t kp = (a.k + 15) / 16 * 16;
  const int64_t groups = (a.k + 3) / 4;  // groups with at least one column < k
  TileScratch* sc = new TileScratch;
  for (int64_t cb = begin; cb < end; ++cb) {
    const int64_t c0 = cb * kTile;
    const int cols = int(a.k - c0 < kTile ? a.k - c0 : kTile);
    const int64_t g0 = cb * (kTile / 4), g1 = g0 + kTile / 4 < groups ? g0 + kTile / 4 : groups;
    for (int64_t j0 = 0; j0 < a.n; j0 += kColumnChunk) {
      const int64_t nc = a.n - j0 < kColumnChunk ? a.n - j0 : kColumnChunk;
      for (int64_t p = 0; p < kTile * nc; ++p) sc->acc[p] = 0.f;
      for (int64_t i0 = 0; i0 < a.m; i0 += kTile) {
        const int rows = int(a.m - i0 < kTile ? a.m - i0 : kTile);
        sc->n_elems = 0;
        for (int lr = 0; lr < rows; ++lr) {
          const T* vals = a.values + (i0 + lr) * (kp / 2);
          const uint16_t* meta = a.meta + (i0 + lr) * (kp / 16);
          for (int64_t g = g0; g < g1; ++g) {
            const unsigned nib = (unsigned(meta[g >> 2]) >> ((g & 3) * 4)) & 0xfu;
            const int64_t col0 = 4 * g + (nib & 3u), col1 = 4 * g + (nib >> 2);
            if (col0 < a.k) tile_push(*sc, lr, int(col0 - c0), to_float(vals[2 * g]));
            if (col1 < a.k) tile_push(*sc, lr, int(col1 - c0), to_float(vals[2 * g + 1]));
          }
        }
        tile_sort_by_column(*sc);
        tile_accumulate(*sc, a.b + i0 * a.ldb + j0, a.ldb, nc);
      }
      tile_store(*sc, a.out + c0 * a.ldo + j0, a.ldo, cols, nc);
    }
  }
  delete sc;
}

// f(std::integral_constant<int, WP>{}) for WP = csr_scatter_width(n), with
// acc (rows x WP floats) zeroed first: the scatter kernels' common entry.
template <typename F>
static inline void with_zeroed_scatter_rows(int64_t n, float* acc, int64_t rows, const F& f) {
  const int64_t wp = csr_scatter_width(n);
  std::memset(acc, 0, size_t(rows * wp) * sizeof(float));
  switch (wp) {
    case 1: f(std::integral_constant<int, 1>{}); break;
    case 8: f(std::integral_constant<int, 8>{}); break;
    case 16: f(std::integral_constant<int, 16>{}); break;
    case 32: f(std::integral_constant<int, 32>{}); break;
    case 48: f(std::integral_constant<int, 48>{}); break;
    default: f(std::integral_constant<int, 64>{}); break;
  }
}

template <typename T, typename I>
void csr_spmm_t_scatter(const CsrSpmmTScatterArgs<T, I>& a, int64_t begin, int64_t end, float* acc,
                        int64_t* first_bad) {
  with_zeroed_scatter_rows(a.n, acc, a.k,
                           [&](auto wp) { *first_bad = csr_scatter_rows<wp.value>(a, begin, end, acc); });
}

struct BitmapScatterScratch {
  std::vector<uint16_t> starts;
  std::vector<int32_t> cols;
  std::vector<float> vals;
};
__attribute__((noinline)) static BitmapScatterScratch& thread_bitmap_scratch() {
  static thread_local BitmapScatterScratch sc;
  return sc;
}

template <typename T>
void bitmap_spmm_t_scatter(const BitmapSpmmTArgs<T>& a, int64_t begin, int64_t end, float* acc, bool* ok) {
  *ok = false;
  const int64_t gk = (a.k + 63) / 64;
  BitmapScatterScratch& sc = thread_bitmap_scratch();
  try {
    if (int64_t(sc.starts.size()) < gk * 64) sc.starts.resize(size_t(gk * 64));
    if (int64_t(sc.cols.size()) < gk * 64 + 8) sc.cols.resize(size_t(gk * 64 + 8));
    if (int64_t(sc.vals.size()) < gk * 64 + 8) sc.vals.resize(size_t(gk * 64 + 8));
  } catch (const std::bad_alloc&) {
    return;
  }
  with_zeroed_scatter_rows(a.n, acc, a.k, [&](auto wp) {
    bitmap_scatter_group_rows<wp.value>(a, begin, end, acc, sc.starts.data(), sc.cols.data(), sc.vals.data());
  });
  *ok = true;
}

template <typename T>
void sparse24_spmm_t_scatter(const Sparse24SpmmTArgs<T>& a, int64_t begin, int64_t end, float* acc) {
  with_zeroed_scatter_rows(a.n, acc, (a.k + 15) / 16 * 16,
                           [&](auto wp) { sparse24_scatter_rows<wp.value>(a, begin, end, acc); });
}

template <typename T>
void csr_spmm_t_reduce(const float* const* parts, int64_t nparts, int64_t n, T* out, int64_t ldo, int64_t begin,
                       int64_t end) {
  const int64_t wp = csr_scatter_width(n);
  for (int64_t c = begin; c < end; ++c) {
    T* o = out + c * ldo;
    int64_t j = 0;
    for (; j + kW <= n; j += kW) {
      VecF s = vload(parts[0] + c * wp + j);
      for (int64_t q = 1; q < nparts; ++q) s = vadd(s, vload(parts[q] + c * wp + j));
      vstore(o + j, s);
    }
    for (; j < n; ++j) {
      float s = parts[0][c * wp + j];
      for (int64_t q = 1; q < nparts; ++q) s += parts[q][c * wp + j];
      o[j] = from_float<T>(s);
    }
  }
}

template void csr_transpose<int32_t>(const CsrTransposeArgs<int32_t>&);
template void csr_transpose<int64_t>(const CsrTransposeArgs<int64_t>&);

#define SK_INSTANTIATE(T, I)                                                           \
  template void csr_spmm_t<T, I>(const CsrSpmmTArgs<T, I>&, int64_t, int64_t);        \
  template void csr_spmm_t_scatter<T, I>(const CsrSpmmTScatterArgs<T, I>&, int64_t, int64_t, float*, int64_t*); \
  template void bsr_spmm_t<T, I>(const BsrSpmmTArgs<T, I>&, int64_t, int64_t);
SK_INSTANTIATE(float, int32_t)
SK_INSTANTIATE(float, int64_t)
SK_INSTANTIATE(half_t, int32_t)
SK_INSTANTIATE(half_t, int64_t)
SK_INSTANTIATE(bf16_t, int32_t)
SK_INSTANTIATE(bf16_t, int64_t)
#undef SK_INSTANTIATE

#define SK_INSTANTIATE(T)                                                                  \
  template void csr_spmm_t_reduce<T>(const float* const*, int64_t, int64_t, T*, int64_t, int64_t, int64_t); \
  template void sparse24_spmm_t_scatter<T>(const Sparse24SpmmTArgs<T>&, int64_t, int64_t, float*); \
  template void bitmap_spmm_t_scatter<T>(const BitmapSpmmTArgs<T>&, int64_t, int64_t, float*, bool*); \
  template void bitmap_spmm_t<T>(const BitmapSpmmTArgs<T>&, int64_t, int64_t);            \
  template void sparse24_spmm_t<T>(const Sparse24SpmmTArgs<T>&, int64_t, int64_t);
SK_INSTANTIATE(float)
SK_INSTANTIATE(half_t)
SK_INSTANTIATE(bf16_t)
#undef SK_INSTANTIATE

SK_CPU_NAMESPACE_END
