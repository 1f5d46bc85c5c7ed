// Torch-free CPU kernels for CSR SDDMM and CSR SpGEMM: argument structs and
// entry points (the conventions of kernels.h: host memory, T = float / half_t /
// bf16_t with fp32 accumulation, I = int32_t / int64_t, row ranges [begin, end)
// for at::parallel_for, formats validated by the glue before any call).
#pragma once

#include <cstdint>

#include "kernels/cpu/types.h"

namespace sk {
namespace cpu {

// SDDMM: out[p] = dot(x[i, :], y[col_idx[p], :]) for every entry p of row i of
// the CSR pattern (row_ptr, col_idx), i.e. (x @ y.T) sampled at the pattern.
template <typename T, typename I>
struct CsrSddmmArgs {
  const I* row_ptr;  // [m + 1]
  const I* col_idx;  // [nnz], each < n
  const T* x;        // [m, d], row stride ldx
  const T* y;        // [n, d], row stride ldy
  T* out;            // [nnz]
  int64_t m, n, d;
  int64_t ldx, ldy;
};

// SpGEMM C = A [m, k] @ B [k, n], all CSR, in two passes over the same rows:
// symbolic (distinct columns per row of C) and numeric (values, sorted columns).
// A and B may have unsorted rows and duplicate columns (duplicates are summed);
// C's columns are sorted and distinct. C is the structural product: an entry
// whose products cancel to 0 is kept with the value 0.
template <typename IA, typename IB>
struct CsrSpgemmPatternArgs {
  const IA* a_row_ptr;  // [m + 1]
  const IA* a_col_idx;  // [nnz(A)], each < k
  const IB* b_row_ptr;  // [k + 1]
  const IB* b_col_idx;  // [nnz(B)], each < n
  int64_t m, k, n;
};

template <typename T, typename IA, typename IB, typename IC>
struct CsrSpgemmArgs {
  CsrSpgemmPatternArgs<IA, IB> pattern;
  const T* a_values;    // [nnz(A)]
  const T* b_values;    // [nnz(B)]
  const IC* c_row_ptr;  // [m + 1], the prefix sum of the symbolic pass
  IC* c_col_idx;        // [nnz(C)]
  T* c_values;          // [nnz(C)]
};

// Per-thread scratch of the SpGEMM passes, owned by the caller; one workspace
// serves one thread at a time, for any number of row ranges of one pass.
//   dense accumulator (marker != nullptr): marker [n] filled with -1 before the
//     first use (the kernels leave row numbers in it), acc [n] (numeric pass
//     only, any contents).
//   hash accumulator (marker == nullptr): keys and vals [hash_capacity] (vals
//     numeric only, any contents), hash_capacity a power of two >= 2 * min(n,
//     flops(i)) for every row i handed to the kernel, where flops(i) is the
//     number of products of row i (csr_spgemm_row_flops).
struct SpgemmWorkspace {
  int64_t* marker;
  float* acc;
  int64_t* keys;
  float* vals;
  int64_t hash_capacity;
};

}  // namespace cpu
}  // namespace sk

#define SK_DECLARE_CPU_SDDMM_SPGEMM_KERNELS(ISA)                                              \
  namespace sk {                                                                              \
  namespace cpu {                                                                             \
  namespace ISA {                                                                             \
  /* entries of rows [begin, end) of out */                                                   \
  template <typename T, typename I>                                                           \
  void csr_sddmm(const CsrSddmmArgs<T, I>& a, int64_t begin, int64_t end);                   \
  /* flops[i] = number of products of row i of C (sum over A's row of B's row lengths) */     \
  template <typename IA, typename IB>                                                         \
  void csr_spgemm_row_flops(const CsrSpgemmPatternArgs<IA, IB>& a, int64_t* flops,            \
                            int64_t begin, int64_t end);                                      \
  /* row_nnz[i] = number of distinct columns of row i of C */                                 \
  template <typename IA, typename IB>                                                         \
  void csr_spgemm_symbolic(const CsrSpgemmPatternArgs<IA, IB>& a, const SpgemmWorkspace& ws,  \
                           int64_t* row_nnz, int64_t begin, int64_t end);                     \
  /* columns (sorted) and values of rows [begin, end) of C */                                 \
  template <typename T, typename IA, typename IB, typename IC>                                \
  void csr_spgemm_numeric(const CsrSpgemmArgs<T, IA, IB, IC>& a, const SpgemmWorkspace& ws,   \
                          int64_t begin, int64_t end);                                        \
  }                                                                                           \
  }                                                                                           \
  }

SK_DECLARE_CPU_SDDMM_SPGEMM_KERNELS(scalar)
SK_DECLARE_CPU_SDDMM_SPGEMM_KERNELS(avx2)
SK_DECLARE_CPU_SDDMM_SPGEMM_KERNELS(avx512)
