// Shared checks and work splitting for the CPU SpMM glue of every format.
#pragma once

#include <algorithm>

#include <ATen/ATen.h>

#include "core/checks.h"

namespace sk {

// Checks the dense operand b of an SpMM against the sparse values and returns
// it with contiguous rows (copying only if its rows are strided).
inline at::Tensor check_spmm_dense_operand(const char* op, const at::Tensor& values, const at::Tensor& b) {
  SK_CHECK_STRIDED(op, b);
  SK_CHECK_DIM(op, b, 2);
  SK_CHECK_SAME_DTYPE(op, values, b);
  SK_CHECK_SAME_DEVICE(op, values, b);
  if (b.size(1) <= 1 || b.stride(1) == 1) return b;
  return b.contiguous();
}

// Rows per parallel chunk so that a chunk carries roughly 64k multiply-adds.
inline int64_t spmm_row_grain(int64_t rows, int64_t nnz, int64_t n) {
  const int64_t per_row = std::max<int64_t>(1, (nnz / std::max<int64_t>(rows, 1)) * std::max<int64_t>(n, 1));
  return std::max<int64_t>(1, 65536 / per_row);
}

}  // namespace sk
