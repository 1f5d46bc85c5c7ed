// Argument checks at the op boundary. Each names the op and the argument, and
// raises the matching Python exception (TypeError for dtype, ValueError for
// shapes and values, RuntimeError for device).
#pragma once

#include <optional>

#include <ATen/ATen.h>

#define SK_CHECK_DIM(OP, T, D)                                                              \
  TORCH_CHECK_VALUE((T).dim() == (D), OP, ": '" #T "' must be a ", D, "-D tensor, got ", \
                    (T).dim(), "-D with shape ", (T).sizes())

#define SK_CHECK_DTYPE(OP, T, DT)                                                       \
  TORCH_CHECK_TYPE((T).scalar_type() == (DT), OP, ": '" #T "' must have dtype ", DT, \
                   ", got ", (T).scalar_type())

#define SK_CHECK_SAME_DTYPE(OP, A, B)                                                   \
  TORCH_CHECK_TYPE((A).scalar_type() == (B).scalar_type(),                              \
                   OP, ": '" #A "' and '" #B "' must have the same dtype, got ",        \
                   (A).scalar_type(), " and ", (B).scalar_type())

#define SK_CHECK_SAME_DEVICE(OP, A, B)                                                  \
  TORCH_CHECK((A).device() == (B).device(), OP, ": '" #A "' and '" #B                    \
              "' must be on the same device, got ",                                     \
              (A).device(), " and ", (B).device())

#define SK_CHECK_CONTIGUOUS(OP, T) \
  TORCH_CHECK_VALUE((T).is_contiguous(), OP, ": '" #T "' must be contiguous")

#define SK_CHECK_STRIDED(OP, T)                                                         \
  TORCH_CHECK_TYPE((T).layout() == at::kStrided, OP, ": '" #T "' must be a dense (strided) " \
                   "tensor, got layout ", (T).layout())

// A dense 2-D operand whose rows are contiguous (stride(1) == 1), any row stride.
#define SK_CHECK_ROW_MAJOR(OP, T)                                                       \
  TORCH_CHECK_VALUE((T).size(1) <= 1 || (T).stride(1) == 1, OP, ": '" #T                 \
                    "' must have contiguous rows (stride(1) == 1), got strides ",       \
                    (T).strides(), "; call .contiguous()")

// The optional bias of the SpMM kernel ops (out = A @ b + bias[:, None], rounded once): a dense 1-D tensor of
// length m (one entry per output row) with the sparse values' dtype and device. Returned contiguous, or an
// undefined tensor when there is none.
inline at::Tensor check_spmm_bias(const char* op, const at::Tensor& values, const std::optional<at::Tensor>& bias_opt,
                                  int64_t m, const char* values_name = "values") {
  if (!bias_opt.has_value() || !bias_opt->defined()) return at::Tensor();
  const at::Tensor& bias = *bias_opt;
  SK_CHECK_STRIDED(op, bias);
  TORCH_CHECK_VALUE(bias.dim() == 1 && bias.size(0) == m, op, ": 'bias' must be a 1-D tensor of length m = ", m,
                    " (one entry per output row), got shape ", bias.sizes());
  TORCH_CHECK_TYPE(values.scalar_type() == bias.scalar_type(), op, ": '", values_name,
                   "' and 'bias' must have the same dtype, got ", values.scalar_type(), " and ", bias.scalar_type());
  TORCH_CHECK(values.device() == bias.device(), op, ": '", values_name, "' and 'bias' must be on the same device, got ",
              values.device(), " and ", bias.device());
  return bias.contiguous();
}
