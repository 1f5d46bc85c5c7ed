// Device helpers shared by the CUDA kernels (included by .cu files only).
#pragma once

#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

// Kernel launch: SK_LAUNCH(kernel, grid, block, stream)(args...). Under nvcc a
// plain <<<>>> launch; tests/cuda_emulation/cuda_host_shim.h (which defines
// SK_CUDA_HOST_EMULATION) runs the same kernel source on host threads instead.
#if !defined(SK_CUDA_HOST_EMULATION)
#define SK_LAUNCH(kernel, grid, block, stream) kernel<<<(grid), (block), 0, (stream)>>>
#endif

namespace sk {
namespace cuda {

constexpr int kWarpSize = 32;
constexpr unsigned kFullWarpMask = 0xffffffffu;

// Loads / stores of the value types, converted to and from fp32.
__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename T>
__device__ __forceinline__ T from_float(float x);
template <>
__device__ __forceinline__ float from_float<float>(float x) {
  return x;
}
template <>
__device__ __forceinline__ __half from_float<__half>(float x) {
  return __float2half_rn(x);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}

// Broadcast of an index from lane `src` to the whole warp (all 32 lanes must call).
__device__ __forceinline__ int32_t shfl_index(int32_t v, int src) {
  return __shfl_sync(kFullWarpMask, v, src);
}
__device__ __forceinline__ int64_t shfl_index(int64_t v, int src) {
  return static_cast<int64_t>(__shfl_sync(kFullWarpMask, static_cast<long long>(v), src));
}

// Blocks for a grid-stride loop over `work` items handled `per_block` at a time,
// at least 1 and at most `max_blocks` (the loop covers the rest).
inline unsigned grid_blocks(int64_t work, int64_t per_block, int64_t max_blocks) {
  int64_t blocks = (work + per_block - 1) / per_block;
  if (blocks < 1) blocks = 1;
  if (blocks > max_blocks) blocks = max_blocks;
  return static_cast<unsigned>(blocks);
}

}  // namespace cuda
}  // namespace sk
