// Throughput ceilings of this CPU that bound the AVX2 decode kernels
// (docs/performance.md, bitmap expansion). Build and run:
//
//   g++ -O2 -mavx2 -mfma bench/micro/cpu_ports.cpp -o /tmp/cpu_ports -lpthread && /tmp/cpu_ports [GHz]
//
// Each test runs independent streams (no dependency chain limits it) for a
// fixed count and prints operations per cycle at the given clock (default
// 3.1 GHz: measure it with a dependent-add loop, or read the spec), median
// of 5 runs:
//   fma            10 independent vfmadd231ps chains (the FMA pipes)
//   fma x2 threads the same on two threads at once (1 per thread if the two
//                  CPUs share a core's FMA pipes, 2 if they are separate cores)
//   load           256-bit loads from L1, each added into one of 8 accumulators
//   load+vpermps   the same with a vpermps between load and add (the bitmap
//                  expansion's per-row-byte pattern)
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

namespace {

alignas(64) float g_buf[4096 + 64];

float fma_streams(long iters) {
  __m256 a0 = _mm256_set1_ps(1.f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0, a9 = a0;
  const __m256 m = _mm256_set1_ps(0.9999f), c = _mm256_set1_ps(1e-4f);
  for (long k = 0; k < iters; ++k) {
#define SK_F(x) x = _mm256_fmadd_ps(x, m, c);
    SK_F(a0) SK_F(a1) SK_F(a2) SK_F(a3) SK_F(a4) SK_F(a5) SK_F(a6) SK_F(a7) SK_F(a8) SK_F(a9)
#undef SK_F
    // keep the chains in registers and the loop from being folded
    asm volatile("" : "+x"(a0), "+x"(a1), "+x"(a2), "+x"(a3), "+x"(a4), "+x"(a5), "+x"(a6), "+x"(a7), "+x"(a8),
                 "+x"(a9));
  }
  const __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                                 _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)),
                                               _mm256_add_ps(a8, a9)));
  return _mm256_cvtss_f32(s);
}

template <bool kPermute>
float load_streams(long iters) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
  const __m256i idx = _mm256_setr_epi32(1, 0, 3, 2, 5, 4, 7, 6);
  for (long k = 0; k < iters; ++k) {
    const float* p = g_buf + ((k * 64) & 4095);  // 16 KiB, in L1
#define SK_L(x, d)                                          \
  {                                                         \
    __m256 l = _mm256_loadu_ps(p + d);                      \
    asm volatile("" : "+x"(l));                             \
    if (kPermute) l = _mm256_permutevar8x32_ps(l, idx);     \
    x = _mm256_add_ps(x, l);                                \
  }
    SK_L(a0, 0) SK_L(a1, 8) SK_L(a2, 16) SK_L(a3, 24) SK_L(a4, 32) SK_L(a5, 40) SK_L(a6, 48) SK_L(a7, 56)
#undef SK_L
  }
  const __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                                 _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
  return _mm256_cvtss_f32(s);
}

// Median over 5 runs of ops per cycle per thread.
template <typename F>
double per_cycle(F run, double ops, int threads, double ghz) {
  std::vector<double> rates;
  for (int rep = 0; rep < 5; ++rep) {
    volatile float sink = 0.f;
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) pool.emplace_back([&] { sink = run(); });
    for (auto& t : pool) t.join();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    rates.push_back(ops / (s * ghz * 1e9));
  }
  std::sort(rates.begin(), rates.end());
  return rates[2];
}

}  // namespace

int main(int argc, char** argv) {
  const double ghz = argc > 1 ? std::atof(argv[1]) : 3.1;
  for (int i = 0; i < 4096 + 64; ++i) g_buf[i] = 1e-3f;
  const long fma_iters = 100000000, load_iters = 30000000;
  std::printf("at %.2f GHz, per cycle per thread (median of 5):\n", ghz);
  std::printf("  fma            %.2f\n", per_cycle([&] { return fma_streams(fma_iters); }, fma_iters * 10.0, 1, ghz));
  std::printf("  fma x2 threads %.2f\n", per_cycle([&] { return fma_streams(fma_iters); }, fma_iters * 10.0, 2, ghz));
  std::printf("  load           %.2f\n",
              per_cycle([&] { return load_streams<false>(load_iters); }, load_iters * 8.0, 1, ghz));
  std::printf("  load+vpermps   %.2f\n",
              per_cycle([&] { return load_streams<true>(load_iters); }, load_iters * 8.0, 1, ghz));
  return 0;
}
