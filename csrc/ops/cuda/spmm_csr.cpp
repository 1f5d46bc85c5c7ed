// CUDA glue for sparse::csr_spmm: checks -> device validation -> kernel, all on
// the current stream of the operands' device.
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "core/checks.h"
#include "core/dispatch.h"
#include "core/output.h"
#include "kernels/cuda/kernels.h"
#include "ops/cpu/spmm_common.h"
#include "ops/cuda/cuda_types.h"
#include "ops/cuda/validate.h"

namespace sk {

at::Tensor csr_spmm_cuda(const at::Tensor& row_ptr, const at::Tensor& col_idx, const at::Tensor& values,
                         const at::Tensor& b, int64_t m, const std::optional<at::Tensor>& bias_opt) {
  constexpr const char* op = "sparse::csr_spmm";
  // Device checks first: b.contiguous() below must not run on a foreign device.
  SK_CHECK_SAME_DEVICE(op, values, b);
  TORCH_CHECK(b.is_cuda(), op, ": 'b' must be a CUDA tensor here, got device ", b.device());
  const c10::cuda::CUDAGuard guard(b.device());
  const at::Tensor bb = check_spmm_dense_operand(op, values, b);
  const int64_t k = bb.size(0), n = bb.size(1);
  validate_csr_cuda(op, row_ptr, col_idx, values, m, k);
  const at::Tensor bias = check_spmm_bias(op, values, bias_opt, m);
  at::Tensor out = empty_output({m, n}, bb.options());
  if (m == 0 || n == 0) return out;
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream().stream();
  dispatch_value_type(values.scalar_type(), op, [&](auto vtag) {
    using T = cuda_type_t<decltype(vtag)>;
    dispatch_index_type(row_ptr.scalar_type(), op, [&](auto itag) {
      using I = decltype(itag);
      const cuda::CsrSpmmArgs<T, I> args{row_ptr.data_ptr<I>(),
                                         col_idx.numel() > 0 ? col_idx.data_ptr<I>() : nullptr,
                                         data_as<const T>(values),
                                         data_as<const T>(bb),
                                         data_as<T>(out),
                                         m, k, n,
                                         bb.stride(0), out.stride(0),
                                         bias.defined() ? data_as<const T>(bias) : nullptr};
      const cudaError_t launched = cuda::csr_spmm<T, I>(args, stream);
      C10_CUDA_CHECK(launched);
    });
  });
  return out;
}

TORCH_LIBRARY_IMPL(sparse, CUDA, m) { m.impl("csr_spmm", &csr_spmm_cuda); }

}  // namespace sk
