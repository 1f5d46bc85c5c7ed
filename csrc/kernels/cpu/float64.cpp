// float64 kernels on the CPU (float64.h): plain loops in double, one output row
// (or slot) owned by one range, formats validated by the glue beforehand.
//
//   SpMM:        out[i, :] = sum of v * b[col, :] over the stored elements of row i.
//   SpMM^T:      out[j, :] = sum of v * b[row, :] over the stored elements of column j;
//                CSR / BSR walk the transposed index, bitmap / 2:4 a strip of 64
//                columns of A (both formats are addressed by position).
//   SDDMM:       out[slot] = dot(x[row], y[col]), 0 for slots outside the matrix.
//   SpGEMM:      the products of a row gathered, sorted by column (heap sort, in
//                this ISA's namespace: isa.h, the COMDAT rule), equal columns summed.
//
// No std algorithm or container is used here.
#include "kernels/cpu/float64.h"
#include "kernels/cpu/isa.h"

SK_CPU_NAMESPACE_BEGIN

namespace {

constexpr int64_t kGroup = 64;  // bitmap group edge; also the 2:4 transposed strip width

static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

// o[0, n) = 0
static inline void zero_row(double* o, int64_t n) {
  for (int64_t j = 0; j < n; ++j) o[j] = 0.0;
}

// o[0, n) += v * src[0, n)
static inline void axpy(double* o, double v, const double* src, int64_t n) {
  for (int64_t j = 0; j < n; ++j) o[j] += v * src[j];
}

static inline double dot(const double* x, const double* y, int64_t d) {
  double s = 0.0;
  for (int64_t t = 0; t < d; ++t) s += x[t] * y[t];
  return s;
}

// Calls f(local row, local column, slot) for every set bit of group g in the
// order of the values tensor (tiles t ascending, bits ascending); slot counts
// from group_offsets[g]. Returns the slot after the group's last set bit.
template <typename F>
static int64_t for_each_group_element(const int64_t* group_offsets, const uint64_t* bitmaps, int64_t g, const F& f) {
  int64_t slot = group_offsets[g];
  const uint64_t* masks = bitmaps + g * 64;
  for (int t = 0; t < 64; ++t) {
    const int fr = t >> 2, q = t & 3;
    const int64_t r0 = (fr >> 2) * 16 + (q & 1) * 8, c0 = (fr & 3) * 16 + (q >> 1) * 8;
    for (uint64_t mask = masks[t]; mask != 0; mask &= mask - 1) {
      const int bit = __builtin_ctzll(mask);
      f(r0 + (bit >> 3), c0 + (bit & 7), slot++);
    }
  }
  return slot;
}

// The column of slot s (0 or 1) of 2:4 group g in a row's metadata words.
static inline int64_t sparse24_col(const uint16_t* meta_row, int64_t g, int s) {
  const unsigned nib = (unsigned(meta_row[g >> 2]) >> ((g & 3) * 4)) & 0xfu;
  return 4 * g + (s == 0 ? (nib & 3u) : (nib >> 2));
}

// Heap sort of (cols, vals) pairs by column.
static void sift_down_pairs(int64_t* cols, double* vals, int64_t root, int64_t n) {
  for (int64_t child = 2 * root + 1; child < n; child = 2 * root + 1) {
    if (child + 1 < n && cols[child] < cols[child + 1]) ++child;
    if (!(cols[root] < cols[child])) return;
    const int64_t tc = cols[root];
    cols[root] = cols[child];
    cols[child] = tc;
    const double tv = vals[root];
    vals[root] = vals[child];
    vals[child] = tv;
    root = child;
  }
}

static void sort_pairs(int64_t* cols, double* vals, int64_t n) {
  for (int64_t s = n / 2 - 1; s >= 0; --s) sift_down_pairs(cols, vals, s, n);
  for (int64_t e = n - 1; e > 0; --e) {
    const int64_t tc = cols[0];
    cols[0] = cols[e];
    cols[e] = tc;
    const double tv = vals[0];
    vals[0] = vals[e];
    vals[e] = tv;
    sift_down_pairs(cols, vals, 0, e);
  }
}

}  // namespace

// ---------------------------------------------------------------------------
// SpMM
// ---------------------------------------------------------------------------
template <typename I>
void csr_spmm_f64(const CsrSpmmArgs<double, I>& a, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) {
    double* o = a.out + i * a.ldo;
    zero_row(o, a.n);
    const int64_t p1 = int64_t(a.row_ptr[i + 1]);
    for (int64_t p = int64_t(a.row_ptr[i]); p < p1; ++p)
      axpy(o, a.values[p], a.b + int64_t(a.col_idx[p]) * a.ldb, a.n);
  }
}

template <typename I>
void bsr_spmm_f64(const BsrSpmmArgs<double, I>& a, int64_t begin, int64_t end) {
  const int64_t rc = a.r * a.c;
  for (int64_t bi = begin; bi < end; ++bi) {
    const int64_t rows = min64(a.r, a.m - bi * a.r);
    for (int64_t ii = 0; ii < rows; ++ii) zero_row(a.out + (bi * a.r + ii) * a.ldo, a.n);
    const int64_t p1 = int64_t(a.block_row_ptr[bi + 1]);
    for (int64_t p = int64_t(a.block_row_ptr[bi]); p < p1; ++p) {
      const int64_t col0 = int64_t(a.block_col_idx[p]) * a.c;
      const int64_t cols = min64(a.c, a.k - col0);
      const double* blk = a.blocks + p * rc;
      for (int64_t ii = 0; ii < rows; ++ii) {
        double* o = a.out + (bi * a.r + ii) * a.ldo;
        for (int64_t jj = 0; jj < cols; ++jj) axpy(o, blk[ii * a.c + jj], a.b + (col0 + jj) * a.ldb, a.n);
      }
    }
  }
}

void bitmap_spmm_f64(const BitmapSpmmArgs<double>& a, int64_t begin, int64_t end) {
  const int64_t gk = (a.k + kGroup - 1) / kGroup;
  for (int64_t gi = begin; gi < end; ++gi) {
    const int64_t row0 = gi * kGroup, rows = min64(kGroup, a.m - row0);
    for (int64_t lr = 0; lr < rows; ++lr) zero_row(a.out + (row0 + lr) * a.ldo, a.n);
    for (int64_t gj = 0; gj < gk; ++gj) {
      const int64_t col0 = gj * kGroup;
      for_each_group_element(a.group_offsets, a.bitmaps, gi * gk + gj, [&](int64_t lr, int64_t lc, int64_t slot) {
        axpy(a.out + (row0 + lr) * a.ldo, a.values[slot], a.b + (col0 + lc) * a.ldb, a.n);
      });
    }
  }
}

void sparse24_spmm_f64(const Sparse24SpmmArgs<double>& a, int64_t begin, int64_t end) {
  const int64_t kp = (a.k + 15) / 16 * 16;
  const int64_t groups = (a.k + 3) / 4;  // groups with at least one column < k
  for (int64_t i = begin; i < end; ++i) {
    double* o = a.out + i * a.ldo;
    zero_row(o, a.n);
    const double* vals = a.values + i * (kp / 2);
    const uint16_t* meta = a.meta + i * (kp / 16);
    for (int64_t g = 0; g < groups; ++g) {
      for (int s = 0; s < 2; ++s) {
        const int64_t col = sparse24_col(meta, g, s);
        if (col < a.k) axpy(o, vals[2 * g + s], a.b + col * a.ldb, a.n);
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Transposed SpMM
// ---------------------------------------------------------------------------
template <typename I>
void csr_spmm_t_f64(const CsrSpmmTArgs<double, I>& a, int64_t begin, int64_t end) {
  for (int64_t j = begin; j < end; ++j) {
    double* o = a.out + j * a.ldo;
    zero_row(o, a.n);
    const int64_t q1 = int64_t(a.col_ptr[j + 1]);
    for (int64_t q = int64_t(a.col_ptr[j]); q < q1; ++q)
      axpy(o, a.values[int64_t(a.perm[q])], a.b + int64_t(a.row_of[q]) * a.ldb, a.n);
  }
}

template <typename I>
void bsr_spmm_t_f64(const BsrSpmmTArgs<double, I>& a, int64_t begin, int64_t end) {
  const int64_t rc = a.r * a.c;
  for (int64_t bj = begin; bj < end; ++bj) {
    const int64_t col0 = bj * a.c, cols = min64(a.c, a.k - col0);
    for (int64_t jj = 0; jj < cols; ++jj) zero_row(a.out + (col0 + jj) * a.ldo, a.n);
    const int64_t q1 = int64_t(a.col_ptr[bj + 1]);
    for (int64_t q = int64_t(a.col_ptr[bj]); q < q1; ++q) {
      const int64_t row0 = int64_t(a.row_of[q]) * a.r, rows = min64(a.r, a.m - row0);
      const double* blk = a.blocks + int64_t(a.perm[q]) * rc;
      for (int64_t jj = 0; jj < cols; ++jj) {
        double* o = a.out + (col0 + jj) * a.ldo;
        for (int64_t ii = 0; ii < rows; ++ii) axpy(o, blk[ii * a.c + jj], a.b + (row0 + ii) * a.ldb, a.n);
      }
    }
  }
}

void bitmap_spmm_t_f64(const BitmapSpmmTArgs<double>& a, int64_t begin, int64_t end) {
  const int64_t gm = (a.m + kGroup - 1) / kGroup, gk = (a.k + kGroup - 1) / kGroup;
  for (int64_t gj = begin; gj < end; ++gj) {
    const int64_t col0 = gj * kGroup, cols = min64(kGroup, a.k - col0);
    for (int64_t lc = 0; lc < cols; ++lc) zero_row(a.out + (col0 + lc) * a.ldo, a.n);
    for (int64_t gi = 0; gi < gm; ++gi) {
      const int64_t row0 = gi * kGroup;
      for_each_group_element(a.group_offsets, a.bitmaps, gi * gk + gj, [&](int64_t lr, int64_t lc, int64_t slot) {
        axpy(a.out + (col0 + lc) * a.ldo, a.values[slot], a.b + (row0 + lr) * a.ldb, a.n);
      });
    }
  }
}

void sparse24_spmm_t_f64(const Sparse24SpmmTArgs<double>& a, int64_t begin, int64_t end) {
  const int64_t kp = (a.k + 15) / 16 * 16;
  const int64_t groups = (a.k + 3) / 4;
  for (int64_t cb = begin; cb < end; ++cb) {
    const int64_t col0 = cb * kGroup, cols = min64(kGroup, a.k - col0);
    for (int64_t lc = 0; lc < cols; ++lc) zero_row(a.out + (col0 + lc) * a.ldo, a.n);
    // Groups g0 .. g1 cover exactly columns [col0, col0 + 64) of every row.
    const int64_t g0 = cb * (kGroup / 4), g1 = min64(g0 + kGroup / 4, groups);
    for (int64_t i = 0; i < a.m; ++i) {
      const double* vals = a.values + i * (kp / 2);
      const uint16_t* meta = a.meta + i * (kp / 16);
      const double* brow = a.b + i * a.ldb;
      for (int64_t g = g0; g < g1; ++g) {
        for (int s = 0; s < 2; ++s) {
          const int64_t col = sparse24_col(meta, g, s);
          if (col < a.k) axpy(a.out + col * a.ldo, vals[2 * g + s], brow, a.n);
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------
// SDDMM
// ---------------------------------------------------------------------------
template <typename I>
void csr_sddmm_f64(const CsrSddmmArgs<double, I>& a, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) {
    const double* xr = a.x + i * a.ldx;
    const int64_t p1 = int64_t(a.row_ptr[i + 1]);
    for (int64_t p = int64_t(a.row_ptr[i]); p < p1; ++p)
      a.out[p] = dot(xr, a.y + int64_t(a.col_idx[p]) * a.ldy, a.d);
  }
}

template <typename I>
void bsr_sddmm_f64(const BsrSddmmArgs<double, I>& a, int64_t begin, int64_t end) {
  const int64_t rc = a.r * a.c;
  for (int64_t bi = begin; bi < end; ++bi) {
    const int64_t p1 = int64_t(a.block_row_ptr[bi + 1]);
    for (int64_t p = int64_t(a.block_row_ptr[bi]); p < p1; ++p) {
      const int64_t col0 = int64_t(a.block_col_idx[p]) * a.c;
      double* blk = a.out + p * rc;
      for (int64_t ii = 0; ii < a.r; ++ii) {
        const int64_t row = bi * a.r + ii;
        for (int64_t jj = 0; jj < a.c; ++jj) {
          const int64_t col = col0 + jj;
          blk[ii * a.c + jj] = row < a.m && col < a.k ? dot(a.x + row * a.ldx, a.y + col * a.ldy, a.d) : 0.0;
        }
      }
    }
  }
}

void bitmap_sddmm_f64(const BitmapSddmmArgs<double>& a, int64_t begin, int64_t end) {
  const int64_t gk = (a.k + kGroup - 1) / kGroup;
  for (int64_t g = begin; g < end; ++g) {
    const int64_t row0 = (g / gk) * kGroup, col0 = (g % gk) * kGroup;
    const auto element = [&](int64_t lr, int64_t lc, int64_t slot) {
      a.out[slot] = dot(a.x + (row0 + lr) * a.ldx, a.y + (col0 + lc) * a.ldy, a.d);
    };
    const int64_t last = for_each_group_element(a.group_offsets, a.bitmaps, g, element);
    for (int64_t s = last; s < a.group_offsets[g + 1]; ++s) a.out[s] = 0.0;  // round-up padding
  }
}

void sparse24_sddmm_f64(const Sparse24SddmmArgs<double>& a, int64_t begin, int64_t end) {
  const int64_t kp = (a.k + 15) / 16 * 16;
  for (int64_t i = begin; i < end; ++i) {
    const double* xr = a.x + i * a.ldx;
    const uint16_t* meta = a.meta + i * (kp / 16);
    double* o = a.out + i * (kp / 2);
    for (int64_t g = 0; g < kp / 4; ++g) {
      for (int s = 0; s < 2; ++s) {
        const int64_t col = sparse24_col(meta, g, s);
        o[2 * g + s] = col < a.k ? dot(xr, a.y + col * a.ldy, a.d) : 0.0;
      }
    }
  }
}

// ---------------------------------------------------------------------------
// SpGEMM, numeric pass
// ---------------------------------------------------------------------------
template <typename IA, typename IB, typename IC>
void csr_spgemm_numeric_f64(const CsrSpgemmArgs<double, IA, IB, IC>& a, const SpgemmF64Workspace& ws,
                            int64_t begin, int64_t end) {
  const CsrSpgemmPatternArgs<IA, IB>& pa = a.pattern;
  for (int64_t i = begin; i < end; ++i) {
    int64_t count = 0;
    const int64_t p1 = int64_t(pa.a_row_ptr[i + 1]);
    for (int64_t p = int64_t(pa.a_row_ptr[i]); p < p1; ++p) {
      const int64_t c = int64_t(pa.a_col_idx[p]);
      const double av = a.a_values[p];
      const int64_t q1 = int64_t(pa.b_row_ptr[c + 1]);
      for (int64_t q = int64_t(pa.b_row_ptr[c]); q < q1; ++q) {
        ws.cols[count] = int64_t(pa.b_col_idx[q]);
        ws.vals[count] = av * a.b_values[q];
        ++count;
      }
    }
    sort_pairs(ws.cols, ws.vals, count);
    int64_t out = int64_t(a.c_row_ptr[i]);
    for (int64_t e = 0; e < count;) {
      const int64_t col = ws.cols[e];
      double s = 0.0;
      for (; e < count && ws.cols[e] == col; ++e) s += ws.vals[e];
      a.c_col_idx[out] = IC(col);
      a.c_values[out] = s;
      ++out;
    }
  }
}

// ---------------------------------------------------------------------------
// Instantiations
// ---------------------------------------------------------------------------
#define SK_INSTANTIATE(I)                                                                  \
  template void csr_spmm_f64<I>(const CsrSpmmArgs<double, I>&, int64_t, int64_t);         \
  template void bsr_spmm_f64<I>(const BsrSpmmArgs<double, I>&, int64_t, int64_t);         \
  template void csr_spmm_t_f64<I>(const CsrSpmmTArgs<double, I>&, int64_t, int64_t);      \
  template void bsr_spmm_t_f64<I>(const BsrSpmmTArgs<double, I>&, int64_t, int64_t);      \
  template void csr_sddmm_f64<I>(const CsrSddmmArgs<double, I>&, int64_t, int64_t);       \
  template void bsr_sddmm_f64<I>(const BsrSddmmArgs<double, I>&, int64_t, int64_t);
SK_INSTANTIATE(int32_t)
SK_INSTANTIATE(int64_t)
#undef SK_INSTANTIATE

#define SK_INSTANTIATE(IA, IB, IC)                                                                          \
  template void csr_spgemm_numeric_f64<IA, IB, IC>(const CsrSpgemmArgs<double, IA, IB, IC>&,                \
                                                   const SpgemmF64Workspace&, int64_t, int64_t);
SK_INSTANTIATE(int32_t, int32_t, int32_t)
SK_INSTANTIATE(int32_t, int64_t, int64_t)
SK_INSTANTIATE(int64_t, int32_t, int64_t)
SK_INSTANTIATE(int64_t, int64_t, int64_t)
#undef SK_INSTANTIATE

SK_CPU_NAMESPACE_END
