// Shared checks and helpers for the CPU pack / unpack ops (dense <-> format).
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <type_traits>

#include <ATen/ATen.h>

#include "core/checks.h"
#include "core/dispatch.h"

namespace sk {

// The dense operand of a packer: 2-D, strided, float32/float16/bfloat16/float64.
// Returned contiguous (a copy only if it is not).
inline at::Tensor check_pack_dense_input(const char* op, const at::Tensor& dense) {
  SK_CHECK_STRIDED(op, dense);
  SK_CHECK_DIM(op, dense, 2);
  const at::ScalarType st = dense.scalar_type();
  TORCH_CHECK_TYPE(st == at::kFloat || st == at::kHalf || st == at::kBFloat16 || st == at::kDouble, op,
                   ": 'dense' must have dtype " SK_CPU_VALUE_DTYPES ", got ", st);
  return dense.contiguous();
}

// The values dtype of a format handed to an unpacker.
inline void check_unpack_values_dtype(const char* op, const at::Tensor& values, const char* name) {
  const at::ScalarType st = values.scalar_type();
  TORCH_CHECK_TYPE(st == at::kFloat || st == at::kHalf || st == at::kBFloat16 || st == at::kDouble, op, ": '",
                   name, "' has unsupported dtype ", st, "; expected " SK_CPU_VALUE_DTYPES);
}

// Index dtype the packers emit (sparsekernels.ops.pack_index_dtype): int32
// unless m * k needs 64 bits.
inline at::ScalarType pack_index_dtype(int64_t m, int64_t k) {
  return m * k <= int64_t(std::numeric_limits<int32_t>::max()) ? at::kInt : at::kLong;
}

// Rows per parallel chunk for a pass over rows of `cols` elements (~32k elements a chunk).
inline int64_t pack_row_grain(int64_t cols) { return std::max<int64_t>(1, 32768 / std::max<int64_t>(cols, 1)); }

// Packers keep the elements that compare unequal to zero (so -0 is dropped, NaN kept).
template <typename scalar_t>
inline bool is_nonzero(scalar_t x) {
  return static_cast<float>(x) != 0.f;
}
// float64 compares in double: a value below float32's range (1e-300) is kept.
template <>
inline bool is_nonzero<double>(double x) {
  return x != 0.0;
}

// What the unpackers sum duplicate entries in: fp32, or double for float64.
template <typename scalar_t>
using pack_acc_t = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;

// Calls f(scalar_t{}) for float, at::Half, at::BFloat16 or double (dtype checked before).
template <typename F>
decltype(auto) dispatch_pack_type(at::ScalarType st, const char* op, F&& f) {
  switch (st) {
    case at::kFloat:
      return f(float{});
    case at::kDouble:
      return f(double{});
    case at::kHalf:
      return f(at::Half{});
    case at::kBFloat16:
      return f(at::BFloat16{});
    default:
      TORCH_CHECK_TYPE(false, op, ": unsupported dtype ", st, "; expected " SK_CPU_VALUE_DTYPES);
  }
}

}  // namespace sk
