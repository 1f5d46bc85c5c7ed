// Torch-free CPU kernels for the backward pass of the SpMM ops: transposed SpMM
// (out = A^T @ b, the gradient of the dense operand) and SDDMM sampled at the
// stored slots of each format (the gradient of the values tensor). Conventions
// of kernels.h: host memory, T = float / half_t / bf16_t with fp32
// accumulation, I = int32_t / int64_t, entry points over a range [begin, end)
// for at::parallel_for, formats validated by the glue before any call.
//
// In every struct A is the sparse matrix, m x k. For the transposed SpMM, b is
// [m, n] and out is [k, n]; for SDDMM, x is [m, d] and y is [k, d], and the
// output has the shape of the format's values tensor:
//   out[slot] = dot(x[row(slot), :], y[col(slot), :])
// for every stored slot inside the matrix, and 0 for slots that are not part of
// it (BSR edge-block padding, bitmap round-up padding, 2:4 positions >= k).
#pragma once

#include <cstdint>

#include "kernels/cpu/types.h"

namespace sk {
namespace cpu {

// The transposed index (CSC) of a CSR pattern, built by csr_transpose: the
// entries of column j are q in col_ptr[j] .. col_ptr[j+1]-1, in ascending row
// order, each with its row row_of[q] and its position perm[q] in the CSR
// arrays. Used on the block level for BSR (rows = block rows, columns = block
// columns). I must hold m - 1 and nnz (the glue checks m).
template <typename I>
struct CsrTransposeArgs {
  const I* row_ptr;  // [m + 1]
  const I* col_idx;  // [nnz], each < k
  I* col_ptr;        // [k + 1], written
  I* row_of;         // [nnz], written
  I* perm;           // [nnz], written
  int64_t m, k;
};

// out[k, n] = A^T @ b, A in CSR given with its transposed index.
template <typename T, typename I>
struct CsrSpmmTArgs {
  const I* col_ptr;  // [k + 1]  (csr_transpose)
  const I* row_of;   // [nnz], each < m
  const I* perm;     // [nnz], each < nnz
  const T* values;   // [nnz], the CSR values (indexed through perm)
  const T* b;        // [m, n], row stride ldb
  T* out;            // [k, n], row stride ldo
  int64_t m, k, n;
  int64_t ldb, ldo;
};

// The scatter form of out[k, n] = A^T @ b (csr_spmm_t_scatter): a part of A's
// rows adds each term values[p] * b[i, :] to row col_idx[p] of the part's fp32
// buffer [k, wp], then csr_spmm_t_reduce sums the parts' buffers into out. For
// n <= kCsrScatterMaxN (no transposed index to build).
constexpr int64_t kCsrScatterMaxN = 64;
// and a buffer of at most this many floats (8 MiB per part)
constexpr int64_t kCsrScatterMaxFloats = int64_t(1) << 21;
// floats per buffer row: 1, 8, or n rounded up to 16
inline int64_t csr_scatter_width(int64_t n) { return n == 1 ? 1 : n <= 8 ? 8 : (n + 15) / 16 * 16; }
template <typename T, typename I>
struct CsrSpmmTScatterArgs {
  const I* row_ptr;  // [m + 1], checked by the kernel as it reads it
  const I* col_idx;  // [nnz], likewise
  const T* values;   // [nnz]
  const T* b;        // [m, n], row stride ldb
  int64_t m, k, n;
  int64_t ldb;
  int64_t nnz;       // length of col_idx and values
};

// out[k, n] = A^T @ b, A in BSR (r x c blocks) given with its block-level
// transposed index. Padding of edge blocks is never read.
template <typename T, typename I>
struct BsrSpmmTArgs {
  const I* col_ptr;  // [ceil(k / c) + 1]  (csr_transpose of the block pattern)
  const I* row_of;   // [nnzb], block rows, each < ceil(m / r)
  const I* perm;     // [nnzb], block positions
  const T* blocks;   // [nnzb, r, c]
  const T* b;        // [m, n], row stride ldb
  T* out;            // [k, n], row stride ldo
  int64_t m, k, n;
  int64_t r, c;
  int64_t ldb, ldo;
};

// out[k, n] = A^T @ b, A in the bitmap format (docs/formats.md).
template <typename T>
struct BitmapSpmmTArgs {
  const int64_t* group_offsets;  // [ceil(m/64) * ceil(k/64) + 1]
  const uint64_t* bitmaps;       // [ceil(m/64) * ceil(k/64) * 64]
  const T* values;               // [group_offsets[last]]
  const T* b;                    // [m, n], row stride ldb
  T* out;                        // [k, n], row stride ldo
  int64_t m, k, n;
  int64_t ldb, ldo;
};

// out[k, n] = A^T @ b, A in the 2:4 format (docs/formats.md).
template <typename T>
struct Sparse24SpmmTArgs {
  const T* values;       // [m, kp / 2], kp = roundup(k, 16)
  const uint16_t* meta;  // [m, kp / 16]
  const T* b;            // [m, n], row stride ldb
  T* out;                // [k, n], row stride ldo
  int64_t m, k, n;
  int64_t ldb, ldo;
};

// out[p, i, j] = dot(x[I*r + i], y[J*c + j]) for block p at block (I, J);
// 0 where (I*r + i, J*c + j) is outside m x k.
template <typename T, typename I>
struct BsrSddmmArgs {
  const I* block_row_ptr;  // [ceil(m / r) + 1]
  const I* block_col_idx;  // [nnzb], each < ceil(k / c)
  const T* x;              // [m, d], row stride ldx
  const T* y;              // [k, d], row stride ldy
  T* out;                  // [nnzb, r, c]
  int64_t m, k, d;
  int64_t r, c;
  int64_t ldx, ldy;
};

// out[slot] = dot(x[row], y[col]) for every set bit of the bitmaps, in the
// order of the values tensor; the round-up padding slots of each group are 0.
template <typename T>
struct BitmapSddmmArgs {
  const int64_t* group_offsets;  // [ceil(m/64) * ceil(k/64) + 1]
  const uint64_t* bitmaps;       // [ceil(m/64) * ceil(k/64) * 64]
  const T* x;                    // [m, d], row stride ldx
  const T* y;                    // [k, d], row stride ldy
  T* out;                        // [group_offsets[last]]
  int64_t m, k, d;
  int64_t ldx, ldy;
};

// out[i, 2g + s] = dot(x[i], y[4g + idx_s]) for each of the two slots s of
// group g of row i whose column 4g + idx_s is < k; 0 for the others.
template <typename T>
struct Sparse24SddmmArgs {
  const uint16_t* meta;  // [m, kp / 16], kp = roundup(k, 16)
  const T* x;            // [m, d], row stride ldx
  const T* y;            // [k, d], row stride ldy
  T* out;                // [m, kp / 2]
  int64_t m, k, d;
  int64_t ldx, ldy;
};

}  // namespace cpu
}  // namespace sk

#define SK_DECLARE_CPU_GRAD_KERNELS(ISA)                                                         \
  namespace sk {                                                                                 \
  namespace cpu {                                                                                \
  namespace ISA {                                                                                \
  /* the whole transposed index, sequentially: O(nnz + k) */                                     \
  template <typename I>                                                                          \
  void csr_transpose(const CsrTransposeArgs<I>& a);                                              \
  /* rows [begin, end) of out (columns of A) */                                                  \
  template <typename T, typename I>                                                              \
  void csr_spmm_t(const CsrSpmmTArgs<T, I>& a, int64_t begin, int64_t end);                      \
  /* acc (k x csr_scatter_width(n) floats) = zeroed, then the terms of A's rows [begin, end)    \
     added; *first_bad = the first of those rows with a bad row pointer or column (acc is then  \
     incomplete), or -1 */                                                                       \
  template <typename T, typename I>                                                              \
  void csr_spmm_t_scatter(const CsrSpmmTScatterArgs<T, I>& a, int64_t begin, int64_t end, float* acc, \
                          int64_t* first_bad);                                                   \
  /* as csr_spmm_t_scatter for a 2:4 A (validated; out unused): acc has roundup(k, 16) rows */   \
  template <typename T>                                                                          \
  void sparse24_spmm_t_scatter(const Sparse24SpmmTArgs<T>& a, int64_t begin, int64_t end, float* acc); \
  /* as csr_spmm_t_scatter for group rows [begin, end) of a bitmap A (validated; out unused);   \
     *ok = false when its scratch cannot be allocated */                                         \
  template <typename T>                                                                          \
  void bitmap_spmm_t_scatter(const BitmapSpmmTArgs<T>& a, int64_t begin, int64_t end, float* acc, bool* ok); \
  /* out rows [begin, end) (columns [0, n), row stride ldo) = the sum of the nparts buffers */   \
  template <typename T>                                                                          \
  void csr_spmm_t_reduce(const float* const* parts, int64_t nparts, int64_t n, T* out, int64_t ldo, \
                         int64_t begin, int64_t end);                                            \
  /* block columns [begin, end) of A: rows begin*c .. min(end*c, k) of out */                    \
  template <typename T, typename I>                                                              \
  void bsr_spmm_t(const BsrSpmmTArgs<T, I>& a, int64_t begin, int64_t end);                      \
  /* group columns [begin, end) of A: rows begin*64 .. min(end*64, k) of out */                  \
  template <typename T>                                                                          \
  void bitmap_spmm_t(const BitmapSpmmTArgs<T>& a, int64_t begin, int64_t end);                   \
  /* 64-column chunks [begin, end) of A: rows begin*64 .. min(end*64, k) of out */               \
  template <typename T>                                                                          \
  void sparse24_spmm_t(const Sparse24SpmmTArgs<T>& a, int64_t begin, int64_t end);               \
  /* block rows [begin, end) */                                                                  \
  template <typename T, typename I>                                                              \
  void bsr_sddmm(const BsrSddmmArgs<T, I>& a, int64_t begin, int64_t end);                       \
  /* groups [begin, end) (row-major group numbers) */                                            \
  template <typename T>                                                                          \
  void bitmap_sddmm(const BitmapSddmmArgs<T>& a, int64_t begin, int64_t end);                    \
  /* rows [begin, end) */                                                                        \
  template <typename T>                                                                          \
  void sparse24_sddmm(const Sparse24SddmmArgs<T>& a, int64_t begin, int64_t end);                \
  }                                                                                              \
  }                                                                                              \
  }

SK_DECLARE_CPU_GRAD_KERNELS(scalar)
SK_DECLARE_CPU_GRAD_KERNELS(avx2)
SK_DECLARE_CPU_GRAD_KERNELS(avx512)
// only bsr_sddmm, bitmap_sddmm and sparse24_sddmm are defined in avx512bf16 (CMakeLists.txt)
SK_DECLARE_CPU_GRAD_KERNELS(avx512bf16)
