// CPU glue for sparse::bsr_spmm: checks -> validation -> kernel.
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

at::Tensor bsr_spmm_cpu(const at::Tensor& block_row_ptr, const at::Tensor& block_col_idx, const at::Tensor& blocks,
                        const at::Tensor& b, int64_t m, const std::optional<at::Tensor>& bias_opt) {
  constexpr const char* op = "sparse::bsr_spmm";
  SK_CHECK_SAME_DTYPE(op, blocks, b);
  const at::Tensor bb = check_spmm_dense_operand(op, blocks, b);
  const int64_t k = bb.size(0), n = bb.size(1);
  validate_bsr(op, block_row_ptr, block_col_idx, blocks, m, k);
  const at::Tensor bias = check_spmm_bias(op, blocks, bias_opt, m, "blocks");
  at::Tensor out = empty_output({m, n}, bb.options());
  if (m == 0 || n == 0) return out;
  const int64_t r = blocks.size(1), c = blocks.size(2);
  const int64_t row_blocks = (m + r - 1) / r;
  const int64_t nnz = block_col_idx.numel() * r * c;
  if (is_cpu_float64(blocks)) {  // simple double kernel (validated above)
    dispatch_index_type(block_row_ptr.scalar_type(), op, [&](auto itag) {
      using I = decltype(itag);
      const cpu::BsrSpmmArgs<double, I> args{block_row_ptr.data_ptr<I>(), block_col_idx.data_ptr<I>(),
                                             data_as<const double>(blocks), data_as<const double>(bb),
                                             data_as<double>(out), m, k, n, r, c, bb.stride(0), out.stride(0)};
      at::parallel_for(0, row_blocks, spmm_row_grain(row_blocks, nnz, n),
                       [&](int64_t begin, int64_t end) { SK_CPU_CALL(bsr_spmm_f64, args, begin, end); });
    });
    if (bias.defined()) out.add_(bias.unsqueeze(1));  // double: rounding twice costs nothing visible
    return out;
  }
  dispatch_value_type(blocks.scalar_type(), op, [&](auto vtag) {
    using T = decltype(vtag);
    dispatch_index_type(block_row_ptr.scalar_type(), op, [&](auto itag) {
      using I = decltype(itag);
      const cpu::BsrSpmmArgs<T, I> args{block_row_ptr.data_ptr<I>(), block_col_idx.data_ptr<I>(),
                                        data_as<const T>(blocks),    data_as<const T>(bb),
                                        data_as<T>(out),             m,
                                        k,                           n,
                                        r,                           c,
                                        bb.stride(0),                out.stride(0), bias.defined() ? data_as<const T>(bias) : nullptr};
      at::parallel_for(0, row_blocks, spmm_row_grain(row_blocks, nnz, n), [&](int64_t begin, int64_t end) {
        SK_CPU_CALL(bsr_spmm, args, begin, end);
      });
    });
  });
  return out;
}

TORCH_LIBRARY_IMPL(sparse, CPU, m) { m.impl("bsr_spmm", &bsr_spmm_cpu); }

}  // namespace sk
