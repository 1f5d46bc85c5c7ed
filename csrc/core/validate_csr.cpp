#include <atomic>

#include <ATen/Parallel.h>

#include "core/checks.h"
#include "core/dispatch.h"
#include "core/validate.h"

namespace sk {

void validate_csr(const char* op, const at::Tensor& row_ptr, const at::Tensor& col_idx,
                  const at::Tensor& values, int64_t m, int64_t k) {
  TORCH_CHECK_VALUE(m >= 0 && k >= 0, op, ": the sparse shape must be non-negative, got (", m, ", ", k, ")");
  SK_CHECK_DIM(op, row_ptr, 1);
  SK_CHECK_DIM(op, col_idx, 1);
  SK_CHECK_DIM(op, values, 1);
  SK_CHECK_SAME_DTYPE(op, row_ptr, col_idx);
  SK_CHECK_CONTIGUOUS(op, row_ptr);
  SK_CHECK_CONTIGUOUS(op, col_idx);
  SK_CHECK_CONTIGUOUS(op, values);
  SK_CHECK_SAME_DEVICE(op, row_ptr, col_idx);
  SK_CHECK_SAME_DEVICE(op, row_ptr, values);
  TORCH_CHECK_VALUE(row_ptr.numel() == m + 1, op, ": 'row_ptr' must have m + 1 = ", m + 1,
                    " entries, got ", row_ptr.numel());
  TORCH_CHECK_VALUE(values.numel() == col_idx.numel(), op, ": 'values' (", values.numel(),
                    " entries) and 'col_idx' (", col_idx.numel(), " entries) must have the same length");
  const int64_t nnz = col_idx.numel();
  dispatch_index_type(row_ptr.scalar_type(), op, [&](auto tag) {
    using I = decltype(tag);
    const I* rp = row_ptr.data_ptr<I>();
    const I* ci = col_idx.data_ptr<I>();
    TORCH_CHECK_VALUE(rp[0] == 0, op, ": 'row_ptr[0]' must be 0, got ", int64_t(rp[0]));
    TORCH_CHECK_VALUE(int64_t(rp[m]) == nnz, op, ": 'row_ptr[m]' must equal nnz = ", nnz,
                      " (the length of col_idx), got ", int64_t(rp[m]));
    // First bad row / entry, found in parallel (smallest index wins).
    std::atomic<int64_t> bad_row{m}, bad_col{nnz};
    at::parallel_for(0, m, 2048, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        if (rp[i + 1] < rp[i]) {
          int64_t cur = bad_row.load();
          while (i < cur && !bad_row.compare_exchange_weak(cur, i)) {
          }
          return;
        }
      }
    });
    const int64_t br = bad_row.load();
    TORCH_CHECK_VALUE(br == m, op, ": 'row_ptr' must be non-decreasing, but row_ptr[", br, "] = ",
                      int64_t(rp[br]), " > row_ptr[", br + 1, "] = ", int64_t(rp[br + 1]));
    at::parallel_for(0, nnz, 32768, [&](int64_t b, int64_t e) {
      for (int64_t p = b; p < e; ++p) {
        if (ci[p] < 0 || int64_t(ci[p]) >= k) {
          int64_t cur = bad_col.load();
          while (p < cur && !bad_col.compare_exchange_weak(cur, p)) {
          }
          return;
        }
      }
    });
    const int64_t bc = bad_col.load();
    TORCH_CHECK_VALUE(bc == nnz, op, ": 'col_idx[", bc, "]' = ", int64_t(ci[bc]),
                      " is out of range for ", k, " columns");
  });
}

}  // namespace sk
