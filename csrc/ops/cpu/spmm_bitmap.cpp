// CPU glue for sparse::bitmap_spmm: checks -> validation -> kernel, split over
// group rows (64 output rows each).
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

at::Tensor bitmap_spmm_cpu(const at::Tensor& group_offsets, const at::Tensor& bitmaps, const at::Tensor& values,
                           const at::Tensor& b, int64_t m, const std::optional<at::Tensor>& bias_opt) {
  constexpr const char* op = "sparse::bitmap_spmm";
  const at::Tensor bb = check_spmm_dense_operand(op, values, b);
  const int64_t k = bb.size(0), n = bb.size(1);
  // Sizes and the end offsets here; the kernel checks every group's offsets,
  // count and edge bits before using it, and on a bad one the full validator
  // raises its message.
  check_bitmap_header(op, group_offsets, bitmaps, values, m, k);
  const at::Tensor bias = check_spmm_bias(op, values, bias_opt, m);
  at::Tensor out = empty_output({m, n}, bb.options());
  auto validate = [&] { validate_bitmap(op, group_offsets, bitmaps, values, m, k); };
  if (m == 0 || n == 0) {
    validate();
    return out;
  }
  const int64_t group_rows = (m + 63) / 64;
  if (is_cpu_float64(values)) {  // simple double kernel: the full validator first
    validate();
    const cpu::BitmapSpmmArgs<double> args{group_offsets.data_ptr<int64_t>(),
                                           reinterpret_cast<const uint64_t*>(bitmaps.data_ptr<int64_t>()),
                                           data_as<const double>(values),
                                           data_as<const double>(bb),
                                           data_as<double>(out),
                                           m,
                                           k,
                                           n,
                                           bb.stride(0),
                                           out.stride(0),
                                           values.numel()};
    at::parallel_for(0, group_rows, spmm_row_grain(group_rows, values.numel(), n),
                     [&](int64_t begin, int64_t end) { SK_CPU_CALL(bitmap_spmm_f64, args, begin, end); });
    if (bias.defined()) out.add_(bias.unsqueeze(1));  // double: rounding twice costs nothing visible
    return out;
  }
  dispatch_value_type(values.scalar_type(), op, [&](auto vtag) {
    using T = decltype(vtag);
    const cpu::BitmapSpmmArgs<T> args{group_offsets.data_ptr<int64_t>(),
                                      reinterpret_cast<const uint64_t*>(bitmaps.data_ptr<int64_t>()),
                                      data_as<const T>(values),
                                      data_as<const T>(bb),
                                      data_as<T>(out),
                                      m,
                                      k,
                                      n,
                                      bb.stride(0),
                                      out.stride(0),
                                      values.numel(), bias.defined() ? data_as<const T>(bias) : nullptr};
    const int64_t bad = parallel_first_bad(group_rows, spmm_row_grain(group_rows, values.numel(), n),
                                           [&](int64_t begin, int64_t end, int64_t* first) {
                                             SK_CPU_CALL_BF16DOT(CpuIsa::avx512bf16, bitmap_spmm, args, begin, end, first);
                                           });
    if (bad >= 0) raise_from_validator(op, validate);
  });
  return out;
}

TORCH_LIBRARY_IMPL(sparse, CPU, m) { m.impl("bitmap_spmm", &bitmap_spmm_cpu); }

}  // namespace sk
