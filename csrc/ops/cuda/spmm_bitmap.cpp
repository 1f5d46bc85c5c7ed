// CUDA glue for sparse::bitmap_spmm: checks -> device validation (which also
// tells whether b holds a NaN / inf) -> plan -> kernel, on the current stream
// of the operands' device.
#include <type_traits>

#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "core/checks.h"
#include "core/dispatch.h"
#include "core/output.h"
#include "kernels/cuda/kernels.h"
#include "ops/cpu/spmm_common.h"
#include "ops/cuda/cuda_types.h"
#include "ops/cuda/validate.h"

namespace sk {

at::Tensor bitmap_spmm_cuda(const at::Tensor& group_offsets, const at::Tensor& bitmaps, const at::Tensor& values,
                            const at::Tensor& b, int64_t m, const std::optional<at::Tensor>& bias_opt) {
  constexpr const char* op = "sparse::bitmap_spmm";
  SK_CHECK_SAME_DEVICE(op, values, b);
  TORCH_CHECK(b.is_cuda(), op, ": 'b' must be a CUDA tensor here, got device ", b.device());
  const c10::cuda::CUDAGuard guard(b.device());
  const at::Tensor bb = check_spmm_dense_operand(op, values, b);
  const int64_t k = bb.size(0), n = bb.size(1);
  // float32 always takes the exact CUDA-core kernel: no need to scan b.
  const bool is_fp32 = values.scalar_type() == at::kFloat;
  const bool b_non_finite =
      validate_bitmap_cuda(op, group_offsets, bitmaps, values, m, k, is_fp32 ? at::Tensor() : bb);
  const at::Tensor bias = check_spmm_bias(op, values, bias_opt, m);
  at::Tensor out = empty_output({m, n}, bb.options());
  if (m == 0 || n == 0) return out;

  int sm_count = 0;
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&sm_count, cudaDevAttrMultiProcessorCount, b.device().index()));
  const cuda::BitmapSpmmPlan plan = cuda::bitmap_spmm_plan(m, k, n, is_fp32, b_non_finite, sm_count);
  const at::Tensor workspace =
      plan.workspace_elems > 0 ? at::empty({plan.workspace_elems}, bb.options().dtype(at::kFloat)) : at::Tensor();
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream().stream();
  dispatch_value_type(values.scalar_type(), op, [&](auto vtag) {
    using T = cuda_type_t<decltype(vtag)>;
    const cuda::BitmapSpmmArgs<T> args{group_offsets.data_ptr<int64_t>(),
                                       reinterpret_cast<const uint64_t*>(bitmaps.data_ptr<int64_t>()),
                                       data_as<const T>(values),
                                       data_as<const T>(bb),
                                       data_as<T>(out),
                                       workspace.defined() ? workspace.data_ptr<float>() : nullptr,
                                       m, k, n,
                                       bb.stride(0), out.stride(0),
                                       bias.defined() ? data_as<const T>(bias) : nullptr};
    C10_CUDA_CHECK(cuda::bitmap_spmm<T>(args, plan, stream));
  });
  return out;
}

TORCH_LIBRARY_IMPL(sparse, CUDA, m) { m.impl("bitmap_spmm", &bitmap_spmm_cuda); }

}  // namespace sk
