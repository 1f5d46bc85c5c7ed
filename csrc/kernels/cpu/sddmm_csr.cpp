// CSR SDDMM on the CPU: out[p] = dot(x[i, :], y[col_idx[p], :]) for the entries
// p of row i. The x row stays in L1 across the row's entries; each dot product
// runs over d in 4 independent vector accumulators, then single vectors, then
// a scalar tail (d need not be a multiple of the vector width). The y rows are
// gathered at random: the row kPrefetchAhead entries ahead is prefetched, which
// hides most of the memory latency once y outgrows the caches (about 2x).
// Entries are taken four at a time (vdot4): each x vector is loaded once for the
// four y rows and the four dot products run as independent FMA chains, instead
// of one dot product's chain and horizontal sum after another.
#include "kernels/cpu/sddmm_spgemm.h"
#include "kernels/cpu/simd.h"

SK_CPU_NAMESPACE_BEGIN

constexpr int64_t kPrefetchAhead = 4;

// out[p..q) for entries of one row (x row xrow), four at a time (vdot4: the x
// row is loaded once per four y rows), then one by one; the y row
// kPrefetchAhead entries ahead is prefetched if it lies below `ahead`.
template <typename T, typename I>
static inline void row_entries(const CsrSddmmArgs<T, I>& a, const T* xrow, int64_t p, int64_t q, int64_t ahead,
                               int64_t row_bytes) {
  const auto prefetch = [&](int64_t e) {
    const char* next = reinterpret_cast<const char*>(a.y + int64_t(a.col_idx[e]) * a.ldy);
    for (int64_t off = 0; off < row_bytes; off += 64) __builtin_prefetch(next + off);
  };
  for (; p + 4 <= q; p += 4) {
    for (int64_t e = p + kPrefetchAhead; e < p + kPrefetchAhead + 4 && e < ahead; ++e) prefetch(e);
    float r[4];
    vdot4(xrow, a.y + int64_t(a.col_idx[p]) * a.ldy, a.y + int64_t(a.col_idx[p + 1]) * a.ldy,
          a.y + int64_t(a.col_idx[p + 2]) * a.ldy, a.y + int64_t(a.col_idx[p + 3]) * a.ldy, a.d, r);
    for (int e = 0; e < 4; ++e) a.out[p + e] = from_float<T>(r[e]);
  }
  for (; p < q; ++p) {
    if (p + kPrefetchAhead < ahead) prefetch(p + kPrefetchAhead);
    a.out[p] = from_float<T>(vdot(xrow, a.y + int64_t(a.col_idx[p]) * a.ldy, a.d));
  }
}

template <typename T, typename I>
void csr_sddmm(const CsrSddmmArgs<T, I>& a, int64_t begin, int64_t end) {
  const int64_t nnz = int64_t(a.row_ptr[a.m]), row_bytes = a.d * int64_t(sizeof(T));
  for (int64_t i = begin; i < end; ++i)
    row_entries(a, a.x + i * a.ldx, int64_t(a.row_ptr[i]), int64_t(a.row_ptr[i + 1]), nnz, row_bytes);
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
