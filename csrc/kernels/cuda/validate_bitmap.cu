// Bitmap validation on CUDA (BitmapValidation in kernels.h): one warp per
// group, grid-stride; lane l checks tiles 2l and 2l + 1. Violations are merged
// with atomicMin, so the smallest position wins regardless of scheduling, as
// the CPU validator reports the first one. A second kernel flags a NaN or
// infinity in b (the SpMM then takes its exact path).
#include "kernels/cuda/bitmap_fragment.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/kernels.h"

namespace sk {
namespace cuda {
namespace {

constexpr int kThreadsPerBlock = 256;
constexpr int kWarpsPerBlock = kThreadsPerBlock / kWarpSize;
constexpr int64_t kMaxBlocks = 4096;

__global__ void __launch_bounds__(kThreadsPerBlock)
    bitmap_validate_kernel(const int64_t* __restrict__ offs, const uint64_t* __restrict__ masks,
                           const int64_t values_len, const int64_t m, const int64_t k, const int64_t gk,
                           const int64_t groups, BitmapValidation* __restrict__ result) {
  if (blockIdx.x == 0 && threadIdx.x == 0) {
    if (offs[0] != 0) atomicMin(&result->header, static_cast<unsigned long long>(kBitmapFirstOffsetNotZero));
    if (offs[groups] != values_len)
      atomicMin(&result->header, static_cast<unsigned long long>(kBitmapLastOffsetNotLength));
  }
  const int lane = threadIdx.x % kWarpSize;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * kWarpsPerBlock;
  for (int64_t g = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarpSize; g < groups;
       g += warps) {  // warp-uniform
    const int t0 = 2 * lane, t1 = 2 * lane + 1;
    const uint64_t m0 = masks[g * bitmap::kTilesPerGroup + t0];
    const uint64_t m1 = masks[g * bitmap::kTilesPerGroup + t1];
    int bits = bitmap::popc64(m0) + bitmap::popc64(m1);
#pragma unroll
    for (int d = kWarpSize / 2; d > 0; d /= 2) bits += __shfl_xor_sync(kFullWarpMask, bits, d);
    const int64_t gi = g / gk, gj = g - gi * gk;
    const int64_t rows = min(int64_t{bitmap::kGroup}, m - gi * bitmap::kGroup);
    const int64_t cols = min(int64_t{bitmap::kGroup}, k - gj * bitmap::kGroup);
    if (rows < bitmap::kGroup || cols < bitmap::kGroup) {
      const unsigned long long base = static_cast<unsigned long long>(g) * bitmap::kTilesPerGroup;
      if (m0 & ~bitmap::tile_inside_mask(t0, rows, cols)) atomicMin(&result->bad_bit, base + t0);
      if (m1 & ~bitmap::tile_inside_mask(t1, rows, cols)) atomicMin(&result->bad_bit, base + t1);
    }
    if (lane == 0) {
      const uint64_t expected = static_cast<uint64_t>((bits + 7) / 8 * 8);
      // Unsigned difference: corrupt offsets near the int64 limits must not overflow.
      if (static_cast<uint64_t>(offs[g + 1]) - static_cast<uint64_t>(offs[g]) != expected)
        atomicMin(&result->bad_count, static_cast<unsigned long long>(g));
    }
  }
}

// NaN or infinity: every exponent bit set (a bit test; no conversion to float).
__device__ __forceinline__ bool non_finite(float x) { return (__float_as_uint(x) & 0x7f800000u) == 0x7f800000u; }
__device__ __forceinline__ bool non_finite(__half x) { return (__half_as_ushort(x) & 0x7c00u) == 0x7c00u; }
__device__ __forceinline__ bool non_finite(__nv_bfloat16 x) {
  return (__bfloat16_as_ushort(x) & 0x7f80u) == 0x7f80u;
}

template <typename T>
__global__ void __launch_bounds__(kThreadsPerBlock)
    non_finite_kernel(const T* __restrict__ b, const int64_t k, const int64_t n, const int64_t ldb,
                      unsigned long long* __restrict__ flag) {
  // Blocks over rows, threads over columns: no 64-bit division in the loop.
  bool bad = false;
  for (int64_t r = blockIdx.x; r < k; r += gridDim.x) {
    const T* row = b + r * ldb;
    for (int64_t c = threadIdx.x; c < n; c += blockDim.x) bad |= non_finite(row[c]);
  }
  if (bad) atomicMax(flag, 1ull);
}

}  // namespace

template <typename T>
cudaError_t bitmap_validate(const int64_t* group_offsets, const uint64_t* bitmaps, int64_t values_len, int64_t m,
                            int64_t k, const T* b, int64_t n, int64_t ldb, BitmapValidation* result,
                            cudaStream_t stream) {
  // 0xff bytes make header, bad_bit and bad_count kNoError; b_non_finite starts at 0.
  cudaError_t err = cudaMemsetAsync(result, 0xff, 3 * sizeof(unsigned long long), stream);
  if (err != cudaSuccess) return err;
  err = cudaMemsetAsync(&result->b_non_finite, 0, sizeof(unsigned long long), stream);
  if (err != cudaSuccess) return err;
  const int64_t gm = (m + bitmap::kGroup - 1) / bitmap::kGroup, gk = (k + bitmap::kGroup - 1) / bitmap::kGroup;
  const int64_t groups = gm * gk;
  const unsigned blocks = grid_blocks(groups, kWarpsPerBlock, kMaxBlocks);
  SK_LAUNCH(bitmap_validate_kernel, blocks, kThreadsPerBlock, stream)(group_offsets, bitmaps, values_len, m, k,
                                                                      gk > 0 ? gk : 1, groups, result);
  err = cudaGetLastError();
  if (err != cudaSuccess || b == nullptr || k == 0 || n == 0) return err;
  const unsigned scan_blocks = grid_blocks(k, 1, kMaxBlocks);
  const auto scan = non_finite_kernel<T>;
  SK_LAUNCH(scan, scan_blocks, kThreadsPerBlock, stream)(b, k, n, ldb, &result->b_non_finite);
  return cudaGetLastError();
}

#define SK_INSTANTIATE_BITMAP_VALIDATE(T)                                                                  \
  template cudaError_t bitmap_validate<T>(const int64_t*, const uint64_t*, int64_t, int64_t, int64_t, const T*, \
                                          int64_t, int64_t, BitmapValidation*, cudaStream_t);
SK_INSTANTIATE_BITMAP_VALIDATE(float)
SK_INSTANTIATE_BITMAP_VALIDATE(__half)
SK_INSTANTIATE_BITMAP_VALIDATE(__nv_bfloat16)
#undef SK_INSTANTIATE_BITMAP_VALIDATE

}  // namespace cuda
}  // namespace sk
