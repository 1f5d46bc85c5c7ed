// 2:4 SpMM on the CPU: row i of out is the sum over the groups g of row i of
// values[i, 2g] * b[4g + idx0, :] + values[i, 2g+1] * b[4g + idx1, :], the two
// 2-bit positions read from meta (docs/formats.md). Groups wholly past k are
// not visited; in the one group that straddles k, positions >= k are skipped.
// Out columns are kept in registers in panels of NV vectors; columns past the
// last panel (the whole of N = 1) are sparse dot products.
#include "kernels/cpu/kernels.h"
#include "kernels/cpu/simd.h"

SK_CPU_NAMESPACE_BEGIN

// Calls f(column, value) for every stored element of a row that lies inside k,
// from group g0 on.
template <typename T, typename F>
static inline void for_each_sparse24_entry(const T* vals, const uint16_t* meta, int64_t k, F&& f,
                                           int64_t g0 = 0) {
  const int64_t full = k / 4;
  for (int64_t g = g0; g < full; ++g) {
    const unsigned nib = (unsigned(meta[g >> 2]) >> ((g & 3) * 4)) & 0xfu;
    f(4 * g + (nib & 3u), vals[2 * g]);
    f(4 * g + (nib >> 2), vals[2 * g + 1]);
  }
  if (k % 4 != 0) {
    const int64_t g = full;
    const unsigned nib = (unsigned(meta[g >> 2]) >> ((g & 3) * 4)) & 0xfu;
    const int64_t c0 = 4 * g + (nib & 3u), c1 = 4 * g + (nib >> 2);
    if (c0 < k) f(c0, vals[2 * g]);
    if (c1 < k) f(c1, vals[2 * g + 1]);
  }
}

// N = 1: a sparse dot product of row i with column j of b; two groups per step
// into four accumulators so the adds do not wait on each other.
template <typename T>
static float sparse24_row_dot(const T* vals, const uint16_t* meta, int64_t k, const T* bcol, int64_t ldb) {
  float acc0 = 0.f, acc1 = 0.f, acc2 = 0.f, acc3 = 0.f;
  const int64_t full = k / 4;
  int64_t g = 0;
  for (; g + 2 <= full; g += 2) {
    // g is even, so groups g and g+1 are adjacent nibbles of one word.
    const unsigned w = unsigned(meta[g >> 2]) >> ((g & 3) * 4);
    const int64_t c = 4 * g;
    acc0 += to_float(vals[2 * g]) * to_float(bcol[(c + (w & 3u)) * ldb]);
    acc1 += to_float(vals[2 * g + 1]) * to_float(bcol[(c + ((w >> 2) & 3u)) * ldb]);
    acc2 += to_float(vals[2 * g + 2]) * to_float(bcol[(c + 4 + ((w >> 4) & 3u)) * ldb]);
    acc3 += to_float(vals[2 * g + 3]) * to_float(bcol[(c + 4 + ((w >> 6) & 3u)) * ldb]);
  }
  for_each_sparse24_entry(
      vals, meta, k, [&](int64_t col, T v) { acc0 += to_float(v) * to_float(bcol[col * ldb]); }, g);
  return (acc0 + acc1) + (acc2 + acc3);
}

template <int NV, typename T>
static inline void sparse24_panel(const Sparse24SpmmArgs<T>& a, const T* vals, const uint16_t* meta, T* out,
                                  int64_t j) {
  VecF acc[NV];
  for (int u = 0; u < NV; ++u) acc[u] = vzero();
  for_each_sparse24_entry(vals, meta, a.k, [&](int64_t col, T v) {
    const VecF vv = vset1(to_float(v));
    const T* brow = a.b + col * a.ldb + j;
    for (int u = 0; u < NV; ++u) acc[u] = vfma(vv, vload(brow + u * kW), acc[u]);
  });
  for (int u = 0; u < NV; ++u) vstore(out + j + u * kW, acc[u]);
}

template <typename T>
void sparse24_spmm(const Sparse24SpmmArgs<T>& a, int64_t begin, int64_t end) {
  const int64_t kp = (a.k + 15) / 16 * 16;
  for (int64_t i = begin; i < end; ++i) {
    const T* vals = a.values + i * (kp / 2);
    const uint16_t* meta = a.meta + i * (kp / 16);
    T* out = a.out + i * a.ldo;
    int64_t j = 0;
    for (; j + 4 * kW <= a.n; j += 4 * kW) sparse24_panel<4>(a, vals, meta, out, j);
    for (; j + kW <= a.n; j += kW) sparse24_panel<1>(a, vals, meta, out, j);
    for (; j < a.n; ++j) out[j] = from_float<T>(sparse24_row_dot(vals, meta, a.k, a.b + j, a.ldb));
  }
}

#define SK_INSTANTIATE(T) template void sparse24_spmm<T>(const Sparse24SpmmArgs<T>&, int64_t, int64_t);
SK_INSTANTIATE(float)
SK_INSTANTIATE(half_t)
SK_INSTANTIATE(bf16_t)
#undef SK_INSTANTIATE

SK_CPU_NAMESPACE_END
