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
  const T* bias = nullptr;  // device, [m] added to each output row before the one rounding, or none
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

// ---------------------------------------------------------------------------
// Bitmap SpMM: out[m, n] = A[m, k] @ b[k, n] with A in the bitmap layout
// (docs/formats.md), fp32 accumulation.
//
// Two kernels, picked by bitmap_spmm_plan: float16 / bfloat16 expand each
// 16 x 16 A fragment from its four tile masks in registers and multiply on the
// tensor cores (mma.sync m16n8k16); float32, and 16-bit calls whose b holds a
// NaN or infinity (`exact`), take a CUDA-core kernel that decodes the same way
// and multiplies only stored values (a zero of A never meets b's NaN / inf, as
// on the CPU). When the grid over (group rows x column chunks) is too small for
// the GPU, K is split over blocks whose fp32 partial sums are added into a
// workspace and rounded to T once at the end.
// ---------------------------------------------------------------------------
template <typename T>
struct BitmapSpmmArgs {
  const int64_t* group_offsets;  // device, [G + 1] (G = ceil(m / 64) * ceil(k / 64))
  const uint64_t* bitmaps;       // device, [G * 64]
  const T* values;               // device, [group_offsets[G]]
  const T* b;                    // device, k rows of n contiguous elements, row r at b + r * ldb (ldb >= 0)
  T* out;                        // device, m rows of n contiguous elements, row i at out + i * ldo (ldo >= n);
                                 // every element is written
  float* workspace;              // device, bitmap_spmm_plan(...).workspace_elems floats (nullptr when 0)
  int64_t m, k, n;               // any values >= 0
  int64_t ldb, ldo;
  const T* bias = nullptr;  // device, [m] added to each output row before the one rounding, or none
};

struct BitmapSpmmPlan {
  bool tensor_cores;       // mma kernel (else the CUDA-core kernel)
  int cols_per_block;      // columns of out per block: 8, 16, 32 or 64
  int64_t col_chunks;      // ceil(n / cols_per_block)
  int64_t splits;          // blocks along K (1: no workspace)
  int64_t groups_per_split;
  int64_t workspace_elems; // m * n when splits > 1, else 0
};

// The launch the entry point below makes for these sizes. `exact` (16-bit
// only): b holds a NaN or infinity. `sm_count`: multiprocessors of the device.
// is_fp32: T is float.
BitmapSpmmPlan bitmap_spmm_plan(int64_t m, int64_t k, int64_t n, bool is_fp32, bool exact, int sm_count);

// Enqueues the SpMM on `stream` (a memset of the workspace, the kernel, and a
// kernel that rounds the workspace into out when K is split). The plan must
// be bitmap_spmm_plan's for the same arguments. Instantiated for T in
// {float, __half, __nv_bfloat16}.
template <typename T>
cudaError_t bitmap_spmm(const BitmapSpmmArgs<T>& args, const BitmapSpmmPlan& plan, cudaStream_t stream);

// ---------------------------------------------------------------------------
// Bitmap validation on the device, the checks of core/validate_bitmap.cpp:
//   header: group_offsets[0] == 0 (kind 0), group_offsets[G] == values_len (kind 1);
//   bad_bit: the smallest g * 64 + t whose tile mask has a bit outside m x k;
//   bad_count: the smallest group g with group_offsets[g + 1] - group_offsets[g]
//              != popcount(its 64 masks) rounded up to a multiple of 8;
//   b_non_finite: 1 when b (if given) holds a NaN or infinity, else 0.
// Each field is kNoError when there is nothing to report (b_non_finite: 0).
// ---------------------------------------------------------------------------
struct BitmapValidation {
  unsigned long long header;  // kNoError or the smallest failing kind
  unsigned long long bad_bit;
  unsigned long long bad_count;
  unsigned long long b_non_finite;
};
static_assert(sizeof(BitmapValidation) == 32, "BitmapValidation is copied to the host as 32 bytes");

enum BitmapHeaderErrorKind : unsigned long long {
  kBitmapFirstOffsetNotZero = 0,
  kBitmapLastOffsetNotLength = 1,
};

// Enqueues on `stream`: a memset of *result, the format check and, when b is
// not null, the scan of b (k x n, row stride ldb). The caller copies *result
// to the host after the stream reaches this point. Instantiated for T in
// {float, __half, __nv_bfloat16}.
template <typename T>
cudaError_t bitmap_validate(const int64_t* group_offsets, const uint64_t* bitmaps, int64_t values_len, int64_t m,
                            int64_t k, const T* b, int64_t n, int64_t ldb, BitmapValidation* result,
                            cudaStream_t stream);

}  // namespace cuda
}  // namespace sk
