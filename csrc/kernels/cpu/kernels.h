// Torch-free CPU kernels: argument structs and entry points.
//
// Every buffer is host memory, row-major and contiguous unless stated. T is
// float, half_t or bf16_t (accumulation is always fp32); I is int32_t or
// int64_t. Each entry point processes a range of output rows (or row blocks /
// groups, as documented) so the ATen glue can split the work with
// at::parallel_for; ranges never write outside their own rows.
//
// The glue validates the format before calling (csrc/core/validate.h), except
// for the SpMM kernels of CSR, bitmap and 2:4, which check each index as they
// read it (docs/design.md, Validation): they never read out of bounds, and
// report through *first_bad the first row (CSR, 2:4) or group row (bitmap) of
// their range whose metadata is bad, or -1; the glue then raises the
// validator's message.
//
// Each entry point exists once per ISA (sk::cpu::scalar / avx2 / avx512); the
// glue picks one at run time (csrc/core/cpu_isa.h, SK_CPU_CALL).
#pragma once

#include <cstdint>

#include "kernels/cpu/types.h"

namespace sk {
namespace cpu {

// out[m, n] = A[m, k] @ b[k, n], A in CSR.
template <typename T, typename I>
struct CsrSpmmArgs {
  const I* row_ptr;  // [m + 1]
  const I* col_idx;  // [nnz], each < k
  const T* values;   // [nnz]
  const T* b;        // [k, n], row stride ldb
  T* out;            // [m, n], row stride ldo
  int64_t m, k, n;
  int64_t ldb, ldo;
  int64_t nnz;       // length of col_idx and values
  const T* bias = nullptr;  // [m] added to out's rows before the one rounding, or none
};

// out[m, n] = A[m, k] @ b[k, n], A in BSR with r x c blocks. Row blocks are
// ceil(m / r), column blocks ceil(k / c); edge blocks are padded and their
// padding is never read against b or written to out.
template <typename T, typename I>
struct BsrSpmmArgs {
  const I* block_row_ptr;  // [ceil(m / r) + 1]
  const I* block_col_idx;  // [nnzb], each < ceil(k / c)
  const T* blocks;         // [nnzb, r, c]
  const T* b;              // [k, n], row stride ldb
  T* out;                  // [m, n], row stride ldo
  int64_t m, k, n;
  int64_t r, c;
  int64_t ldb, ldo;
  const T* bias = nullptr;  // [m] added to out's rows before the one rounding, or none
};

// out[m, n] = A[m, k] @ b[k, n], A in the bitmap format (docs/formats.md):
// 64 x 64 groups in row-major group order, each group 64 8x8 tiles.
template <typename T>
struct BitmapSpmmArgs {
  const int64_t* group_offsets;  // [ceil(m/64) * ceil(k/64) + 1], start of each group's values
  const uint64_t* bitmaps;       // [ceil(m/64) * ceil(k/64) * 64]
  const T* values;               // [group_offsets[last]]
  const T* b;                    // [k, n], row stride ldb
  T* out;                        // [m, n], row stride ldo
  int64_t m, k, n;
  int64_t ldb, ldo;
  int64_t nvalues;               // length of values
  const T* bias = nullptr;  // [m] added to out's rows before the one rounding, or none
};

// The bitmap tile order (docs/formats.md), shared by the SpMM and transposed
// SpMM kernels: row lr of a group lies in tiles (lr / 16) * 16 + (lr / 8) % 2
// + kBitmapTileOffset[j] for j = 0..7 left to right (fragment column j / 2,
// tile column j % 2), as byte lr % 8 of each mask.
constexpr int kBitmapTileOffset[8] = {0, 2, 4, 6, 8, 10, 12, 14};
// starts[t] = the values of tiles 0 .. t-1 of a group (its 64 masks), the
// tile starts relative to the group's first value; returns its set bits.
inline int bitmap_tile_starts(const uint64_t* masks, uint16_t* starts) {
  int acc = 0;
  for (int t = 0; t < 64; ++t) {
    starts[t] = uint16_t(acc);
    acc += __builtin_popcountll(masks[t]);
  }
  return acc;
}

// 2:4 metadata: bit v is set when the 4-bit group metadata v = idx0 | idx1 << 2
// has idx0 < idx1: (0,1)=4, (0,2)=8, (0,3)=12, (1,2)=9, (1,3)=13, (2,3)=14.
// Used by the validator (core/validate_sparse24.cpp); the kernel checks the
// same condition with bit arithmetic (spmm_sparse24.cpp, mark_bad_groups).
constexpr uint32_t kSparse24ValidGroupMeta =
    (1u << 4) | (1u << 8) | (1u << 12) | (1u << 9) | (1u << 13) | (1u << 14);

// out[m, n] = A[m, k] @ b[k, n], A in the 2:4 format (docs/formats.md).
template <typename T>
struct Sparse24SpmmArgs {
  const T* values;      // [m, kp / 2], kp = roundup(k, 16)
  const uint16_t* meta; // [m, kp / 16]
  const T* b;           // [k, n], row stride ldb
  T* out;               // [m, n], row stride ldo
  int64_t m, k, n;
  int64_t ldb, ldo;
  const T* bias = nullptr;  // [m] added to out's rows before the one rounding, or none
};

}  // namespace cpu
}  // namespace sk

// Entry points, declared once per ISA namespace. Row ranges are [begin, end).
#define SK_DECLARE_CPU_KERNELS(ISA)                                                         \
  namespace sk {                                                                            \
  namespace cpu {                                                                           \
  namespace ISA {                                                                           \
  /* rows [begin, end) of out */                                                            \
  template <typename T, typename I>                                                         \
  void csr_spmm(const CsrSpmmArgs<T, I>& a, int64_t begin, int64_t end, int64_t* first_bad);                \
  /* block rows [begin, end) of out (rows begin*r .. min(end*r, m)) */                     \
  template <typename T, typename I>                                                         \
  void bsr_spmm(const BsrSpmmArgs<T, I>& a, int64_t begin, int64_t end);                   \
  /* group rows [begin, end) of out (rows begin*64 .. min(end*64, m)) */                   \
  template <typename T>                                                                     \
  void bitmap_spmm(const BitmapSpmmArgs<T>& a, int64_t begin, int64_t end, int64_t* first_bad);                \
  /* rows [begin, end) of out */                                                            \
  template <typename T>                                                                     \
  void sparse24_spmm(const Sparse24SpmmArgs<T>& a, int64_t begin, int64_t end, int64_t* first_bad);            \
  }                                                                                         \
  }                                                                                         \
  }

SK_DECLARE_CPU_KERNELS(scalar)
SK_DECLARE_CPU_KERNELS(avx2)
SK_DECLARE_CPU_KERNELS(avx512)
// only bitmap_spmm and sparse24_spmm are defined in avx512bf16 (CMakeLists.txt)
SK_DECLARE_CPU_KERNELS(avx512bf16)
