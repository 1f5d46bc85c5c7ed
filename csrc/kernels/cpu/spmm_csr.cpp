// CSR SpMM on the CPU: out[i, :] = sum_p values[p] * b[col_idx[p], :] over row i.
// Columns of out are kept in registers in panels of 4 vectors; N = 1 is a
// sparse dot product per row.
#include "kernels/cpu/kernels.h"
#include "kernels/cpu/simd.h"

SK_CPU_NAMESPACE_BEGIN

template <typename T, typename I>
static float csr_row_dot(const CsrSpmmArgs<T, I>& a, I p0, I p1) {
  float acc0 = 0.f, acc1 = 0.f, acc2 = 0.f, acc3 = 0.f;
  I p = p0;
  for (; p + 4 <= p1; p += 4) {
    acc0 += to_float(a.values[p]) * to_float(a.b[int64_t(a.col_idx[p]) * a.ldb]);
    acc1 += to_float(a.values[p + 1]) * to_float(a.b[int64_t(a.col_idx[p + 1]) * a.ldb]);
    acc2 += to_float(a.values[p + 2]) * to_float(a.b[int64_t(a.col_idx[p + 2]) * a.ldb]);
    acc3 += to_float(a.values[p + 3]) * to_float(a.b[int64_t(a.col_idx[p + 3]) * a.ldb]);
  }
  for (; p < p1; ++p) acc0 += to_float(a.values[p]) * to_float(a.b[int64_t(a.col_idx[p]) * a.ldb]);
  return (acc0 + acc1) + (acc2 + acc3);
}

template <typename T, typename I>
void csr_spmm(const CsrSpmmArgs<T, I>& a, int64_t begin, int64_t end) {
  const int64_t n = a.n;
  for (int64_t i = begin; i < end; ++i) {
    const I p0 = a.row_ptr[i], p1 = a.row_ptr[i + 1];
    T* out = a.out + i * a.ldo;
    if (n == 1) {
      out[0] = from_float<T>(csr_row_dot(a, p0, p1));
      continue;
    }
    int64_t j = 0;
    for (; j + 4 * kW <= n; j += 4 * kW) {
      VecF c0 = vzero(), c1 = vzero(), c2 = vzero(), c3 = vzero();
      for (I p = p0; p < p1; ++p) {
        const VecF v = vset1(to_float(a.values[p]));
        const T* brow = a.b + int64_t(a.col_idx[p]) * a.ldb + j;
        c0 = vfma(v, vload(brow), c0);
        c1 = vfma(v, vload(brow + kW), c1);
        c2 = vfma(v, vload(brow + 2 * kW), c2);
        c3 = vfma(v, vload(brow + 3 * kW), c3);
      }
      vstore(out + j, c0);
      vstore(out + j + kW, c1);
      vstore(out + j + 2 * kW, c2);
      vstore(out + j + 3 * kW, c3);
    }
    for (; j + kW <= n; j += kW) {
      VecF c0 = vzero();
      for (I p = p0; p < p1; ++p)
        c0 = vfma(vset1(to_float(a.values[p])), vload(a.b + int64_t(a.col_idx[p]) * a.ldb + j), c0);
      vstore(out + j, c0);
    }
    for (; j < n; ++j) {
      float acc = 0.f;
      for (I p = p0; p < p1; ++p)
        acc += to_float(a.values[p]) * to_float(a.b[int64_t(a.col_idx[p]) * a.ldb + j]);
      out[j] = from_float<T>(acc);
    }
  }
}

#define SK_INSTANTIATE(T, I) template void csr_spmm<T, I>(const CsrSpmmArgs<T, I>&, int64_t, int64_t);
SK_INSTANTIATE(float, int32_t)
SK_INSTANTIATE(float, int64_t)
SK_INSTANTIATE(half_t, int32_t)
SK_INSTANTIATE(half_t, int64_t)
SK_INSTANTIATE(bf16_t, int32_t)
SK_INSTANTIATE(bf16_t, int64_t)
#undef SK_INSTANTIATE

SK_CPU_NAMESPACE_END
