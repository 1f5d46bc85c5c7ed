// Per-thread scratch shared by the CPU kernels (inside the ISA namespace, so
// each ISA's copy is its own type: isa.h).
#pragma once

#include <cstdint>
#include <cstdlib>

#include "kernels/cpu/isa.h"

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

SK_CPU_NAMESPACE_END
