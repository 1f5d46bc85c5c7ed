// Format validation for CUDA tensors: the same checks and error messages as the
// CPU validators (core/validate.h), with the data checks run by a kernel on the
// device (kernels/cuda/kernels.h) and only the result copied to the host.
//
// Cost per call: one kernel reading the index arrays once, a 16-byte
// device-to-host copy and a synchronization of the current stream (the host
// must see the result before it can raise). That sync is a few microseconds
// plus waiting for the work already queued on the stream, and it makes the ops
// impossible to capture in a CUDA graph: validation raises a clear error
// during stream capture instead.
#pragma once

#include <cstdint>

#include <ATen/ATen.h>
#include <cuda_runtime.h>

namespace sk {

// Same contract as sk::validate_csr: row_ptr [m+1] and col_idx [nnz] (same
// int32/int64 dtype, contiguous, 1-D), values [nnz], all on one CUDA device;
// row_ptr[0] == 0, non-decreasing, row_ptr[m] == nnz; 0 <= col < k.
// Runs on the current CUDA stream of the tensors' device (the caller holds a
// device guard for it).
void validate_csr_cuda(const char* op, const at::Tensor& row_ptr, const at::Tensor& col_idx,
                       const at::Tensor& values, int64_t m, int64_t k);

// Same contract and messages as sk::validate_bitmap (core/validate.h), checked
// by kernels/cuda/validate_bitmap.cu: a 32-byte result, one sync. When `b` is
// defined (a k x n CUDA tensor with unit column stride, values' dtype) the same
// pass scans it, and the result says whether b holds a NaN or an infinity.
bool validate_bitmap_cuda(const char* op, const at::Tensor& group_offsets, const at::Tensor& bitmaps,
                          const at::Tensor& values, int64_t m, int64_t k, const at::Tensor& b);

// Raises if `stream` is capturing a CUDA graph: the validators synchronize it.
void check_not_capturing(const char* op, cudaStream_t stream);

}  // namespace sk
