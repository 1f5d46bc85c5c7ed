// dtype / index-type dispatch from ATen tensors to the torch-free kernel types.
#pragma once

#include <cstdint>

#include <ATen/ATen.h>

#include "kernels/cpu/types.h"

namespace sk {

// Maps an ATen element type to the kernel element type (float, half_t, bf16_t).
template <typename T>
struct KernelType;
template <>
struct KernelType<float> {
  using type = float;
};
template <>
struct KernelType<at::Half> {
  using type = half_t;
};
template <>
struct KernelType<at::BFloat16> {
  using type = bf16_t;
};

// Pointer to t's data as the kernel element type T (float, half_t, bf16_t).
template <typename T>
T* data_as(const at::Tensor& t) {
  return reinterpret_cast<T*>(t.data_ptr());
}

// float64 values run on the CPU only, through the simple double kernels of
// kernels/cpu/float64.h; the glue of each CPU op takes that branch (after the
// format's full validation) before dispatch_value_type, which serves the fp32
// accumulating kernels and so never sees float64 on the CPU.
inline bool is_cpu_float64(const at::Tensor& t) { return t.scalar_type() == at::kDouble && t.device().is_cpu(); }

// The value dtypes of the CPU ops, for error messages.
#define SK_CPU_VALUE_DTYPES "float32, float16, bfloat16 or float64 (CPU)"

// Calls f(T{}) with T = float, half_t or bf16_t for the given value dtype.
template <typename F>
decltype(auto) dispatch_value_type(at::ScalarType st, const char* op, F&& f) {
  switch (st) {
    case at::kFloat:
      return f(float{});
    case at::kHalf:
      return f(half_t{});
    case at::kBFloat16:
      return f(bf16_t{});
    default:
      TORCH_CHECK_TYPE(false, op, ": unsupported dtype ", st,
                       "; expected float32, float16, bfloat16 or float64 (float64 on the CPU only)");
  }
}

// Calls f(I{}) with I = int32_t or int64_t for the given index dtype.
template <typename F>
decltype(auto) dispatch_index_type(at::ScalarType st, const char* op, F&& f) {
  switch (st) {
    case at::kInt:
      return f(int32_t{});
    case at::kLong:
      return f(int64_t{});
    default:
      TORCH_CHECK_TYPE(false, op, ": unsupported index dtype ", st, "; expected int32 or int64");
  }
}

}  // namespace sk
