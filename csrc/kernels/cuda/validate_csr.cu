// CSR validation on CUDA: finds the first violation of each kind in one pass
// over row_ptr and col_idx (see CsrValidation in kernels.h).
//
// One thread per position t in [0, max(m, nnz, 1)), grid-stride: thread t checks
// row_ptr[t] <= row_ptr[t + 1] (t < m) and col_idx[t] (t < nnz); thread 0 also
// checks row_ptr[0] and row_ptr[m]. Violations are merged with atomicMin, so the
// smallest key (kind, then position) wins regardless of scheduling.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/kernels.h"

namespace sk {
namespace cuda {
namespace {

constexpr int kThreadsPerBlock = 256;
constexpr int64_t kMaxBlocks = 4096;

__device__ __forceinline__ unsigned long long row_ptr_key(CsrRowPtrErrorKind kind, int64_t position) {
  return (static_cast<unsigned long long>(kind) << kCsrKindShift) | static_cast<unsigned long long>(position);
}

template <typename I>
__global__ void __launch_bounds__(kThreadsPerBlock)
    csr_validate_kernel(const I* __restrict__ row_ptr, const I* __restrict__ col_idx, const int64_t m,
                        const int64_t k, const int64_t nnz, CsrValidation* __restrict__ result) {
  const int64_t total = m > nnz ? (m > 0 ? m : 1) : (nnz > 0 ? nnz : 1);
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += stride) {
    if (t == 0) {
      if (row_ptr[0] != 0) atomicMin(&result->row_ptr_error, row_ptr_key(kRowPtrFirstNotZero, 0));
      if (static_cast<int64_t>(row_ptr[m]) != nnz)
        atomicMin(&result->row_ptr_error, row_ptr_key(kRowPtrLastNotNnz, m));
    }
    if (t < m && row_ptr[t + 1] < row_ptr[t])
      atomicMin(&result->row_ptr_error, row_ptr_key(kRowPtrDecreasing, t));
    if (t < nnz) {
      const int64_t col = col_idx[t];
      if (col < 0 || col >= k) atomicMin(&result->col_idx_error, static_cast<unsigned long long>(t));
    }
  }
}

}  // namespace

template <typename I>
cudaError_t csr_validate(const I* row_ptr, const I* col_idx, int64_t m, int64_t k, int64_t nnz,
                         CsrValidation* result, cudaStream_t stream) {
  // 0xff bytes make both fields kNoError.
  cudaError_t err = cudaMemsetAsync(result, 0xff, sizeof(CsrValidation), stream);
  if (err != cudaSuccess) return err;
  const int64_t total = m > nnz ? m : nnz;
  const unsigned blocks = grid_blocks(total, kThreadsPerBlock, kMaxBlocks);
  const auto kernel = csr_validate_kernel<I>;
  SK_LAUNCH(kernel, blocks, kThreadsPerBlock, stream)(row_ptr, col_idx, m, k, nnz, result);
  return cudaGetLastError();
}

template cudaError_t csr_validate<int32_t>(const int32_t*, const int32_t*, int64_t, int64_t, int64_t,
                                           CsrValidation*, cudaStream_t);
template cudaError_t csr_validate<int64_t>(const int64_t*, const int64_t*, int64_t, int64_t, int64_t,
                                           CsrValidation*, cudaStream_t);

}  // namespace cuda
}  // namespace sk
