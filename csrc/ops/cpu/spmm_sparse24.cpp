// CPU glue for sparse::sparse24_spmm: checks -> validation -> kernel.
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

at::Tensor sparse24_spmm_cpu(const at::Tensor& values, const at::Tensor& meta, const at::Tensor& b) {
  constexpr const char* op = "sparse::sparse24_spmm";
  const at::Tensor bb = check_spmm_dense_operand(op, values, b);
  const int64_t k = bb.size(0), n = bb.size(1);
  validate_sparse24(op, values, meta, k);
  const int64_t m = values.size(0);
  at::Tensor out = empty_output({m, n}, bb.options());
  if (m == 0 || n == 0) return out;
  dispatch_value_type(values.scalar_type(), op, [&](auto vtag) {
    using T = decltype(vtag);
    const cpu::Sparse24SpmmArgs<T> args{data_as<const T>(values),
                                        reinterpret_cast<const uint16_t*>(meta.data_ptr()),
                                        data_as<const T>(bb),
                                        data_as<T>(out),
                                        m,
                                        k,
                                        n,
                                        bb.stride(0),
                                        out.stride(0)};
    // Each row stores k / 2 elements.
    at::parallel_for(0, m, spmm_row_grain(m, m * (k / 2), n), [&](int64_t begin, int64_t end) {
      SK_CPU_CALL(sparse24_spmm, args, begin, end);
    });
  });
  return out;
}

TORCH_LIBRARY_IMPL(sparse, CPU, m) { m.impl("sparse24_spmm", &sparse24_spmm_cpu); }

}  // namespace sk
