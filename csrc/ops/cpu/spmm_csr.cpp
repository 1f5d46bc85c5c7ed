// CPU glue for sparse::csr_spmm: checks -> validation -> kernel.
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "core/checks.h"
#include "core/cpu_isa.h"
#include "core/dispatch.h"
#include "core/output.h"
#include "core/validate.h"
#include "kernels/cpu/float64.h"
#include "kernels/cpu/kernels.h"
#include "ops/cpu/spmm_common.h"

namespace sk {

at::Tensor csr_spmm_cpu(const at::Tensor& row_ptr, const at::Tensor& col_idx, const at::Tensor& values,
                        const at::Tensor& b, int64_t m, const std::optional<at::Tensor>& bias_opt) {
  constexpr const char* op = "sparse::csr_spmm";
  const at::Tensor bb = check_spmm_dense_operand(op, values, b);
  const int64_t k = bb.size(0), n = bb.size(1);
  // O(1) checks here; the kernel checks every row pointer and column index as
  // it reads it, and on a bad one the full validator raises its message.
  check_csr_header(op, row_ptr, col_idx, values, m, k);
  const at::Tensor bias = check_spmm_bias(op, values, bias_opt, m);
  at::Tensor out = empty_output({m, n}, bb.options());
  auto validate = [&] { validate_csr(op, row_ptr, col_idx, values, m, k); };
  if (m == 0 || n == 0) {
    validate();
    return out;
  }
  const int64_t nnz = col_idx.numel();
  if (is_cpu_float64(values)) {  // simple double kernel: the full validator first
    validate();
    dispatch_index_type(row_ptr.scalar_type(), op, [&](auto itag) {
      using I = decltype(itag);
      const cpu::CsrSpmmArgs<double, I> args{row_ptr.data_ptr<I>(),      col_idx.data_ptr<I>(),
                                             data_as<const double>(values), data_as<const double>(bb),
                                             data_as<double>(out),       m, k, n,
                                             bb.stride(0),               out.stride(0), nnz};
      at::parallel_for(0, m, spmm_row_grain(m, nnz, n),
                       [&](int64_t begin, int64_t end) { SK_CPU_CALL(csr_spmm_f64, args, begin, end); });
    });
    if (bias.defined()) out.add_(bias.unsqueeze(1));  // double: rounding twice costs nothing visible
    return out;
  }
  dispatch_value_type(values.scalar_type(), op, [&](auto vtag) {
    using T = decltype(vtag);
    dispatch_index_type(row_ptr.scalar_type(), op, [&](auto itag) {
      using I = decltype(itag);
      const cpu::CsrSpmmArgs<T, I> args{row_ptr.data_ptr<I>(), col_idx.data_ptr<I>(), data_as<const T>(values),
                                        data_as<const T>(bb),  data_as<T>(out),       m, k, n,
                                        bb.stride(0),          out.stride(0),         nnz, bias.defined() ? data_as<const T>(bias) : nullptr};
      const int64_t bad = parallel_first_bad(m, spmm_row_grain(m, nnz, n), [&](int64_t begin, int64_t end,
                                                                                 int64_t* first_bad) {
        SK_CPU_CALL_AT_MOST(spmm_narrow_n_isa_cap(n), csr_spmm, args, begin, end, first_bad);
      });
      if (bad >= 0) raise_from_validator(op, validate);
    });
  });
  return out;
}

TORCH_LIBRARY_IMPL(sparse, CPU, m) { m.impl("csr_spmm", &csr_spmm_cpu); }

}  // namespace sk
