// CSR validation for CUDA tensors: shape checks on the host, data checks by
// kernels/cuda/validate_csr.cu, messages identical to core/validate_csr.cpp.
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAFunctions.h>

#include "core/checks.h"
#include "core/dispatch.h"
#include "core/validate.h"
#include "kernels/cuda/kernels.h"
#include "ops/cuda/validate.h"

namespace sk {

void check_not_capturing(const char* op, cudaStream_t stream) {
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  C10_CUDA_CHECK(cudaStreamIsCapturing(stream, &capture));
  TORCH_CHECK(capture == cudaStreamCaptureStatusNone, op,
              ": cannot run during CUDA graph capture: validating the sparse format synchronizes the stream");
}

void validate_csr_cuda(const char* op, const at::Tensor& row_ptr, const at::Tensor& col_idx,
                       const at::Tensor& values, int64_t m, int64_t k) {
  check_csr_arrays(op, row_ptr, col_idx, values, m, k);
  TORCH_CHECK(row_ptr.is_cuda(), op, ": 'row_ptr' must be a CUDA tensor here, got device ", row_ptr.device());
  const int64_t nnz = col_idx.numel();

  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(row_ptr.device().index()).stream();
  check_not_capturing(op, stream);

  // 16 bytes from the caching allocator, filled by the kernel, read back once.
  const at::Tensor result = at::empty({2}, row_ptr.options().dtype(at::kLong));
  auto* result_ptr = reinterpret_cast<cuda::CsrValidation*>(result.data_ptr<int64_t>());
  cuda::CsrValidation host{};
  dispatch_index_type(row_ptr.scalar_type(), op, [&](auto tag) {
    using I = decltype(tag);
    C10_CUDA_CHECK(cuda::csr_validate<I>(row_ptr.data_ptr<I>(), nnz > 0 ? col_idx.data_ptr<I>() : nullptr, m, k,
                                         nnz, result_ptr, stream));
  });
  // The one synchronization of a valid call (honours torch.cuda.set_sync_debug_mode).
  c10::cuda::memcpy_and_sync(&host, result_ptr, sizeof(host), cudaMemcpyDeviceToHost, stream);

  // Errors are reported in the CPU validator's order, with its wording. Reading
  // the offending values costs extra syncs, on the error path only.
  if (host.row_ptr_error != cuda::kNoError) {
    const auto kind = host.row_ptr_error >> cuda::kCsrKindShift;
    const auto pos = static_cast<int64_t>(host.row_ptr_error & ((1ull << cuda::kCsrKindShift) - 1));
    const auto rp_at = [&](int64_t i) { return row_ptr[i].item<int64_t>(); };
    TORCH_CHECK_VALUE(kind != cuda::kRowPtrFirstNotZero, op, ": 'row_ptr[0]' must be 0, got ", rp_at(0));
    TORCH_CHECK_VALUE(kind != cuda::kRowPtrLastNotNnz, op, ": 'row_ptr[m]' must equal nnz = ", nnz,
                      " (the length of col_idx), got ", rp_at(m));
    TORCH_CHECK_VALUE(kind != cuda::kRowPtrDecreasing, op, ": 'row_ptr' must be non-decreasing, but row_ptr[",
                      pos, "] = ", rp_at(pos), " > row_ptr[", pos + 1, "] = ", rp_at(pos + 1));
    TORCH_CHECK(false, op, ": internal error: unknown CSR validation result ", host.row_ptr_error);
  }
  if (host.col_idx_error != cuda::kNoError) {
    const auto bc = static_cast<int64_t>(host.col_idx_error);
    TORCH_CHECK_VALUE(false, op, ": 'col_idx[", bc, "]' = ", col_idx[bc].item<int64_t>(), " is out of range for ", k,
                      " columns");
  }
}

}  // namespace sk
