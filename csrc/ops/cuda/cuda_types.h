// Maps the glue's value types (core/dispatch.h: float, half_t, bf16_t) to the
// CUDA kernels' types (float, __half, __nv_bfloat16). The pairs have the same
// size and bit layout, so a tensor's data pointer can be reinterpreted.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "kernels/cpu/types.h"

namespace sk {

template <typename T>
struct CudaType;
template <>
struct CudaType<float> {
  using type = float;
};
template <>
struct CudaType<half_t> {
  using type = __half;
};
template <>
struct CudaType<bf16_t> {
  using type = __nv_bfloat16;
};
static_assert(sizeof(__half) == sizeof(half_t) && sizeof(__nv_bfloat16) == sizeof(bf16_t),
              "16-bit value types must match in size");

template <typename T>
using cuda_type_t = typename CudaType<T>::type;

}  // namespace sk
