// Torch-free CUDA kernels: argument structs and host entry points.
//
// Plain C++ declarations: a .cpp compiled by the host compiler can include this
// header (it needs only the CUDA toolkit headers). Every pointer below is DEVICE
// memory on the current CUDA device, row-major unless stated. T is float, __half
// or __nv_bfloat16 (accumulation is always fp32); I is int32_t or int64_t.
//
// Every entry point enqueues its work on `stream` and returns without
// synchronizing; the result is the launch status (cudaGetLastError() after the
// launch), cudaSuccess when there was nothing to launch. Kernels trust their
// input: the glue runs the matching *_validate kernel first (see ops/cuda).
#pragma once

#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

namespace sk {
namespace cuda {

// ---------------------------------------------------------------------------
// CSR SpMM: out[m, n] = A[m, k] @ b[k, n] with A in CSR (docs/formats.md).
// Unsorted rows and duplicate columns are fine (duplicates are summed).
// ---------------------------------------------------------------------------
template <typename T, typename I>
struct CsrSpmmArgs {
  const I* row_ptr;  // device, [m + 1], row_ptr[0] == 0, non-decreasing, row_ptr[m] == nnz
  const I* col_idx;  // device, [nnz], each in [0, k)
  const T* values;   // device, [nnz]
  const T* b;        // device, k rows of n contiguous elements, row r at b + r * ldb
                     // (ldb >= 0; ldb == 0 reads one row k times, as torch's expand does)
  T* out;            // device, m rows of n contiguous elements, row i at out + i * ldo (ldo >= n);
                     // every element is written (empty rows get zeros)
  int64_t m, k, n;   // any values >= 0; m == 0 or n == 0 launches nothing
  int64_t ldb, ldo;  // row strides of b and out, in elements
};

// Enqueues the SpMM on `stream`. Instantiated for T in {float, __half,
// __nv_bfloat16} and I in {int32_t, int64_t}.
template <typename T, typename I>
cudaError_t csr_spmm(const CsrSpmmArgs<T, I>& args, cudaStream_t stream);

// ---------------------------------------------------------------------------
// CSR validation on the device. Checks, over the whole matrix:
//   row_ptr[0] == 0, row_ptr[m] == nnz, row_ptr[i] <= row_ptr[i + 1],
//   0 <= col_idx[p] < k,
// and records the first violation of each kind in a 16-byte device buffer.
// ---------------------------------------------------------------------------
struct CsrValidation {
  // kNoError, or (kind << kCsrKindShift) | position for the row_ptr violation
  // with the smallest kind, then the smallest position (kinds below). The kinds
  // are ordered as the CPU validator checks them, so both report the same error.
  unsigned long long row_ptr_error;
  // kNoError, or the smallest p with col_idx[p] outside [0, k).
  unsigned long long col_idx_error;
};
static_assert(sizeof(CsrValidation) == 16, "CsrValidation is copied to the host as 16 bytes");

constexpr unsigned long long kNoError = ~0ull;
constexpr int kCsrKindShift = 56;  // positions are < 2^56
enum CsrRowPtrErrorKind : unsigned long long {
  kRowPtrFirstNotZero = 0,  // position 0: row_ptr[0] != 0
  kRowPtrLastNotNnz = 1,    // position m: row_ptr[m] != nnz
  kRowPtrDecreasing = 2,    // position i: row_ptr[i] > row_ptr[i + 1]
};

// Enqueues on `stream`: a memset of *result to kNoError, then the check.
//   row_ptr  device, [m + 1] (m >= 0, so at least one entry)
//   col_idx  device, [nnz]
//   result   device, one CsrValidation (16 bytes)
// The caller copies *result to the host after the stream reaches this point.
// Instantiated for I in {int32_t, int64_t}.
template <typename I>
cudaError_t csr_validate(const I* row_ptr, const I* col_idx, int64_t m, int64_t k, int64_t nnz,
                         CsrValidation* result, cudaStream_t stream);

}  // namespace cuda
}  // namespace sk
