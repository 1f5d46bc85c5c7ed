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

// SpGEMM C = A [m, k] @ B [k, n], all CSR, Gustavson row by row. A and B may
// have unsorted rows and duplicate columns (duplicates are summed); C's columns
// are sorted and distinct. C is the structural product: an entry whose products
// cancel to 0 is kept with the value 0.
//
// fp32/fp16/bf16 (csr_spgemm_rows): ONE pass computes whole rows of C into a
// region of the caller (a parallel part's rows back to back); the glue then
// moves each part's rows to their place in C. float64 (float64.h): a symbolic pass
// (csr_spgemm_symbolic) counts each row, then a numeric pass writes into C.
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

// One-pass SpGEMM into a part region: rows begin, begin + 1, ... of C are
// written back to back at cols[used ..] / vals[used ..] (nothing else of cols /
// vals is written). A row is started only while its size bound still fits
// below capacity: the kernel stops early at a row that does not fit. The bound
// is min(n, flops(i)), or the row's exact size when c_ptr is given.
template <typename T, typename IA, typename IB, typename IC>
struct CsrSpgemmRowsArgs {
  CsrSpgemmPatternArgs<IA, IB> pattern;
  const T* a_values;        // [nnz(A)]
  const T* b_values;        // [nnz(B)]
  const int64_t* flops;     // [m + 1], prefix sum of the row products (flops[i + 1] - flops[i] = flops(i))
  IC* cols;                 // [capacity], the part region
  T* vals;                  // [capacity]
  int64_t capacity;
  int64_t* row_nnz;         // [m], entries of row i of C (written for the rows done)
  const int64_t* c_ptr;     // [m + 1], C's row offsets from a symbolic pass, or nullptr
};

// Accumulator of csr_spgemm_rows for one thread, owned by the caller:
//   dense (bits != nullptr): a fp32 sparse accumulator with an occupancy flag
//     per column and an occupancy bitmap; seen [64 * ceil(n / 64)] (padded:
//     read 64 flags at a time), bits [ceil(n / 64)] and acc [n] all zero on
//     entry and left all zero; list [n + 1] any contents.
//     The bitmap hands the columns over sorted.
//   hash (bits == nullptr): keys and vals [hash_capacity], any contents,
//     hash_capacity a power of two >= 2 * min(n, flops(i)) for every row i
//     handed to the kernel.
struct SpgemmRowWorkspace {
  uint8_t* seen;
  uint64_t* bits;
  float* acc;
  int64_t* list;
  int64_t* keys;
  float* vals;
  int64_t hash_capacity;
};

// Scratch of csr_spgemm_symbolic (float64 path), owned by the caller; one
// workspace serves one thread at a time.
//   dense (marker != nullptr): marker [n] filled with -1 before the first use
//     (the kernel leaves row numbers in it).
//   hash (marker == nullptr): keys [hash_capacity], any contents, a power of
//     two >= 2 * min(n, flops(i)) for every row i handed to the kernel.
struct SpgemmWorkspace {
  int64_t* marker;
  int64_t* keys;
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
  /* rows begin, begin + 1, ... (< end) of C into the part region from *used on; on return */ \
  /* *next_row is the first row not done (end, or a row that does not fit), *used the fill */ \
  template <typename T, typename IA, typename IB, typename IC>                                \
  void csr_spgemm_rows(const CsrSpgemmRowsArgs<T, IA, IB, IC>& a, const SpgemmRowWorkspace& ws, \
                       int64_t begin, int64_t end, int64_t* next_row, int64_t* used);         \
  }                                                                                           \
  }                                                                                           \
  }

SK_DECLARE_CPU_SDDMM_SPGEMM_KERNELS(scalar)
SK_DECLARE_CPU_SDDMM_SPGEMM_KERNELS(avx2)
SK_DECLARE_CPU_SDDMM_SPGEMM_KERNELS(avx512)
