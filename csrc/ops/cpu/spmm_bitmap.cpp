// CPU glue for sparse::bitmap_spmm: checks -> validation -> kernel, split over
// group rows (64 output rows each).
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "core/checks.h"
#include "core/cpu_isa.h"
#include "core/dispatch.h"
#include "core/output.h"
#include "core/validate.h"
#include "kernels/cpu/kernels.h"
#include "ops/cpu/spmm_common.h"

namespace sk {

at::Tensor bitmap_spmm_cpu(const at::Tensor& group_offsets, const at::Tensor& bitmaps, const at::Tensor& values,
                           const at::Tensor& b, int64_t m) {
  constexpr const char* op = "sparse::bitmap_spmm";
  const at::Tensor bb = check_spmm_dense_operand(op, values, b);
  const int64_t k = bb.size(0), n = bb.size(1);
  validate_bitmap(op, group_offsets, bitmaps, values, m, k);
  at::Tensor out = empty_output({m, n}, bb.options());
  if (m == 0 || n == 0) return out;
  const int64_t group_rows = (m + 63) / 64;
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
                                      out.stride(0)};
    at::parallel_for(0, group_rows, spmm_row_grain(group_rows, values.numel(), n), [&](int64_t begin, int64_t end) {
      SK_CPU_CALL(bitmap_spmm, args, begin, end);
    });
  });
  return out;
}

TORCH_LIBRARY_IMPL(sparse, CPU, m) { m.impl("bitmap_spmm", &bitmap_spmm_cpu); }

}  // namespace sk
