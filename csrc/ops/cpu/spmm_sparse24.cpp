// CPU glue for sparse::sparse24_spmm: checks -> validation -> kernel.
#include <type_traits>

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

at::Tensor sparse24_spmm_cpu(const at::Tensor& values, const at::Tensor& meta, const at::Tensor& b,
                             const std::optional<at::Tensor>& bias_opt) {
  constexpr const char* op = "sparse::sparse24_spmm";
  const at::Tensor bb = check_spmm_dense_operand(op, values, b);
  const int64_t k = bb.size(0), n = bb.size(1);
  // Shapes here; the kernel checks every meta word of a row before using it,
  // and on a bad one the full validator raises its message.
  check_sparse24_header(op, values, meta, k);
  const int64_t m = values.size(0);
  const at::Tensor bias = check_spmm_bias(op, values, bias_opt, m);
  at::Tensor out = empty_output({m, n}, bb.options());
  auto validate = [&] { validate_sparse24(op, values, meta, k); };
  if (m == 0 || n == 0) {
    validate();
    return out;
  }
  if (is_cpu_float64(values)) {  // simple double kernel: the full validator first
    validate();
    const cpu::Sparse24SpmmArgs<double> args{data_as<const double>(values),
                                             reinterpret_cast<const uint16_t*>(meta.data_ptr()),
                                             data_as<const double>(bb),
                                             data_as<double>(out),
                                             m,
                                             k,
                                             n,
                                             bb.stride(0),
                                             out.stride(0)};
    at::parallel_for(0, m, spmm_row_grain(m, m * (k / 2), n),
                     [&](int64_t begin, int64_t end) { SK_CPU_CALL(sparse24_spmm_f64, args, begin, end); });
    if (bias.defined()) out.add_(bias.unsqueeze(1));  // double: rounding twice costs nothing visible
    return out;
  }
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
                                        out.stride(0), bias.defined() ? data_as<const T>(bias) : nullptr};
    // Each row stores k / 2 elements.
    const int64_t bad =
        parallel_first_bad(m, spmm_row_grain(m, m * (k / 2), n), [&](int64_t begin, int64_t end, int64_t* first) {
          // no ISA cap: 2 <= n <= 8 runs the 256-bit expansion, which AVX-512's 32
          // registers serve best (csrc/kernels/cpu/spmm_sparse24.cpp; 4096^2 fp32 n = 4:
          // 1.93 ms on the AVX2 kernel, 1.62 on AVX-512); only a b with a NaN or
          // infinity at 4 <= n <= 8 then takes 512-bit partial vectors (1.06-1.42x
          // slower than AVX2's)
          SK_CPU_CALL_BF16DOT(CpuIsa::avx512bf16, sparse24_spmm, args, begin, end, first);
        });
    if (bad >= 0) raise_from_validator(op, validate);
  });
  return out;
}

TORCH_LIBRARY_IMPL(sparse, CPU, m) { m.impl("sparse24_spmm", &sparse24_spmm_cpu); }

}  // namespace sk
