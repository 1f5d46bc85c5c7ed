// A small fp32 SIMD layer, one definition per ISA, and element conversions.
//
// The ISA is chosen by the compiler flags of the object being built
// (__AVX512F__, __AVX2__), and everything here sits in sk::cpu::<isa> (isa.h).
// Kernels are written once against VecF:
//   kW                 lanes per vector (16 avx512, 8 avx2, 4 scalar)
//   vzero(), vset1(x)  constructors
//   vload(const T*)    kW elements of T (float, half_t, bf16_t) widened to fp32
//   vstore(T*, v)      kW fp32 lanes narrowed to T (round to nearest even)
//   vfma(a, b, c)      a * b + c
//   vhsum(v)           horizontal sum
// and scalar conversions to_float(T) / from_float<T>(float).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "kernels/cpu/isa.h"
#include "kernels/cpu/types.h"

SK_CPU_NAMESPACE_BEGIN

// ---------------------------------------------------------------------------
// Scalar conversions.
// ---------------------------------------------------------------------------
static inline float bits_to_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
static inline uint32_t float_to_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

static inline float to_float(float x) { return x; }
static inline float to_float(bf16_t x) { return bits_to_float(uint32_t(x.bits) << 16); }
static inline float to_float(half_t x) {
#if defined(__F16C__)
  return _cvtsh_ss(x.bits);
#else
  // IEEE binary16 -> binary32, subnormals included.
  const uint32_t sign = uint32_t(x.bits & 0x8000u) << 16;
  uint32_t exp = (x.bits >> 10) & 0x1fu;
  uint32_t mant = x.bits & 0x3ffu;
  if (exp == 0x1f) return bits_to_float(sign | 0x7f800000u | (mant << 13));  // inf / nan
  if (exp == 0) {
    if (mant == 0) return bits_to_float(sign);
    // subnormal: value = mant * 2^-24
    const float v = float(mant) * 5.9604644775390625e-08f;
    return sign ? -v : v;
  }
  return bits_to_float(sign | ((exp + 112u) << 23) | (mant << 13));
#endif
}

static inline uint16_t float_to_bf16_bits(float f) {
  const uint32_t u = float_to_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40u);  // quiet NaN
  return uint16_t((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

static inline uint16_t float_to_half_bits(float f) {
#if defined(__F16C__)
  return _cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT);
#else
  // IEEE binary32 -> binary16, round to nearest even, subnormals and overflow to inf.
  const uint32_t u = float_to_bits(f);
  const uint16_t sign = uint16_t((u >> 16) & 0x8000u);
  const uint32_t absu = u & 0x7fffffffu;
  if (absu > 0x7f800000u) return uint16_t(sign | 0x7e00u);  // nan
  if (absu >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // rounds to >= 65520: inf
  if (absu < 0x38800000u) {                                  // below the smallest normal half
    // value * 2^24 rounded to nearest even gives the subnormal mantissa
    const float scaled = bits_to_float(absu) * 16777216.0f;
    return uint16_t(sign | uint16_t(std::nearbyint(scaled)));
  }
  const uint32_t exp = (absu >> 23) - 112u;
  uint32_t mant = absu & 0x7fffffu;
  uint32_t h = (exp << 10) | (mant >> 13);
  const uint32_t rest = mant & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;
  return uint16_t(sign | h);
#endif
}

template <typename T>
static inline T from_float(float f);
template <>
inline float from_float<float>(float f) { return f; }
template <>
inline bf16_t from_float<bf16_t>(float f) { return bf16_t{float_to_bf16_bits(f)}; }
template <>
inline half_t from_float<half_t>(float f) { return half_t{float_to_half_bits(f)}; }

// ---------------------------------------------------------------------------
// VecF
// ---------------------------------------------------------------------------
#if defined(__AVX512F__)

constexpr int kW = 16;
struct VecF {
  __m512 v;
};
static inline VecF vzero() { return {_mm512_setzero_ps()}; }
static inline VecF vset1(float x) { return {_mm512_set1_ps(x)}; }
static inline VecF vfma(VecF a, VecF b, VecF c) { return {_mm512_fmadd_ps(a.v, b.v, c.v)}; }
static inline VecF vadd(VecF a, VecF b) { return {_mm512_add_ps(a.v, b.v)}; }
static inline float vhsum(VecF a) { return _mm512_reduce_add_ps(a.v); }
static inline VecF vload(const float* p) { return {_mm512_loadu_ps(p)}; }
static inline VecF vload(const half_t* p) {
  return {_mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)))};
}
static inline VecF vload(const bf16_t* p) {
  const __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  return {_mm512_castsi512_ps(_mm512_slli_epi32(w, 16))};
}
static inline void vstore(float* p, VecF a) { _mm512_storeu_ps(p, a.v); }
static inline void vstore(half_t* p, VecF a) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtps_ph(a.v, _MM_FROUND_TO_NEAREST_INT));
}
static inline void vstore(bf16_t* p, VecF a) {
  const __m512i u = _mm512_castps_si512(a.v);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
  const __mmask16 nan = _mm512_cmp_ps_mask(a.v, a.v, _CMP_UNORD_Q);
  r = _mm512_mask_or_epi32(r, nan, _mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtepi32_epi16(r));
}

#elif defined(__AVX2__)

constexpr int kW = 8;
struct VecF {
  __m256 v;
};
static inline VecF vzero() { return {_mm256_setzero_ps()}; }
static inline VecF vset1(float x) { return {_mm256_set1_ps(x)}; }
static inline VecF vfma(VecF a, VecF b, VecF c) { return {_mm256_fmadd_ps(a.v, b.v, c.v)}; }
static inline VecF vadd(VecF a, VecF b) { return {_mm256_add_ps(a.v, b.v)}; }
static inline float vhsum(VecF a) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(a.v), _mm256_extractf128_ps(a.v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
static inline VecF vload(const float* p) { return {_mm256_loadu_ps(p)}; }
static inline VecF vload(const half_t* p) {
  return {_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)))};
}
static inline VecF vload(const bf16_t* p) {
  const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return {_mm256_castsi256_ps(_mm256_slli_epi32(w, 16))};
}
static inline void vstore(float* p, VecF a) { _mm256_storeu_ps(p, a.v); }
static inline void vstore(half_t* p, VecF a) {
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_cvtps_ph(a.v, _MM_FROUND_TO_NEAREST_INT));
}
static inline void vstore(bf16_t* p, VecF a) {
  const __m256i u = _mm256_castps_si256(a.v);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  __m256i r = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))), 16);
  const __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(a.v, a.v, _CMP_UNORD_Q));
  const __m256i qnan = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
  r = _mm256_blendv_epi8(r, qnan, nan);
  // 8 x u32 (each <= 0xffff) -> 8 x u16: pack within lanes, then fix the lane order.
  const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), 0xd8);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_castsi256_si128(packed));
}

#else  // scalar baseline: plain loops the compiler may map to SSE2

constexpr int kW = 4;
struct VecF {
  float v[kW];
};
static inline VecF vzero() { return VecF{{0.f, 0.f, 0.f, 0.f}}; }
static inline VecF vset1(float x) { return VecF{{x, x, x, x}}; }
static inline VecF vfma(VecF a, VecF b, VecF c) {
  VecF r;
  for (int i = 0; i < kW; ++i) r.v[i] = a.v[i] * b.v[i] + c.v[i];
  return r;
}
static inline VecF vadd(VecF a, VecF b) {
  VecF r;
  for (int i = 0; i < kW; ++i) r.v[i] = a.v[i] + b.v[i];
  return r;
}
static inline float vhsum(VecF a) { return (a.v[0] + a.v[1]) + (a.v[2] + a.v[3]); }
template <typename T>
static inline VecF vload(const T* p) {
  VecF r;
  for (int i = 0; i < kW; ++i) r.v[i] = to_float(p[i]);
  return r;
}
template <typename T>
static inline void vstore(T* p, VecF a) {
  for (int i = 0; i < kW; ++i) p[i] = from_float<T>(a.v[i]);
}

#endif

SK_CPU_NAMESPACE_END
