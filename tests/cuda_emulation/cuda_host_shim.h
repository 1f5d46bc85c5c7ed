// Runs the source of CUDA kernels on the host, for machines without a GPU.
//
// Include this, then the .cu file, in a host C++20 translation unit (with the
// CUDA toolkit's headers on the include path and -pthread). Each block of a
// launch runs as blockDim std::threads, one per CUDA thread; blocks run one
// after another (the same host threads run each block in turn), so `__shared__` (here: a function-local static) is the block's
// shared memory. __syncthreads is a barrier of the block's threads, warp
// shuffles and mma.sync exchange values through a per-warp slot array between
// two barriers of the warp's 32 threads. The mma is computed from the fragment
// layouts of the PTX ISA (mma.m16n8k16 .row.col, f16 / bf16 in, f32
// accumulate), written out here independently of the kernels' helpers.
//
// What this checks: the kernels' indexing, staging, loops, epilogues, the
// host-side plan and launch code, exactly as written. What it does not: timing,
// memory-model races (a missing barrier shows only if the threads happen to
// interleave badly), bank conflicts, register limits.
#pragma once

#include <algorithm>
#include <atomic>
#include <barrier>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#define SK_CUDA_HOST_EMULATION 1

// CUDA's host headers give these attribute meanings for nvcc; the emulation
// compiles the device code as plain host code.
#undef __global__
#define __global__
#undef __device__
#define __device__
#undef __host__
#define __host__
#undef __forceinline__
#define __forceinline__ inline
#undef __shared__
#define __shared__ static
#define __launch_bounds__(...)

// CUDA's device code has min / max overloads for every integer and float type;
// on the host, std's serve (the kernels call them unqualified).
using std::max;
using std::min;

namespace sk_emu {

struct Block {
  std::barrier<> block_barrier;
  std::vector<std::unique_ptr<std::barrier<>>> warp_barrier;
  std::vector<uint64_t> slots;  // 32 per warp, one exchange at a time
  std::vector<float> mma_c;     // 32 x 4 per warp
  std::vector<uint32_t> mma_ab; // 32 x 6 per warp
  explicit Block(int threads)
      : block_barrier(threads), slots(static_cast<size_t>(threads)), mma_c(static_cast<size_t>(threads) * 4),
        mma_ab(static_cast<size_t>(threads) * 6) {
    for (int w = 0; w < (threads + 31) / 32; ++w) warp_barrier.emplace_back(new std::barrier<>(32));
  }
};

struct ThreadState {
  uint3 thread_idx{}, block_idx{};
  dim3 block_dim, grid_dim;
  Block* block = nullptr;
  int lane() const { return static_cast<int>(thread_idx.x % 32); }
  int warp() const { return static_cast<int>(thread_idx.x / 32); }
};
inline thread_local ThreadState t_state;

template <typename K, typename... Args>
void run_grid(K kernel, dim3 grid, dim3 block, Args... args) {
  const int threads = static_cast<int>(block.x * block.y * block.z);
  if (block.y != 1 || block.z != 1 || threads % 32 != 0) std::abort();  // the kernels here use 1-D blocks of whole warps
  // One host thread per CUDA thread of a block, reused for every block of the
  // grid in turn; a barrier after each block keeps blocks from overlapping.
  Block blk(threads);
  std::vector<std::thread> pool;
  pool.reserve(static_cast<size_t>(threads));
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      t_state.thread_idx = {static_cast<unsigned>(t), 0, 0};
      t_state.block_dim = block;
      t_state.grid_dim = grid;
      t_state.block = &blk;
      for (unsigned bz = 0; bz < grid.z; ++bz)
        for (unsigned by = 0; by < grid.y; ++by)
          for (unsigned bx = 0; bx < grid.x; ++bx) {
            t_state.block_idx = {bx, by, bz};
            kernel(args...);
            blk.block_barrier.arrive_and_wait();
          }
    });
  }
  for (auto& th : pool) th.join();
}

template <typename K>
struct Launcher {
  K kernel;
  dim3 grid, block;
  template <typename... Args>
  void operator()(Args&&... args) const {
    run_grid(kernel, grid, block, std::decay_t<Args>(args)...);
  }
};

// The warp's 32 threads exchange one 64-bit value each.
inline uint64_t warp_exchange(uint64_t mine, int src) {
  Block& b = *t_state.block;
  const int base = t_state.warp() * 32;
  b.slots[static_cast<size_t>(base + t_state.lane())] = mine;
  b.warp_barrier[static_cast<size_t>(t_state.warp())]->arrive_and_wait();
  const uint64_t got = b.slots[static_cast<size_t>(base + (src & 31))];
  b.warp_barrier[static_cast<size_t>(t_state.warp())]->arrive_and_wait();
  return got;
}

template <typename V>
V shfl_from(V v, int src) {
  static_assert(sizeof(V) <= 8, "shuffle of a value wider than 64 bits");
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(V));
  bits = warp_exchange(bits, src);
  V out;
  std::memcpy(&out, &bits, sizeof(V));
  return out;
}

inline float half_bits_to_float(uint32_t bits, bool bf16) {
  if (bf16) {
    const uint32_t f = bits << 16;
    float out;
    std::memcpy(&out, &f, 4);
    return out;
  }
  __half_raw raw;
  raw.x = static_cast<unsigned short>(bits);
  return __half2float(__half(raw));
}

// mma.sync.aligned.m16n8k16.row.col.f32.{f16,bf16}.{f16,bf16}.f32, d = A B + c (c = d on entry).
// Lane L (g = L / 4, t = L % 4) holds, in register j of A, elements a_{2j} (low half) and a_{2j+1}:
//   a0,a1: (g, 2t..2t+1)  a2,a3: (g+8, 2t..2t+1)  a4,a5: (g, 2t+8..2t+9)  a6,a7: (g+8, 2t+8..2t+9);
// B: b0,b1 (register 0): k = 2t..2t+1, n = g;  b2,b3 (register 1): k = 2t+8..2t+9, n = g;
// C/D: c0,c1: (g, 2t..2t+1)  c2,c3: (g+8, 2t..2t+1).
template <typename T>
void mma_m16n8k16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  constexpr bool bf16 = std::is_same<T, __nv_bfloat16>::value;
  Block& blk = *t_state.block;
  const int w = t_state.warp(), lane = t_state.lane();
  uint32_t* ab = &blk.mma_ab[static_cast<size_t>(w) * 32 * 6];
  for (int j = 0; j < 4; ++j) ab[lane * 6 + j] = a[j];
  ab[lane * 6 + 4] = b0;
  ab[lane * 6 + 5] = b1;
  blk.warp_barrier[static_cast<size_t>(w)]->arrive_and_wait();
  double A[16][16], B[16][8];
  for (int l = 0; l < 32; ++l) {
    const int g = l / 4, t = l % 4;
    for (int e = 0; e < 8; ++e) {
      const uint32_t reg = ab[l * 6 + e / 2];
      const uint32_t half = (e % 2) ? (reg >> 16) : (reg & 0xffffu);
      const int row = g + ((e / 2) % 2) * 8;
      const int col = 2 * t + (e % 2) + (e >= 4 ? 8 : 0);
      A[row][col] = half_bits_to_float(half, bf16);
    }
    for (int e = 0; e < 4; ++e) {
      const uint32_t reg = ab[l * 6 + 4 + e / 2];
      const uint32_t half = (e % 2) ? (reg >> 16) : (reg & 0xffffu);
      B[2 * t + (e % 2) + (e >= 2 ? 8 : 0)][g] = half_bits_to_float(half, bf16);
    }
  }
  const int g = lane / 4, t = lane % 4;
  float out[4];
  for (int e = 0; e < 4; ++e) {
    const int row = g + (e >= 2 ? 8 : 0), col = 2 * t + (e % 2);
    double s = 0;
    for (int kk = 0; kk < 16; ++kk) s += A[row][kk] * B[kk][col];
    out[e] = static_cast<float>(s + d[e]);  // the products are exact in double; one rounding to fp32
  }
  blk.warp_barrier[static_cast<size_t>(w)]->arrive_and_wait();
  for (int e = 0; e < 4; ++e) d[e] = out[e];
}

}  // namespace sk_emu

#define threadIdx (sk_emu::t_state.thread_idx)
#define blockIdx (sk_emu::t_state.block_idx)
#define blockDim (sk_emu::t_state.block_dim)
#define gridDim (sk_emu::t_state.grid_dim)
#define SK_LAUNCH(kernel, grid, block, stream) \
  (sk_emu::Launcher<std::decay_t<decltype(kernel)>>{kernel, dim3(grid), dim3(block)})

inline unsigned __float_as_uint(float x) {
  unsigned u;
  std::memcpy(&u, &x, 4);
  return u;
}
inline void __syncthreads() { sk_emu::t_state.block->block_barrier.arrive_and_wait(); }
template <typename V>
V __shfl_sync(unsigned, V v, int src) {
  return sk_emu::shfl_from(v, src);
}
template <typename V>
V __shfl_up_sync(unsigned, V v, unsigned d) {
  const int lane = sk_emu::t_state.lane();
  const V got = sk_emu::shfl_from(v, lane - static_cast<int>(d));
  return lane >= static_cast<int>(d) ? got : v;
}
template <typename V>
V __shfl_xor_sync(unsigned, V v, int m) {
  return sk_emu::shfl_from(v, sk_emu::t_state.lane() ^ m);
}
template <typename V>
V __ldg(const V* p) {
  return *p;
}
inline float atomicAdd(float* p, float v) { return std::atomic_ref<float>(*p).fetch_add(v); }
inline unsigned long long atomicMin(unsigned long long* p, unsigned long long v) {
  std::atomic_ref<unsigned long long> r(*p);
  unsigned long long cur = r.load();
  while (v < cur && !r.compare_exchange_weak(cur, v)) {
  }
  return cur;
}
inline unsigned long long atomicMax(unsigned long long* p, unsigned long long v) {
  std::atomic_ref<unsigned long long> r(*p);
  unsigned long long cur = r.load();
  while (v > cur && !r.compare_exchange_weak(cur, v)) {
  }
  return cur;
}

// The runtime calls the kernels' entry points make, on host memory.
extern "C" {
inline cudaError_t cudaMemsetAsync(void* p, int value, size_t count, cudaStream_t) {
  std::memset(p, value, count);
  return cudaSuccess;
}
inline cudaError_t cudaGetLastError(void) { return cudaSuccess; }
}
