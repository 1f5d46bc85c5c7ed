// Bitmap SpMM on CUDA: out[m, n] = A[m, k] @ b[k, n], A in the bitmap layout
// (docs/formats.md), fp32 accumulation. Lane index arithmetic: bitmap_fragment.h.
//
// Work decomposition (both kernels): a block of 4 warps owns one 64-row group
// row of A, one chunk of `NC` output columns and a range of the group row's
// groups along K (`per_split`; more than one range only when the grid would
// otherwise be too small for the GPU). Warp w owns fragment row w (16 rows).
// Per group the block stages, in shared memory, the group's 64 tile masks with
// prefix sums of their popcounts (so every tile's value start is two shared
// loads away) and the group's 64 rows of b's column chunk (zero past k and n).
// Two stages alternate, so one __syncthreads per group suffices: a stage is
// rewritten two groups later, after every warp has passed the barrier of the
// group in between, and so finished reading it.
//
// Tensor-core kernel (float16 / bfloat16): per 16 x 16 fragment each lane finds
// its 8 A elements (two adjacent bits of each of the fragment's 4 tiles) with
// one popcount per tile, loads the stored ones from `values` (zeros for the
// rest) into the four A registers of mma.m16n8k16 and multiplies them with
// every n8 tile of the staged b. No element is decoded twice and no dense A
// tile is written anywhere.
//
// CUDA-core kernel (float32, and 16-bit when b holds a NaN / inf): the same
// decode; each lane multiplies its stored elements with b from shared memory
// into per-lane partial sums for rows (lane >> 2) and (lane >> 2) + 8, added
// over the 4 lanes of a row at the end. Only stored values multiply b.
//
// Split K: partial sums go to an fp32 workspace by atomicAdd (zeroed first),
// then one kernel rounds it into out, so 16-bit outputs are rounded once. The
// optional bias (a.bias) is added to the fp32 sums just before that rounding.
#include <type_traits>

#include "kernels/cuda/bitmap_fragment.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/kernels.h"

namespace sk {
namespace cuda {
namespace {

using bitmap::kGroup;
using bitmap::kTilesPerGroup;

constexpr int kWarps = bitmap::kFragmentRows;  // one warp per 16-row fragment row of a group
constexpr int kThreads = kWarps * kWarpSize;
constexpr int kStages = 2;
constexpr int64_t kMaxGridY = 65535;
constexpr int64_t kMaxFinishBlocks = 4096;

template <typename T, int NC>
struct Stage {
  static constexpr int kPad = 16 / static_cast<int>(sizeof(T));  // 16 bytes: spreads b rows over the banks
  unsigned long long mask[kTilesPerGroup];
  int32_t incl[kTilesPerGroup];  // inclusive popcount prefix within each half (tiles 0-31, 32-63)
  T b[kGroup][NC + kPad];
};

__device__ __forceinline__ uint32_t bits16(__half x) { return __half_as_ushort(x); }
__device__ __forceinline__ uint32_t bits16(__nv_bfloat16 x) { return __bfloat16_as_ushort(x); }
template <typename T>
__device__ __forceinline__ uint32_t pack2(T lo, T hi) {
  return bits16(lo) | (bits16(hi) << 16);
}

#if defined(SK_CUDA_HOST_EMULATION)
// The host emulation's mma (tests/cuda_emulation/cuda_host_shim.h), exchanging the warp's registers.
template <typename T>
__device__ __forceinline__ void mma16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1, T) {
  sk_emu::mma_m16n8k16<T>(d, a, b0, b1);
}
#else
__device__ __forceinline__ void mma16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1, __half) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
__device__ __forceinline__ void mma16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1,
                                         __nv_bfloat16) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
#endif

// Stages group g (column group gj of its group row) and b's rows gj*64 ..
// gj*64+63, columns n0 .. n0+NC-1. All kThreads threads call it.
template <typename T, int NC>
__device__ __forceinline__ void stage_group(Stage<T, NC>& st, const BitmapSpmmArgs<T>& a, int64_t g, int64_t gj,
                                            int64_t n0) {
  const int tid = threadIdx.x;
  if (tid < kTilesPerGroup) {  // warps 0 and 1, whole
    const unsigned long long mask =
        __ldg(reinterpret_cast<const unsigned long long*>(a.bitmaps) + g * kTilesPerGroup + tid);
    int incl = bitmap::popc64(mask);
#pragma unroll
    for (int d = 1; d < kWarpSize; d <<= 1) {
      const int v = __shfl_up_sync(kFullWarpMask, incl, d);
      if ((tid % kWarpSize) >= d) incl += v;
    }
    st.mask[tid] = mask;
    st.incl[tid] = incl;
  }
  const int64_t k0 = gj * kGroup;
  for (int e = tid; e < kGroup * NC; e += kThreads) {
    const int r = e / NC, c = e % NC;
    const int64_t kk = k0 + r, nn = n0 + c;
    st.b[r][c] = (kk < a.k && nn < a.n) ? a.b[kk * a.ldb + nn] : from_float<T>(0.f);
  }
}

// Value start (index into values) of tile t of a staged group whose values begin at `base`.
template <typename T, int NC>
__device__ __forceinline__ int64_t tile_start(const Stage<T, NC>& st, int64_t base, int t) {
  return bitmap::tile_value_start(base, t, st.incl[t], st.incl[kWarpSize - 1], st.mask[t]);
}

template <typename T, int NT>
__global__ void __launch_bounds__(kThreads)
    bitmap_spmm_mma_kernel(const BitmapSpmmArgs<T> a, const int64_t gk, const int64_t col_chunks,
                           const int64_t per_split) {
  constexpr int NC = NT * 8;
  __shared__ Stage<T, NC> stages[kStages];
  const int warp = threadIdx.x / kWarpSize, lane = threadIdx.x % kWarpSize;
  const int64_t gi = blockIdx.x;
  const int64_t g_begin = static_cast<int64_t>(blockIdx.z) * per_split;
  const int64_t g_end = min(gk, g_begin + per_split);
  const bool split = gridDim.z > 1;
  const T zero = from_float<T>(0.f);

  for (int64_t chunk = blockIdx.y; chunk < col_chunks; chunk += gridDim.y) {
    const int64_t n0 = chunk * NC;
    float acc[NT][4];
#pragma unroll
    for (int j = 0; j < NT; ++j) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.f;

    int s = 0;
    for (int64_t gj = g_begin; gj < g_end; ++gj, s ^= 1) {
      const int64_t g = gi * gk + gj;
      Stage<T, NC>& st = stages[s];
      stage_group(st, a, g, gj, n0);
      __syncthreads();
      const int64_t base = __ldg(reinterpret_cast<const long long*>(a.group_offsets) + g);
#pragma unroll
      for (int fc = 0; fc < 4; ++fc) {
        uint32_t areg[4];
#pragma unroll
        for (int q = 0; q < 4; ++q) {
          const int t = bitmap::tile_index(warp, fc, q);
          const bitmap::PairRef p = bitmap::tile_pair(st.mask[t], tile_start(st, base, t), lane);
          T v0 = zero, v1 = zero;
          if (p.set0) v0 = a.values[p.idx];
          if (p.set1) v1 = a.values[p.idx + (p.set0 ? 1 : 0)];
          areg[q] = pack2(v0, v1);
        }
        const int kb = fc * 16;
#pragma unroll
        for (int j = 0; j < NT; ++j) {
          const int nl = j * 8 + bitmap::b_n(lane);
          const uint32_t b0 = pack2(st.b[kb + bitmap::b_k(lane, 0)][nl], st.b[kb + bitmap::b_k(lane, 1)][nl]);
          const uint32_t b1 = pack2(st.b[kb + bitmap::b_k(lane, 2)][nl], st.b[kb + bitmap::b_k(lane, 3)][nl]);
          mma16816(acc[j], areg, b0, b1, T{});
        }
      }
    }

    const int64_t row0 = gi * kGroup + warp * 16;
#pragma unroll
    for (int j = 0; j < NT; ++j) {
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int64_t row = row0 + bitmap::c_row(lane, i);
        const int64_t col = n0 + j * 8 + bitmap::c_col(lane, i);
        if (row < a.m && col < a.n) {
          if (split)
            atomicAdd(a.workspace + row * a.n + col, acc[j][i]);
          else
            a.out[row * a.ldo + col] =
                from_float<T>(a.bias != nullptr ? acc[j][i] + to_float(a.bias[row]) : acc[j][i]);
        }
      }
    }
    __syncthreads();  // the next chunk restages stage 0, which a slow warp may still be reading
  }
}

template <typename T, int NC>
__global__ void __launch_bounds__(kThreads)
    bitmap_spmm_simt_kernel(const BitmapSpmmArgs<T> a, const int64_t gk, const int64_t col_chunks,
                            const int64_t per_split) {
  __shared__ Stage<T, NC> stages[kStages];
  const int warp = threadIdx.x / kWarpSize, lane = threadIdx.x % kWarpSize;
  const int64_t gi = blockIdx.x;
  const int64_t g_begin = static_cast<int64_t>(blockIdx.z) * per_split;
  const int64_t g_end = min(gk, g_begin + per_split);
  const bool split = gridDim.z > 1;

  for (int64_t chunk = blockIdx.y; chunk < col_chunks; chunk += gridDim.y) {
    const int64_t n0 = chunk * NC;
    float acc[2][NC];  // rows (lane >> 2) and (lane >> 2) + 8 of the fragment row, partial over this lane's k
#pragma unroll
    for (int c = 0; c < NC; ++c) acc[0][c] = acc[1][c] = 0.f;

    int s = 0;
    for (int64_t gj = g_begin; gj < g_end; ++gj, s ^= 1) {
      const int64_t g = gi * gk + gj;
      Stage<T, NC>& st = stages[s];
      stage_group(st, a, g, gj, n0);
      __syncthreads();
      const int64_t base = __ldg(reinterpret_cast<const long long*>(a.group_offsets) + g);
#pragma unroll
      for (int fc = 0; fc < 4; ++fc) {
        float v[8];
        bool set[8];
#pragma unroll
        for (int q = 0; q < 4; ++q) {
          const int t = bitmap::tile_index(warp, fc, q);
          const bitmap::PairRef p = bitmap::tile_pair(st.mask[t], tile_start(st, base, t), lane);
          set[2 * q] = p.set0;
          set[2 * q + 1] = p.set1;
          v[2 * q] = p.set0 ? to_float(a.values[p.idx]) : 0.f;
          v[2 * q + 1] = p.set1 ? to_float(a.values[p.idx + (p.set0 ? 1 : 0)]) : 0.f;
        }
        const int kb = fc * 16;
#pragma unroll
        for (int e = 0; e < 8; ++e) {
          if (!set[e]) continue;  // only stored values meet b (a NaN / inf in b stays in its rows)
          const T* brow = st.b[kb + bitmap::pair_col(lane, e)];
          const int r = (e >> 1) & 1;  // == (pair_row(lane, e) >= 8)
#pragma unroll
          for (int c = 0; c < NC; ++c) acc[r][c] = fmaf(v[e], to_float(brow[c]), acc[r][c]);
        }
      }
    }

    // Sum the 4 lanes of each row; lane (lane & 3) == c % 4 writes column c.
#pragma unroll
    for (int r = 0; r < 2; ++r) {
#pragma unroll
      for (int c = 0; c < NC; ++c) {
        acc[r][c] += __shfl_xor_sync(kFullWarpMask, acc[r][c], 1);
        acc[r][c] += __shfl_xor_sync(kFullWarpMask, acc[r][c], 2);
      }
    }
    const int64_t row0 = gi * kGroup + warp * 16 + (lane >> 2);
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int64_t row = row0 + r * 8;
#pragma unroll
      for (int c = 0; c < NC; ++c) {
        const int64_t col = n0 + c;
        if ((c & 3) == (lane & 3) && row < a.m && col < a.n) {
          if (split)
            atomicAdd(a.workspace + row * a.n + col, acc[r][c]);
          else
            a.out[row * a.ldo + col] =
                from_float<T>(a.bias != nullptr ? acc[r][c] + to_float(a.bias[row]) : acc[r][c]);
        }
      }
    }
    __syncthreads();
  }
}

template <typename T>
__global__ void round_workspace_kernel(const float* __restrict__ ws, const T* __restrict__ bias, T* __restrict__ out,
                                       const int64_t m, const int64_t n, const int64_t ldo) {
  const int64_t total = m * n;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int64_t r = i / n, c = i - r * n;
    out[r * ldo + c] = from_float<T>(bias != nullptr ? ws[i] + to_float(bias[r]) : ws[i]);
  }
}

template <typename T, int NC, bool kTensorCores>
void launch(const BitmapSpmmArgs<T>& a, const BitmapSpmmPlan& p, dim3 grid, int64_t gk, cudaStream_t stream) {
  if constexpr (kTensorCores) {
    const auto kernel = bitmap_spmm_mma_kernel<T, NC / 8>;
    SK_LAUNCH(kernel, grid, kThreads, stream)(a, gk, p.col_chunks, p.groups_per_split);
  } else {
    const auto kernel = bitmap_spmm_simt_kernel<T, NC>;
    SK_LAUNCH(kernel, grid, kThreads, stream)(a, gk, p.col_chunks, p.groups_per_split);
  }
}

}  // namespace

BitmapSpmmPlan bitmap_spmm_plan(int64_t m, int64_t k, int64_t n, bool is_fp32, bool exact, int sm_count) {
  BitmapSpmmPlan p{};
  p.tensor_cores = !is_fp32 && !exact;
  if (p.tensor_cores)
    p.cols_per_block = n <= 8 ? 8 : n <= 16 ? 16 : n <= 32 ? 32 : 64;
  else
    p.cols_per_block = n <= 8 ? 8 : 16;
  const int64_t gm = (m + kGroup - 1) / kGroup, gk = (k + kGroup - 1) / kGroup;
  p.col_chunks = (n + p.cols_per_block - 1) / p.cols_per_block;
  const int64_t blocks = gm * (p.col_chunks < kMaxGridY ? p.col_chunks : kMaxGridY);
  p.splits = bitmap::plan_splits(blocks, gk, sm_count, kMaxGridY, &p.groups_per_split);
  p.workspace_elems = p.splits > 1 ? m * n : 0;
  return p;
}

template <typename T>
cudaError_t bitmap_spmm(const BitmapSpmmArgs<T>& a, const BitmapSpmmPlan& p, cudaStream_t stream) {
  if (a.m <= 0 || a.n <= 0) return cudaSuccess;
  const int64_t gm = (a.m + kGroup - 1) / kGroup, gk = (a.k + kGroup - 1) / kGroup;
  if (p.splits > 1) {
    const cudaError_t err = cudaMemsetAsync(a.workspace, 0, static_cast<size_t>(a.m * a.n) * sizeof(float), stream);
    if (err != cudaSuccess) return err;
  }
  const dim3 grid(static_cast<unsigned>(gm), static_cast<unsigned>(p.col_chunks < kMaxGridY ? p.col_chunks : kMaxGridY),
                  static_cast<unsigned>(p.splits));
  bool launched = false;
  if constexpr (!std::is_same<T, float>::value) {
    if (p.tensor_cores) {
      launched = true;
      switch (p.cols_per_block) {
        case 8: launch<T, 8, true>(a, p, grid, gk, stream); break;
        case 16: launch<T, 16, true>(a, p, grid, gk, stream); break;
        case 32: launch<T, 32, true>(a, p, grid, gk, stream); break;
        default: launch<T, 64, true>(a, p, grid, gk, stream); break;
      }
    }
  }
  if (!launched) {
    if (p.cols_per_block == 8)
      launch<T, 8, false>(a, p, grid, gk, stream);
    else
      launch<T, 16, false>(a, p, grid, gk, stream);
  }
  if (p.splits > 1) {
    const unsigned blocks = grid_blocks(a.m * a.n, 256, kMaxFinishBlocks);
    const auto kernel = round_workspace_kernel<T>;
    SK_LAUNCH(kernel, blocks, 256, stream)(a.workspace, a.bias, a.out, a.m, a.n, a.ldo);
  }
  return cudaGetLastError();
}

template cudaError_t bitmap_spmm<float>(const BitmapSpmmArgs<float>&, const BitmapSpmmPlan&, cudaStream_t);
template cudaError_t bitmap_spmm<__half>(const BitmapSpmmArgs<__half>&, const BitmapSpmmPlan&, cudaStream_t);
template cudaError_t bitmap_spmm<__nv_bfloat16>(const BitmapSpmmArgs<__nv_bfloat16>&, const BitmapSpmmPlan&,
                                                cudaStream_t);

}  // namespace cuda
}  // namespace sk
