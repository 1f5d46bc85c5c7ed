#include "core/checks.h"
#include "core/dispatch.h"
#include "core/parallel_find.h"
#include "core/validate.h"

namespace sk {

void check_csr_arrays(const char* op, const at::Tensor& row_ptr, const at::Tensor& col_idx,
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
}

void check_csr_header(const char* op, const at::Tensor& row_ptr, const at::Tensor& col_idx,
                      const at::Tensor& values, int64_t m, int64_t k) {
  check_csr_arrays(op, row_ptr, col_idx, values, m, k);
  const int64_t nnz = col_idx.numel();
  dispatch_index_type(row_ptr.scalar_type(), op, [&](auto tag) {
    using I = decltype(tag);
    const I* rp = row_ptr.data_ptr<I>();
    TORCH_CHECK_VALUE(rp[0] == 0, op, ": 'row_ptr[0]' must be 0, got ", int64_t(rp[0]));
    TORCH_CHECK_VALUE(int64_t(rp[m]) == nnz, op, ": 'row_ptr[m]' must equal nnz = ", nnz,
                      " (the length of col_idx), got ", int64_t(rp[m]));
  });
}

void validate_csr(const char* op, const at::Tensor& row_ptr, const at::Tensor& col_idx, const at::Tensor& values,
                  int64_t m, int64_t k) {
  check_csr_header(op, row_ptr, col_idx, values, m, k);
  const int64_t nnz = col_idx.numel();
  dispatch_index_type(row_ptr.scalar_type(), op, [&](auto tag) {
    using I = decltype(tag);
    const I* rp = row_ptr.data_ptr<I>();
    const I* ci = col_idx.data_ptr<I>();
    const int64_t br = parallel_find_first_pure(m, 2048, [&](int64_t i) { return rp[i + 1] < rp[i]; });
    TORCH_CHECK_VALUE(br == m, op, ": 'row_ptr' must be non-decreasing, but row_ptr[", br, "] = ",
                      int64_t(rp[br]), " > row_ptr[", br + 1, "] = ", int64_t(rp[br + 1]));
    const int64_t bc = parallel_find_first_pure(nnz, 32768, [&](int64_t p) { return ci[p] < 0 || int64_t(ci[p]) >= k; });
    TORCH_CHECK_VALUE(bc == nnz, op, ": 'col_idx[", bc, "]' = ", int64_t(ci[bc]), " is out of range for ", k,
                      " columns");
  });
}

}  // namespace sk
