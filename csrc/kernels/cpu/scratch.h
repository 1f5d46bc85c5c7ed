// Per-thread scratch and b-copy helpers shared by the CPU kernels (inside the ISA namespace, so
// each ISA's copy is its own type: isa.h).
#pragma once

#include <cstdint>
#include <cstdlib>

#include "kernels/cpu/isa.h"
#include "kernels/cpu/simd.h"

SK_CPU_NAMESPACE_BEGIN

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

// Copies rows [0, rows) of b (n columns, row stride ldb) to dst in fp32 as
// blocks of blk rows, each block transposed:
// dst[(c / blk) * n * blk + j * blk + c % blk] = b[c, j], zero for
// rows <= c < rows_pad (a multiple of blk). So a block's blk values of one
// column are contiguous and a block's n columns are adjacent. Returns whether
// every copied element is finite.
template <typename T>
static inline bool transpose_row_blocks(const T* b, int64_t ldb, int64_t rows, int64_t rows_pad, int64_t n,
                                        int64_t blk, float* dst) {
  float bad = 0.f;  // x - x is 0 for finite x, NaN otherwise
  for (int64_t c = 0; c < rows_pad; ++c) {
    float* d = dst + (c / blk) * n * blk + c % blk;
    if (c < rows) {
      const T* src = b + c * ldb;
      for (int64_t j = 0; j < n; ++j) {
        const float x = to_float(src[j]);
        d[j * blk] = x;
        bad += x - x;
      }
    } else {
      for (int64_t j = 0; j < n; ++j) d[j * blk] = 0.f;
    }
  }
  return bad == 0.f;
}

// Copies columns [j0, j0 + nc) of rows [0, rows) of b (row stride ldb) to
// dst in fp32, rows ncp >= nc floats apart, zero in columns nc .. ncp and in
// rows rows .. rows_pad. Returns whether every copied element is finite.
template <typename T>
static inline bool copy_columns_fp32(const T* b, int64_t ldb, int64_t rows, int64_t rows_pad, int64_t j0,
                                     int64_t nc, int64_t ncp, float* dst) {
  float bad = 0.f;  // x - x is 0 for finite x, NaN otherwise
  for (int64_t c = 0; c < rows_pad; ++c) {
    float* d = dst + c * ncp;
    int64_t j = 0;
    if (c < rows) {
      const T* src = b + c * ldb + j0;
      for (; j < nc; ++j) {
        const float x = to_float(src[j]);
        d[j] = x;
        bad += x - x;
      }
    }
    for (; j < ncp; ++j) d[j] = 0.f;
  }
  return bad == 0.f;
}

SK_CPU_NAMESPACE_END
