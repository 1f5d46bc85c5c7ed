// CSR SpMM on CUDA: out[m, n] = A[m, k] @ b[k, n], fp32 accumulation.
//
// A simple, correct baseline (no shared memory, no tensor cores):
//  * n == 1: one warp per row; the lanes stride over the row's entries and the
//    warp sums its 32 partial dot products with shuffles.
//  * n >= 2: one warp per (row, tile of 32 * kCols columns); lane l owns columns
//    l, l + 32, ... of the tile. The warp reads 32 (col, value) pairs at a time,
//    one per lane, and broadcasts them with shuffles, so each b row segment is
//    one coalesced load per 32 columns.
// Both kernels run a grid-stride loop over their work items, so any m (also
// m > 65535) is covered by a bounded grid. Every output element is written once.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/kernels.h"

namespace sk {
namespace cuda {
namespace {

constexpr int kWarpsPerBlock = 8;
constexpr int kThreadsPerBlock = kWarpsPerBlock * kWarpSize;
// 4096 blocks of 8 warps is several waves on any current GPU (an H100 holds
// 132 SMs x 64 warps); larger problems loop.
constexpr int64_t kMaxBlocks = 4096;
// Tells ptxas it may use up to 64 registers per thread (4 blocks = 32 warps per
// SM); without a minimum, ptxas for sm_80 aimed at 32 and spilled.
constexpr int kMinBlocksPerSm = 4;

// Global warp index and warp count of a 1-D grid.
__device__ __forceinline__ int64_t global_warp() {
  return (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarpSize;
}
__device__ __forceinline__ int64_t warp_count() {
  return static_cast<int64_t>(gridDim.x) * blockDim.x / kWarpSize;
}

template <typename T, typename I>
__global__ void __launch_bounds__(kThreadsPerBlock, kMinBlocksPerSm)
    csr_spmm_vector_kernel(const CsrSpmmArgs<T, I> a) {
  const int lane = threadIdx.x % kWarpSize;
  for (int64_t row = global_warp(); row < a.m; row += warp_count()) {  // warp-uniform
    const int64_t start = a.row_ptr[row];
    const int64_t end = a.row_ptr[row + 1];
    float sum = 0.f;
    for (int64_t p = start + lane; p < end; p += kWarpSize) {
      const int64_t col = a.col_idx[p];
      sum = fmaf(to_float(a.values[p]), to_float(a.b[col * a.ldb]), sum);
    }
#pragma unroll
    for (int offset = kWarpSize / 2; offset > 0; offset /= 2)
      sum += __shfl_xor_sync(kFullWarpMask, sum, offset);
    if (lane == 0) a.out[row * a.ldo] = from_float<T>(a.bias != nullptr ? sum + to_float(a.bias[row]) : sum);
  }
}

template <typename T, typename I, int kCols>
__global__ void __launch_bounds__(kThreadsPerBlock, kMinBlocksPerSm)
    csr_spmm_tile_kernel(const CsrSpmmArgs<T, I> a, const int64_t col_tiles) {
  constexpr int64_t kTile = int64_t{kWarpSize} * kCols;
  const int lane = threadIdx.x % kWarpSize;
  const int64_t items = a.m * col_tiles;
  for (int64_t item = global_warp(); item < items; item += warp_count()) {  // warp-uniform
    const int64_t row = item / col_tiles;
    const int64_t col0 = (item - row * col_tiles) * kTile + lane;  // this lane's first column
    const int64_t start = a.row_ptr[row];
    const int64_t end = a.row_ptr[row + 1];
    float acc[kCols];
#pragma unroll
    for (int c = 0; c < kCols; ++c) acc[c] = 0.f;
    for (int64_t base = start; base < end; base += kWarpSize) {  // warp-uniform
      const int64_t p = base + lane;
      I my_col = 0;
      float my_val = 0.f;
      if (p < end) {
        my_col = a.col_idx[p];
        my_val = to_float(a.values[p]);
      }
      const int count = end - base < kWarpSize ? static_cast<int>(end - base) : kWarpSize;
      for (int s = 0; s < count; ++s) {  // warp-uniform: every lane takes part in the shuffles
        const int64_t col = shfl_index(my_col, s);
        const float v = __shfl_sync(kFullWarpMask, my_val, s);
        const T* b_row = a.b + col * a.ldb;
#pragma unroll
        for (int c = 0; c < kCols; ++c) {
          const int64_t j = col0 + c * kWarpSize;
          if (j < a.n) acc[c] = fmaf(v, to_float(b_row[j]), acc[c]);
        }
      }
    }
    T* out_row = a.out + row * a.ldo;
    const float bias = a.bias != nullptr ? to_float(a.bias[row]) : 0.f;
#pragma unroll
    for (int c = 0; c < kCols; ++c) {
      const int64_t j = col0 + c * kWarpSize;
      if (j < a.n) out_row[j] = from_float<T>(a.bias != nullptr ? acc[c] + bias : acc[c]);
    }
  }
}

template <typename T, typename I, int kCols>
void launch_tile_kernel(const CsrSpmmArgs<T, I>& a, cudaStream_t stream) {
  const int64_t tile = int64_t{kWarpSize} * kCols;
  const int64_t col_tiles = (a.n + tile - 1) / tile;
  const unsigned blocks = grid_blocks(a.m * col_tiles, kWarpsPerBlock, kMaxBlocks);
  const auto kernel = csr_spmm_tile_kernel<T, I, kCols>;
  SK_LAUNCH(kernel, blocks, kThreadsPerBlock, stream)(a, col_tiles);
}

}  // namespace

template <typename T, typename I>
cudaError_t csr_spmm(const CsrSpmmArgs<T, I>& a, cudaStream_t stream) {
  if (a.m <= 0 || a.n <= 0) return cudaSuccess;
  if (a.n == 1) {
    const unsigned blocks = grid_blocks(a.m, kWarpsPerBlock, kMaxBlocks);
    const auto kernel = csr_spmm_vector_kernel<T, I>;
    SK_LAUNCH(kernel, blocks, kThreadsPerBlock, stream)(a);
  } else if (a.n <= kWarpSize) {
    launch_tile_kernel<T, I, 1>(a, stream);
  } else if (a.n <= 2 * kWarpSize) {
    launch_tile_kernel<T, I, 2>(a, stream);
  } else {
    launch_tile_kernel<T, I, 4>(a, stream);
  }
  return cudaGetLastError();
}

#define SK_INSTANTIATE_CSR_SPMM(T, I) \
  template cudaError_t csr_spmm<T, I>(const CsrSpmmArgs<T, I>&, cudaStream_t);
SK_INSTANTIATE_CSR_SPMM(float, int32_t)
SK_INSTANTIATE_CSR_SPMM(float, int64_t)
SK_INSTANTIATE_CSR_SPMM(__half, int32_t)
SK_INSTANTIATE_CSR_SPMM(__half, int64_t)
SK_INSTANTIATE_CSR_SPMM(__nv_bfloat16, int32_t)
SK_INSTANTIATE_CSR_SPMM(__nv_bfloat16, int64_t)
#undef SK_INSTANTIATE_CSR_SPMM

}  // namespace cuda
}  // namespace sk
