// Element types shared by the torch-free kernels and the ATen glue.
//
// Only plain data lives here: no functions. Everything with code (conversions,
// SIMD helpers) is defined inside the per-ISA namespace (simd.h), so that an
// inline function compiled with AVX-512 flags can never be picked by the linker
// for a baseline caller (the classic SIGILL-on-old-CPU bug).
#pragma once
#include <cstdint>

namespace sk {

// IEEE half, stored as raw bits (layout-compatible with at::Half / __half).
struct half_t {
  uint16_t bits;
};
// bfloat16, stored as raw bits (layout-compatible with at::BFloat16 / __nv_bfloat16).
struct bf16_t {
  uint16_t bits;
};

}  // namespace sk
