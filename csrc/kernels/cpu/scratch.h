// Per-thread scratch, b-copy and index-check helpers shared by the CPU kernels (inside the ISA namespace, so
// each ISA's copy is its own type: isa.h).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "kernels/cpu/isa.h"
#include "kernels/cpu/simd.h"

SK_CPU_NAMESPACE_BEGIN

// True when every index of ci[0 .. cnt) lies in [0, k). Branch-free so it
// vectorises.
static inline bool cols_in_range(const int32_t* ci, int64_t cnt, int64_t k) {
  // a negative index reads as >= 2^31 unsigned, which is never < uk
  const uint32_t uk = k < (int64_t(1) << 31) ? uint32_t(k) : uint32_t(1) << 31;
  uint32_t bad = 0;
  for (int64_t p = 0; p < cnt; ++p) bad |= uint32_t(uint32_t(ci[p]) >= uk);
  return bad == 0;
}
static inline bool cols_in_range(const int64_t* ci, int64_t cnt, int64_t k) {
  const uint64_t uk = uint64_t(k);
  uint64_t bad = 0;
  for (int64_t p = 0; p < cnt; ++p) bad |= uint64_t(uint64_t(ci[p]) >= uk);
  return bad == 0;
}

// A growable fp32 buffer, 64-byte aligned, freed with its owner (a
// thread_local instance is reused by every call on that thread: no
// allocation per call once it is large enough).
struct FloatBuffer {
  float* data = nullptr;
  int64_t size = 0;
  FloatBuffer() = default;
  FloatBuffer(const FloatBuffer&) = delete;
  FloatBuffer& operator=(const FloatBuffer&) = delete;
  ~FloatBuffer() { std::free(data); }
  // false when the allocation fails (callers then take a path without it)
  bool reserve(int64_t n) {
    if (n <= size) return true;
    float* p = static_cast<float*>(std::aligned_alloc(64, size_t((n + 15) / 16 * 16) * sizeof(float)));
    if (p == nullptr) return false;
    std::free(data);
    data = p;
    size = n;
    return true;
  }
};

// Kernels that walk b in column blocks copy a block to a contiguous buffer
// first (copy_column_block) when b's rows are at least this many bytes apart:
// read in place, rows 8 KiB apart (fp32, n = 2048) map a block's rows to a
// few L1/L2 sets, so they came from L3 (docs/performance.md, "Wide n"; CSR
// and bitmap measured there: a tie at 1 KiB, slower at 256 B, where b is
// contiguous already).
constexpr int64_t kPackMinRowBytes = 2048;

// Copies columns [j0, j0 + nc) of rows [0, rows) of b (row stride ldb) to
// dst as they are, rows nc elements apart: a column block of a wide b made
// contiguous.
template <typename T>
static inline void copy_column_block(const T* b, int64_t ldb, int64_t rows, int64_t j0, int64_t nc, T* dst) {
  for (int64_t c = 0; c < rows; ++c) std::memcpy(dst + c * nc, b + c * ldb + j0, size_t(nc) * sizeof(T));
}

// Copies columns [j0, j0 + nc) of rows [0, rows) of b (row stride ldb) to
// dst in fp32, rows ncp floats apart (ncp >= nc, a multiple of kW), zero in
// columns nc .. ncp and in rows rows .. rows_pad. Returns whether every copied
// element is finite. Vectorised, with the finiteness test x * -1 + x (0 for
// finite x, NaN otherwise) summed per lane: a scalar sum of x - x chained one
// add per element and cost ~4 cycles each (a call's copy of b then took
// about as long as 40 % of one 64-row group row at N = 16).
template <typename T>
static inline bool copy_columns_fp32(const T* b, int64_t ldb, int64_t rows, int64_t rows_pad, int64_t j0,
                                     int64_t nc, int64_t ncp, float* dst) {
  VecF bad = vzero();
  const VecF minus1 = vset1(-1.f);
  for (int64_t c = 0; c < rows_pad; ++c) {
    float* d = dst + c * ncp;
    int64_t j = 0;
    if (c < rows) {
      const T* src = b + c * ldb + j0;
      for (; j + kW <= nc; j += kW) {
        const VecF x = vload(src + j);
        vstore(d + j, x);
        bad = vadd(bad, vfma(x, minus1, x));
      }
      if (j < nc) {  // the last lanes are zero: they pad the row up to ncp
        const VecF x = vload_partial(src + j, int(nc - j));
        vstore(d + j, x);
        bad = vadd(bad, vfma(x, minus1, x));
        j += kW;
      }
    }
    for (; j < ncp; j += kW) vstore(d + j, vzero());
  }
  return vhsum(bad) == 0.f;
}

// Copies rows [0, rows) of b (n columns, row stride ldb) to dst in fp32 as
// blocks of blk rows, each block transposed:
// dst[(c / blk) * n * blk + j * blk + c % blk] = b[c, j], zero for
// rows <= c < rows_pad (a multiple of blk). So a block's blk values of one
// column are contiguous and a block's n columns are adjacent. Returns whether
// every copied element is finite.
template <typename T>
static inline bool transpose_row_blocks(const T* b, int64_t ldb, int64_t rows, int64_t rows_pad, int64_t n,
                                        int64_t blk, float* dst) {
  // one contiguous column: the blocks are b itself, zero-padded (vectorised)
  if (n == 1 && ldb == 1 && rows_pad % kW == 0) return copy_columns_fp32(b, rows, 1, 1, 0, rows, rows_pad, dst);
  // an integer OR per element (a float sum of x - x chained one add, ~4
  // cycles, per element)
  uint32_t bad = 0;
  int64_t c = 0;
  // whole blocks column by column: each column's blk values are stored
  // contiguously (per element a strided load, a store and the check)
  for (; c + blk <= rows; c += blk) {
    float* d0 = dst + (c / blk) * n * blk;
    for (int64_t j = 0; j < n; ++j) {
      const T* src = b + c * ldb + j;
      float* d = d0 + j * blk;
      for (int64_t i = 0; i < blk; ++i) {
        const float x = to_float(src[i * ldb]);
        d[i] = x;
        bad |= non_finite_bit(x);
      }
    }
  }
  for (; c < rows_pad; ++c) {  // the last, partial block and the zero blocks
    float* d = dst + (c / blk) * n * blk + c % blk;
    if (c < rows) {
      const T* src = b + c * ldb;
      for (int64_t j = 0; j < n; ++j) {
        const float x = to_float(src[j]);
        d[j * blk] = x;
        bad |= non_finite_bit(x);
      }
    } else {
      for (int64_t j = 0; j < n; ++j) d[j * blk] = 0.f;
    }
  }
  return bad == 0;
}

SK_CPU_NAMESPACE_END
