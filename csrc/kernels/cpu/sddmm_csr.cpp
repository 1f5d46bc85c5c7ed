// CSR SDDMM on the CPU: out[p] = dot(x[i, :], y[col_idx[p], :]) for the entries
// p of row i. The x row stays in L1 across the row's entries; each dot product
// runs over d in 4 independent vector accumulators, then single vectors, then
// a scalar tail (d need not be a multiple of the vector width). The y rows are
// gathered at random: the row kPrefetchAhead entries ahead is prefetched, which
// hides most of the memory latency once y outgrows the caches (about 2x).
#include "kernels/cpu/sddmm_spgemm.h"
#include "kernels/cpu/simd.h"

SK_CPU_NAMESPACE_BEGIN

constexpr int64_t kPrefetchAhead = 4;

template <typename T, typename I>
void csr_sddmm(const CsrSddmmArgs<T, I>& a, int64_t begin, int64_t end) {
  const int64_t nnz = int64_t(a.row_ptr[a.m]), row_bytes = a.d * int64_t(sizeof(T));
  for (int64_t i = begin; i < end; ++i) {
    const T* xrow = a.x + i * a.ldx;
    const int64_t p1 = int64_t(a.row_ptr[i + 1]);
    for (int64_t p = int64_t(a.row_ptr[i]); p < p1; ++p) {
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
