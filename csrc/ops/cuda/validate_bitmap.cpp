// Bitmap validation for CUDA tensors: array checks on the host, data checks by
// kernels/cuda/validate_bitmap.cu, messages identical to core/validate_bitmap.cpp
// (the same raise_bitmap_* functions build them).
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAStream.h>

#include "core/checks.h"
#include "core/dispatch.h"
#include "core/validate.h"
#include "kernels/cuda/kernels.h"
#include "ops/cuda/cuda_types.h"
#include "ops/cuda/validate.h"

namespace sk {

bool validate_bitmap_cuda(const char* op, const at::Tensor& group_offsets, const at::Tensor& bitmaps,
                          const at::Tensor& values, int64_t m, int64_t k, const at::Tensor& b) {
  check_bitmap_arrays(op, group_offsets, bitmaps, values, m, k);
  TORCH_CHECK(group_offsets.is_cuda(), op, ": 'group_offsets' must be a CUDA tensor here, got device ",
              group_offsets.device());
  const int64_t groups = group_offsets.numel() - 1;
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(group_offsets.device().index()).stream();
  check_not_capturing(op, stream);

  const at::Tensor result = at::empty({4}, group_offsets.options());
  auto* result_ptr = reinterpret_cast<cuda::BitmapValidation*>(result.data_ptr<int64_t>());
  const bool scan_b = b.defined() && b.numel() > 0;
  dispatch_value_type(values.scalar_type(), op, [&](auto vtag) {
    using T = cuda_type_t<decltype(vtag)>;
    C10_CUDA_CHECK(cuda::bitmap_validate<T>(
        group_offsets.data_ptr<int64_t>(), reinterpret_cast<const uint64_t*>(bitmaps.data_ptr<int64_t>()),
        values.numel(), m, k, scan_b ? reinterpret_cast<const T*>(b.data_ptr()) : nullptr,
        scan_b ? b.size(1) : 0, scan_b ? b.stride(0) : 0, result_ptr, stream));
  });
  cuda::BitmapValidation host{};
  c10::cuda::memcpy_and_sync(&host, result_ptr, sizeof(host), cudaMemcpyDeviceToHost, stream);

  // The CPU validator's order and wording; reading the offending entries costs
  // extra syncs, on the error path only.
  if (host.header != cuda::kNoError) {
    if (host.header == cuda::kBitmapFirstOffsetNotZero)
      raise_bitmap_first_offset(op, group_offsets[0].item<int64_t>());
    if (host.header == cuda::kBitmapLastOffsetNotLength)
      raise_bitmap_last_offset(op, groups, values.numel(), group_offsets[groups].item<int64_t>());
    TORCH_CHECK(false, op, ": internal error: unknown bitmap validation result ", host.header);
  }
  if (host.bad_bit != cuda::kNoError) {
    const auto index = static_cast<int64_t>(host.bad_bit);
    raise_bitmap_bad_bit(op, index, static_cast<uint64_t>(bitmaps[index].item<int64_t>()), m, k);
  }
  if (host.bad_count != cuda::kNoError) {
    const auto g = static_cast<int64_t>(host.bad_count);
    const at::Tensor masks = bitmaps.slice(0, g * 64, g * 64 + 64).cpu();
    const int64_t* host_masks = masks.data_ptr<int64_t>();
    int64_t bits = 0;
    for (int t = 0; t < 64; ++t) bits += __builtin_popcountll(static_cast<uint64_t>(host_masks[t]));
    raise_bitmap_bad_count(op, g, group_offsets[g].item<int64_t>(), group_offsets[g + 1].item<int64_t>(), bits);
  }
  return host.b_non_finite != 0;
}

}  // namespace sk
