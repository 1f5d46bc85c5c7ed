// CPU glue for sparse::csr_sddmm: checks -> validation -> kernel.
#include <algorithm>

#include <ATen/Parallel.h>
#include <torch/library.h>

#include "core/checks.h"
#include "core/cpu_isa.h"
#include "core/dispatch.h"
#include "core/output.h"
#include "core/validate.h"
#include "kernels/cpu/float64.h"
#include "kernels/cpu/sddmm_spgemm.h"
#include "ops/cpu/row_split.h"

namespace sk {

// out[p] = dot(x[row(p)], y[col_idx[p]]): (x @ y.T) sampled at the CSR pattern
// (row_ptr [m + 1], col_idx [nnz]); x [m, d], y [n, d], out [nnz] in x's dtype.
at::Tensor csr_sddmm_cpu(const at::Tensor& row_ptr, const at::Tensor& col_idx, const at::Tensor& x,
                         const at::Tensor& y) {
  constexpr const char* op = "sparse::csr_sddmm";
  SK_CHECK_STRIDED(op, x);
  SK_CHECK_STRIDED(op, y);
  SK_CHECK_DIM(op, x, 2);
  SK_CHECK_DIM(op, y, 2);
  SK_CHECK_SAME_DTYPE(op, x, y);
  SK_CHECK_SAME_DEVICE(op, x, y);
  SK_CHECK_SAME_DEVICE(op, row_ptr, x);
  TORCH_CHECK_VALUE(x.size(1) == y.size(1), op, ": 'x' [m, d] and 'y' [n, d] must have the same d, got ",
                    x.sizes(), " and ", y.sizes());
  SK_CHECK_DIM(op, row_ptr, 1);
  TORCH_CHECK_VALUE(row_ptr.numel() >= 1, op, ": 'row_ptr' must have m + 1 >= 1 entries, got 0");
  const int64_t m = row_ptr.numel() - 1, n = y.size(0), d = x.size(1);
  TORCH_CHECK_VALUE(x.size(0) == m, op, ": 'x' must have m = ", m, " rows (row_ptr has ", m + 1,
                    " entries), got shape ", x.sizes());
  // SDDMM has no values: col_idx stands in for them (same length by construction).
  validate_csr(op, row_ptr, col_idx, col_idx, m, n);
  const at::Tensor xx = (d <= 1 || x.stride(1) == 1) ? x : x.contiguous();
  const at::Tensor yy = (d <= 1 || y.stride(1) == 1) ? y : y.contiguous();
  const int64_t nnz = col_idx.numel();
  at::Tensor out = empty_output({nnz}, x.options());
  if (nnz == 0) return out;
  const int64_t per_entry = d + 4;  // cost of an entry: a dot product of length d, and a few
  if (is_cpu_float64(x)) {  // simple double kernel (validated above)
    dispatch_index_type(row_ptr.scalar_type(), op, [&](auto itag) {
      using I = decltype(itag);
      const I* rp = row_ptr.data_ptr<I>();
      const cpu::CsrSddmmArgs<double, I> args{rp, col_idx.data_ptr<I>(), data_as<const double>(xx),
                                              data_as<const double>(yy), data_as<double>(out), m, n, d,
                                              xx.stride(0), yy.stride(0)};
      const auto bounds = split_rows_by_cost(m, 1 << 15, [&](int64_t i) { return int64_t(rp[i]) * per_entry + i; });
      parallel_for_row_parts(bounds, [&](int64_t begin, int64_t end) { SK_CPU_CALL(csr_sddmm_f64, args, begin, end); });
    });
    return out;
  }
  dispatch_value_type(x.scalar_type(), op, [&](auto vtag) {
    using T = decltype(vtag);
    dispatch_index_type(row_ptr.scalar_type(), op, [&](auto itag) {
      using I = decltype(itag);
      const I* rp = row_ptr.data_ptr<I>();
      const cpu::CsrSddmmArgs<T, I> args{rp, col_idx.data_ptr<I>(), data_as<const T>(xx), data_as<const T>(yy),
                                         data_as<T>(out), m, n, d, xx.stride(0), yy.stride(0)};
      // Cost of rows [0, i): d + a few per entry, a little per row.
      const auto bounds = split_rows_by_cost(m, 1 << 15, [&](int64_t i) { return int64_t(rp[i]) * per_entry + i; });
      parallel_for_row_parts(bounds, [&](int64_t begin, int64_t end) { SK_CPU_CALL(csr_sddmm, args, begin, end); });
    });
  });
  return out;
}

TORCH_LIBRARY_IMPL(sparse, CPU, m) { m.impl("csr_sddmm", &csr_sddmm_cpu); }

}  // namespace sk
