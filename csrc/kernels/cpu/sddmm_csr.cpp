// CSR SDDMM on the CPU: out[p] = dot(x[i, :], y[col_idx[p], :]) for the entries
// p of row i. The x row stays in L1 across the row's entries; each dot product
// runs over d in 4 independent vector accumulators, then single vectors, then
// a scalar tail (d need not be a multiple of the vector width). The y rows are
// gathered at random: the row kPrefetchAhead entries ahead is prefetched, which
// hides most of the memory latency once y outgrows the caches (about 2x).
// Entries are taken four at a time (dot4): each x vector is loaded once for the
// four y rows and the four dot products run as independent FMA chains, instead
// of one dot product's chain and horizontal sum after another.
#include "kernels/cpu/sddmm_spgemm.h"
#include "kernels/cpu/simd.h"

SK_CPU_NAMESPACE_BEGIN

constexpr int64_t kPrefetchAhead = 4;

// r[q] = dot(x, yq) over d elements, q = 0..3 (fp32 accumulation).
template <typename T>
static inline void dot4(const T* x, const T* y0, const T* y1, const T* y2, const T* y3, int64_t d, float* r) {
  VecF s0 = vzero(), s1 = vzero(), s2 = vzero(), s3 = vzero();
  int64_t j = 0;
  if (d >= 2 * kW) {  // two accumulators per dot product: 8 independent chains
    VecF t0 = vzero(), t1 = vzero(), t2 = vzero(), t3 = vzero();
    for (; j + 2 * kW <= d; j += 2 * kW) {
      const VecF xa = vload(x + j), xb = vload(x + j + kW);
      s0 = vfma(xa, vload(y0 + j), s0);
      s1 = vfma(xa, vload(y1 + j), s1);
      s2 = vfma(xa, vload(y2 + j), s2);
      s3 = vfma(xa, vload(y3 + j), s3);
      t0 = vfma(xb, vload(y0 + j + kW), t0);
      t1 = vfma(xb, vload(y1 + j + kW), t1);
      t2 = vfma(xb, vload(y2 + j + kW), t2);
      t3 = vfma(xb, vload(y3 + j + kW), t3);
    }
    s0 = vadd(s0, t0);
    s1 = vadd(s1, t1);
    s2 = vadd(s2, t2);
    s3 = vadd(s3, t3);
  }
  for (; j + kW <= d; j += kW) {
    const VecF xv = vload(x + j);
    s0 = vfma(xv, vload(y0 + j), s0);
    s1 = vfma(xv, vload(y1 + j), s1);
    s2 = vfma(xv, vload(y2 + j), s2);
    s3 = vfma(xv, vload(y3 + j), s3);
  }
  float a0 = vhsum(s0), a1 = vhsum(s1), a2 = vhsum(s2), a3 = vhsum(s3);
  for (; j < d; ++j) {
    const float xv = to_float(x[j]);
    a0 += xv * to_float(y0[j]);
    a1 += xv * to_float(y1[j]);
    a2 += xv * to_float(y2[j]);
    a3 += xv * to_float(y3[j]);
  }
  r[0] = a0;
  r[1] = a1;
  r[2] = a2;
  r[3] = a3;
}

template <typename T, typename I>
void csr_sddmm(const CsrSddmmArgs<T, I>& a, int64_t begin, int64_t end) {
  const int64_t nnz = int64_t(a.row_ptr[a.m]), row_bytes = a.d * int64_t(sizeof(T));
  for (int64_t i = begin; i < end; ++i) {
    const T* xrow = a.x + i * a.ldx;
    const int64_t p1 = int64_t(a.row_ptr[i + 1]);
    int64_t p = int64_t(a.row_ptr[i]);
    for (; p + 4 <= p1; p += 4) {
      for (int64_t q = p + kPrefetchAhead; q < p + kPrefetchAhead + 4 && q < nnz; ++q) {
        const char* next = reinterpret_cast<const char*>(a.y + int64_t(a.col_idx[q]) * a.ldy);
        for (int64_t off = 0; off < row_bytes; off += 64) __builtin_prefetch(next + off);
      }
      float r[4];
      dot4(xrow, a.y + int64_t(a.col_idx[p]) * a.ldy, a.y + int64_t(a.col_idx[p + 1]) * a.ldy,
           a.y + int64_t(a.col_idx[p + 2]) * a.ldy, a.y + int64_t(a.col_idx[p + 3]) * a.ldy, a.d, r);
      for (int q = 0; q < 4; ++q) a.out[p + q] = from_float<T>(r[q]);
    }
    for (; p < p1; ++p) {
      if (p + kPrefetchAhead < nnz) {
        const char* next = reinterpret_cast<const char*>(a.y + int64_t(a.col_idx[p + kPrefetchAhead]) * a.ldy);
        for (int64_t off = 0; off < row_bytes; off += 64) __builtin_prefetch(next + off);
      }
      a.out[p] = from_float<T>(vdot(xrow, a.y + int64_t(a.col_idx[p]) * a.ldy, a.d));
    }
  }
}

#define SK_INSTANTIATE(T, I) template void csr_sddmm<T, I>(const CsrSddmmArgs<T, I>&, int64_t, int64_t);
SK_INSTANTIATE(float, int32_t)
SK_INSTANTIATE(float, int64_t)
SK_INSTANTIATE(half_t, int32_t)
SK_INSTANTIATE(half_t, int64_t)
SK_INSTANTIATE(bf16_t, int32_t)
SK_INSTANTIATE(bf16_t, int64_t)
#undef SK_INSTANTIATE

SK_CPU_NAMESPACE_END
