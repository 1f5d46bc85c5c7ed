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
//   vhsum4(s0..s3, r)  r[q] = vhsum(sq), q = 0..3, in one reduction
//   vload_partial(p, n) / vstore_partial(p, v, n)
//                      the first n (0..kW) lanes; the other lanes read as 0 and
//                      are not written; memory past p[n-1] is never touched
//   vload_head<R>(p)   vload_partial(p, R) for a constant R (a plain 128-bit
//                      load for 4 fp32 lanes on AVX2)
//   vgather(base, idx) kW elements base[idx[l]] (idx int32 or int64, all valid)
//   vgather_below(base, idx, limit, flags)  the same for int32 indices that may
//                      be invalid: an index that is negative or >= limit
//                      (limit >= 1) reads some element of [base, base + limit)
//                      instead (base[limit - 1] on AVX2/AVX-512, base[0] in
//                      the buffered form) and is recorded in flags (IdxFlags;
//                      idx_flags_any(flags) tells)
//   Vec8 (v8*)         exactly 8 fp32 lanes on every ISA, for the 8-wide tiles
//                      of the bitmap and 2:4 formats (see the end of this file)
// and scalar conversions to_float(T) / from_float<T>(float).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

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
// 1 for an infinity or a NaN (all-ones exponent), else 0: an integer test, so
// OR-ing it over a copy makes no floating-point dependency chain.
static inline uint32_t non_finite_bit(float x) { return uint32_t((float_to_bits(x) & 0x7f800000u) == 0x7f800000u); }

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
static inline void vhsum4(VecF s0, VecF s1, VecF s2, VecF s3, float* r) {
  // halves added first (16 -> 8 lanes each), then as on AVX2
  const auto half = [](VecF a) { return _mm256_add_ps(_mm512_castps512_ps256(a.v), _mm512_extractf32x8_ps(a.v, 1)); };
  const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(half(s0), half(s1)), _mm256_hadd_ps(half(s2), half(s3)));
  _mm_storeu_ps(r, _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)));
}
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
// three vhaddps leave lanes q and q + 4 holding partial sums of sq; one add of
// the halves finishes: 5 instructions for the four sums instead of 4 x 6
static inline void vhsum4(VecF s0, VecF s1, VecF s2, VecF s3, float* r) {
  const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(s0.v, s1.v), _mm256_hadd_ps(s2.v, s3.v));
  _mm_storeu_ps(r, _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)));
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
static inline void vhsum4(VecF s0, VecF s1, VecF s2, VecF s3, float* r) {
  r[0] = vhsum(s0);
  r[1] = vhsum(s1);
  r[2] = vhsum(s2);
  r[3] = vhsum(s3);
}
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

// ---------------------------------------------------------------------------
// Partial loads / stores and gathers on VecF.
// ---------------------------------------------------------------------------
#if defined(__AVX512F__)
static inline __mmask16 first_lanes(int n) { return __mmask16((1u << n) - 1u); }
static inline VecF vload_partial(const float* p, int n) { return {_mm512_maskz_loadu_ps(first_lanes(n), p)}; }
static inline VecF vload_partial(const half_t* p, int n) {
  return {_mm512_cvtph_ps(_mm256_maskz_loadu_epi16(first_lanes(n), p))};
}
static inline VecF vload_partial(const bf16_t* p, int n) {
  const __m512i w = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(first_lanes(n), p));
  return {_mm512_castsi512_ps(_mm512_slli_epi32(w, 16))};
}
static inline void vstore_partial(float* p, VecF a, int n) { _mm512_mask_storeu_ps(p, first_lanes(n), a.v); }
static inline VecF vgather(const float* base, const int32_t* idx) {
  return {_mm512_i32gather_ps(_mm512_loadu_si512(idx), base, 4)};
}
struct IdxFlags {
  __mmask16 m = 0;
  void mark(uint32_t bad) { m = __mmask16(m | (bad != 0)); }
};
static inline bool idx_flags_any(IdxFlags f) { return f.m != 0; }
static inline VecF vgather_below(const float* base, const int32_t* idx, uint32_t limit, IdxFlags& flags) {
  const __m512i i = _mm512_loadu_si512(idx);
  const __m512i c = _mm512_min_epu32(i, _mm512_set1_epi32(int(limit - 1)));
  flags.m = __mmask16(flags.m | _mm512_cmpneq_epi32_mask(i, c));
  return {_mm512_i32gather_ps(c, base, 4)};
}
static inline VecF vgather(const float* base, const int64_t* idx) {
  const __m256 lo = _mm512_i64gather_ps(_mm512_loadu_si512(idx), base, 4);
  const __m256 hi = _mm512_i64gather_ps(_mm512_loadu_si512(idx + 8), base, 4);
  return {_mm512_insertf32x8(_mm512_castps256_ps512(lo), hi, 1)};
}
#elif defined(__AVX2__)
static inline __m256i first_lanes(int n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
static inline VecF vload_partial(const float* p, int n) { return {_mm256_maskload_ps(p, first_lanes(n))}; }
static inline void vstore_partial(float* p, VecF a, int n) { _mm256_maskstore_ps(p, first_lanes(n), a.v); }
static inline VecF vgather(const float* base, const int32_t* idx) {
  return {_mm256_i32gather_ps(base, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx)), 4)};
}
struct IdxFlags {
  __m256i v = _mm256_setzero_si256();
  void mark(uint32_t bad) { v = _mm256_or_si256(v, _mm256_set1_epi32(int(bad))); }
};
static inline bool idx_flags_any(IdxFlags f) { return !_mm256_testz_si256(f.v, f.v); }
static inline VecF vgather_below(const float* base, const int32_t* idx, uint32_t limit, IdxFlags& flags) {
  const __m256i i = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx));
  const __m256i c = _mm256_min_epu32(i, _mm256_set1_epi32(int(limit - 1)));
  flags.v = _mm256_or_si256(flags.v, _mm256_xor_si256(i, c));
  return {_mm256_i32gather_ps(base, c, 4)};
}
static inline VecF vgather(const float* base, const int64_t* idx) {
  const __m128 lo = _mm256_i64gather_ps(base, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx)), 4);
  const __m128 hi = _mm256_i64gather_ps(base, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx + 4)), 4);
  return {_mm256_set_m128(hi, lo)};
}
#else
static inline VecF vload_partial(const float* p, int n) {
  VecF r = vzero();
  for (int i = 0; i < n; ++i) r.v[i] = p[i];
  return r;
}
static inline void vstore_partial(float* p, VecF a, int n) {
  for (int i = 0; i < n; ++i) p[i] = a.v[i];
}
template <typename I>
static inline VecF vgather(const float* base, const I* idx) {
  VecF r;
  for (int i = 0; i < kW; ++i) r.v[i] = base[idx[i]];
  return r;
}
#endif

#if defined(__AVX2__) && !defined(__AVX512F__)
// The first n (0..8) 16-bit values at q in the low lanes, the rest 0, reading
// nothing past q[n) and built in registers: a copy through a stack buffer
// made the vector load wait on the buffer's scalar stores (store forwarding
// fails), which cost 8x on CSR bf16 at N = 4.
static inline __m128i load_u16_partial(const void* p, int n) {
  const uint16_t* q = static_cast<const uint16_t*>(p);
  if (n >= 8) return _mm_loadu_si128(static_cast<const __m128i*>(p));
  __m128i r = _mm_setzero_si128();
  if (n >= 4) {
    r = _mm_loadl_epi64(static_cast<const __m128i*>(p));
  } else if (n >= 2) {
    uint32_t x;
    std::memcpy(&x, q, sizeof x);
    r = _mm_cvtsi32_si128(int(x));
  }
  switch (n) {
    case 7:
      r = _mm_insert_epi16(r, q[6], 6);
      [[fallthrough]];
    case 6:
      r = _mm_insert_epi16(r, q[5], 5);
      [[fallthrough]];
    case 5:
      r = _mm_insert_epi16(r, q[4], 4);
      break;
    case 3:
      r = _mm_insert_epi16(r, q[2], 2);
      break;
    case 1:
      r = _mm_insert_epi16(r, q[0], 0);
      break;
    default:
      break;
  }
  return r;
}
static inline VecF vload_partial(const half_t* p, int n) { return {_mm256_cvtph_ps(load_u16_partial(p, n))}; }
static inline VecF vload_partial(const bf16_t* p, int n) {
  return {_mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(load_u16_partial(p, n)), 16))};
}
#endif
// Partial stores of 16-bit types (and, in the scalar build, every partial load
// and store): through a small buffer.
#if defined(__AVX2__) || defined(__AVX512F__)
template <typename T>
static inline void vstore_partial(T* p, VecF a, int n) {
  T tmp[kW];
  vstore(tmp, a);
  for (int i = 0; i < n; ++i) p[i] = tmp[i];
}
#else
template <typename T>
static inline VecF vload_partial(const T* p, int n) {
  VecF r = vzero();
  for (int i = 0; i < n; ++i) r.v[i] = to_float(p[i]);
  return r;
}
template <typename T>
static inline void vstore_partial(T* p, VecF a, int n) {
  for (int i = 0; i < n; ++i) p[i] = from_float<T>(a.v[i]);
}
#endif
// vload_head<R>(p): vload_partial(p, R) for a constant R (0 < R < kW), as one
// plain 128-bit load where R is 4 fp32 lanes of the 256-bit AVX2 vector (the
// 16-bit types' partial load is a plain 64-bit load there already). The
// masked 256-bit load of a 16-byte row of b spans the next cache line for
// every other row, and those loads cost (Zen 4, fp32 CSR SpMM n = 4, 90 %
// 4096^2, 2 threads: 0.75 -> 0.67 ms). On AVX-512 no CSR decode width has
// R = 4 or 8 (n <= 8 runs the AVX2 kernel).
template <int R, typename T>
static inline VecF vload_head(const T* p) {
  static_assert(R > 0 && R < kW, "a head is a partial vector");
#if defined(__AVX2__) && !defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float> && R == 4) return {_mm256_zextps128_ps256(_mm_loadu_ps(p))};
#endif
  return vload_partial(p, R);
}
template <typename T, typename I>
static inline VecF vgather(const T* base, const I* idx) {
  T tmp[kW];
  for (int i = 0; i < kW; ++i) tmp[i] = base[idx[i]];
  return vload(tmp);
}
#if !defined(__AVX2__) && !defined(__AVX512F__)
struct IdxFlags {
  uint32_t v = 0;
  void mark(uint32_t bad) { v |= bad; }
};
static inline bool idx_flags_any(IdxFlags f) { return f.v != 0; }
#endif
template <typename T>
static inline VecF vgather_below(const T* base, const int32_t* idx, uint32_t limit, IdxFlags& flags) {
  T tmp[kW];
  uint32_t bad = 0;
  for (int i = 0; i < kW; ++i) {
    const uint32_t u = uint32_t(idx[i]);
    bad |= uint32_t(u >= limit);
    tmp[i] = base[u < limit ? u : 0];
  }
  flags.mark(bad);
  return vload(tmp);
}

// ---------------------------------------------------------------------------
// Vec8: exactly 8 fp32 lanes (a ymm register on AVX2 and AVX-512, two groups of
// 4 floats in the scalar build), for 8-column tiles.
//   v8load(p), v8load_partial(p, n), v8fma, v8hsum as for VecF
//   v8expand(p, byte)  lane l = the next stored value if bit l of byte is set
//                      (values p[0 .. popcount(byte)) consumed in lane order),
//                      else 0; reads only p[0 .. popcount(byte))
//   v8expand_full(p, byte)  the same, but may read p[0 .. 8) (all readable)
//   v8expand_full_permute2(p, byte)  the same by another instruction sequence
//   v8store_set_positions(out, byte, base, scale)  out[0..8) = (base + the
//                      positions of byte's set bits, lowest first) * scale,
//                      then unspecified; the caller keeps (base + 7) * scale
//                      below 2^31
//   v8store_sparse24_offsets(out, word, scale)  out[0..8) = the columns of a
//                      2:4 meta word's 8 values (0..15) times scale (16 * scale < 2^31)
//   v8hsum8(r)         lane i = sum of the lanes of r[i], for r[0..8)
//   v8loadf/v8storef   8 floats, unaligned
//   v8sel24_index(w)   the permutation of v8select24 for w, reusable:
//                      v8select24(b, v8sel24_index(w)) == v8select24(b, w)
//   v8sel24_index2(two, s0, s1)  the permutations of two consecutive meta
//                      words (the first in the low 16 bits)
//   v8select24(b, w)   lane l = b[4 * (l / 2) + ((w >> 2l) & 3)] for the 16
//                      values b[0..16) and a 2:4 metadata word w
// ---------------------------------------------------------------------------
// Rows per block for kernels that keep RB x N Vec8 accumulators and N Vec8
// of b in registers (2 <= N <= 8; the bitmap and 2:4 expansions): they fit
// the register file (32 vector registers on AVX-512, 16 on AVX2).
template <int N>
constexpr int vec8_row_block() {
#if defined(__AVX512F__)
  return N <= 4 ? 4 : 2;
#else
  return N <= 2 ? 4 : N <= 4 ? 2 : 1;
#endif
}
#if defined(__AVX2__) || defined(__AVX512F__)
struct Vec8 {
  __m256 v;
};
static inline Vec8 v8zero() { return {_mm256_setzero_ps()}; }
static inline Vec8 v8fma(Vec8 a, Vec8 b, Vec8 c) { return {_mm256_fmadd_ps(a.v, b.v, c.v)}; }
static inline Vec8 v8add(Vec8 a, Vec8 b) { return {_mm256_add_ps(a.v, b.v)}; }
static inline float v8hsum(Vec8 a) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(a.v), _mm256_extractf128_ps(a.v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
static inline Vec8 v8load(const float* p) { return {_mm256_loadu_ps(p)}; }
static inline Vec8 v8load(const half_t* p) {
  return {_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)))};
}
static inline Vec8 v8load(const bf16_t* p) {
  const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return {_mm256_castsi256_ps(_mm256_slli_epi32(w, 16))};
}
static inline __m256i v8first_lanes(int n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
static inline Vec8 v8load_partial(const float* p, int n) { return {_mm256_maskload_ps(p, v8first_lanes(n))}; }
template <typename T>
static inline Vec8 v8load_partial(const T* p, int n) {
  T tmp[8];
  for (int i = 0; i < 8; ++i) tmp[i] = T{0};
  for (int i = 0; i < n; ++i) tmp[i] = p[i];
  return v8load(tmp);
}
// For each byte, the source lane of each output lane, one signed byte per
// lane: the next stored value for a set bit; for a clear bit 15 with the sign
// bit set (vpermps reads only the low 3 bits, lane 7, which is 0 after the
// partial load of v8expand unless all 8 lanes are selected; v8expand_full
// zeroes the lanes by the sign bit, so no second table load is needed, and
// v8expand_full_permute2 by bit 3, the zero register's lane). An
// entry is 8 bytes, so it is addressed with a scaled index and widened by one
// vpmovsxbd from memory (a 32-byte entry needed a shift of the byte and a
// copy of it per row byte); 2 KiB in all.
struct alignas(64) ExpandTable {
  int8_t idx[256][8];
};
static constexpr ExpandTable make_expand_table() {
  ExpandTable t{};
  for (int byte = 0; byte < 256; ++byte) {
    int next = 0;
    for (int l = 0; l < 8; ++l) t.idx[byte][l] = (byte >> l) & 1 ? int8_t(next++) : int8_t(-128 + 15);
  }
  return t;
}
static constexpr ExpandTable kExpandTable = make_expand_table();
static inline __m256i expand_permutation(unsigned byte) {
  return _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(kExpandTable.idx[byte])));
}
template <typename T>
static inline Vec8 v8expand(const T* p, unsigned byte) {
  const Vec8 packed = v8load_partial(p, __builtin_popcount(byte));
  return {_mm256_permutevar8x32_ps(packed.v, expand_permutation(byte))};
}
template <typename T>
static inline Vec8 v8expand_full(const T* p, unsigned byte) {
  const __m256i perm = expand_permutation(byte);
  // The zero is hidden from the compiler (an empty asm; loop invariant, so
  // hoisted): knowing it, GCC rewrites the blend as a compare plus an and-not,
  // two instructions per row byte instead of one vblendvps.
  __m256 zero = _mm256_setzero_ps();
  __asm__("" : "+x"(zero));
  return {_mm256_blendv_ps(_mm256_permutevar8x32_ps(v8load(p).v, perm), zero, _mm256_castsi256_ps(perm))};
}
// v8expand_full as one two-source permutation on AVX-512 (vpermt2ps: bit 3
// of a clear lane's index takes it from a zero register); v8expand_full on
// AVX2. Faster where the FMAs per expansion are few (the n = 2..8 expansion,
// 4096^2 70 % n = 4 ~5 %), slower where a row's expansion feeds one FMA
// (n = 1 0.75 -> 0.80 ms) or, alone, is stored (the dense tile 3.5 -> 3.8);
// the bitmap dense tile still uses it for fp16, whose expansion runs inside
// the tile product: EVEX, so it takes none of the xmm0..15 the VEX blend needs.
template <typename T>
static inline Vec8 v8expand_full_permute2(const T* p, unsigned byte) {
#if defined(__AVX512VL__)
  return {_mm256_permutex2var_ps(v8load(p).v, expand_permutation(byte), _mm256_setzero_ps())};
#else
  return v8expand_full(p, byte);
#endif
}
// Positions of each byte's set bits, lowest first, one per byte of the entry
// (bytes past the popcount are 0).
struct SetPositionTable {
  uint64_t pos[256];
};
static constexpr SetPositionTable make_set_position_table() {
  SetPositionTable t{};
  for (int byte = 0; byte < 256; ++byte) {
    int next = 0;
    for (int l = 0; l < 8; ++l)
      if ((byte >> l) & 1) t.pos[byte] |= uint64_t(l) << (8 * next++);
  }
  return t;
}
static constexpr SetPositionTable kSetPositions = make_set_position_table();
static inline void v8store_set_positions(int32_t* out, unsigned byte, int32_t base, int32_t scale) {
  const __m256i pos = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(int64_t(kSetPositions.pos[byte])));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out),
                      _mm256_mullo_epi32(_mm256_add_epi32(pos, _mm256_set1_epi32(base)), _mm256_set1_epi32(scale)));
}
// 2:4: for a meta byte (groups g, g + 1, each idx0 | idx1 << 2), the columns
// of its 4 values relative to group g's first column, one per byte.
struct Sparse24PosTable {
  uint32_t pos[256];
};
static constexpr Sparse24PosTable make_sparse24_pos_table() {
  Sparse24PosTable t{};
  for (int v = 0; v < 256; ++v)
    t.pos[v] = uint32_t(v & 3) | uint32_t((v >> 2) & 3) << 8 | uint32_t(4 + ((v >> 4) & 3)) << 16 |
               uint32_t(4 + ((v >> 6) & 3)) << 24;
  return t;
}
static constexpr Sparse24PosTable kSparse24Pos = make_sparse24_pos_table();
static inline uint64_t sparse24_word_positions(unsigned word) {
  return uint64_t(kSparse24Pos.pos[word & 0xffu]) | uint64_t(kSparse24Pos.pos[word >> 8] + 0x08080808u) << 32;
}
static inline void v8store_sparse24_offsets(int32_t* out, unsigned word, int32_t scale) {
  const __m256i pos = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(int64_t(sparse24_word_positions(word))));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), _mm256_mullo_epi32(pos, _mm256_set1_epi32(scale)));
}
// Lane i = the sum of the 8 lanes of r[i] (8 horizontal sums at once).
static inline Vec8 v8hsum8(const Vec8* r) {
  const __m256 a01 = _mm256_hadd_ps(r[0].v, r[1].v), a23 = _mm256_hadd_ps(r[2].v, r[3].v);
  const __m256 a45 = _mm256_hadd_ps(r[4].v, r[5].v), a67 = _mm256_hadd_ps(r[6].v, r[7].v);
  // b0 = [r0..r3 lanes 0-3 | r0..r3 lanes 4-7], b1 the same for r4..r7
  const __m256 b0 = _mm256_hadd_ps(a01, a23), b1 = _mm256_hadd_ps(a45, a67);
  return {_mm256_add_ps(_mm256_permute2f128_ps(b0, b1, 0x20), _mm256_permute2f128_ps(b0, b1, 0x31))};
}
static inline Vec8 v8loadf(const float* p) { return {_mm256_loadu_ps(p)}; }
static inline void v8storef(float* p, Vec8 a) { _mm256_storeu_ps(p, a.v); }
// The lane permutation of a 2:4 meta word (v8select24), computed once and
// applied to several 16-value blocks.
struct Sel24 {
  __m256i idx;
};
static inline Sel24 v8sel24_index(unsigned w) {
  const __m256i sh = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
  const __m256i pos = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(int(w)), sh), _mm256_set1_epi32(3));
  // group l / 2 starts at 4 * (l / 2); permutevar8x32 uses the index mod 8
  return {_mm256_add_epi32(pos, _mm256_setr_epi32(0, 0, 4, 4, 0, 0, 4, 4))};
}
// The permutations of two consecutive meta words (w0 in the low 16 bits of
// two): one broadcast for both.
static inline void v8sel24_index2(uint32_t two, Sel24& s0, Sel24& s1) {
  const __m256i bc = _mm256_set1_epi32(int(two));
  const __m256i three = _mm256_set1_epi32(3), half = _mm256_setr_epi32(0, 0, 4, 4, 0, 0, 4, 4);
  const __m256i sh0 = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
  const __m256i sh1 = _mm256_setr_epi32(16, 18, 20, 22, 24, 26, 28, 30);
  s0.idx = _mm256_add_epi32(_mm256_and_si256(_mm256_srlv_epi32(bc, sh0), three), half);
  s1.idx = _mm256_add_epi32(_mm256_and_si256(_mm256_srlv_epi32(bc, sh1), three), half);
}
template <typename T>
static inline Vec8 v8select24(const T* b, Sel24 s) {
  const __m256 lo = _mm256_permutevar8x32_ps(v8load(b).v, s.idx);
  const __m256 hi = _mm256_permutevar8x32_ps(v8load(b + 8).v, s.idx);
  return {_mm256_blend_ps(lo, hi, 0xf0)};
}
template <typename T>
static inline Vec8 v8select24(const T* b, unsigned w) {
  return v8select24(b, v8sel24_index(w));
}
#else
struct Vec8 {
  float v[8];
};
static inline Vec8 v8zero() { return Vec8{{0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f}}; }
static inline Vec8 v8fma(Vec8 a, Vec8 b, Vec8 c) {
  Vec8 r;
  for (int i = 0; i < 8; ++i) r.v[i] = a.v[i] * b.v[i] + c.v[i];
  return r;
}
static inline Vec8 v8add(Vec8 a, Vec8 b) {
  Vec8 r;
  for (int i = 0; i < 8; ++i) r.v[i] = a.v[i] + b.v[i];
  return r;
}
static inline float v8hsum(Vec8 a) {
  return ((a.v[0] + a.v[1]) + (a.v[2] + a.v[3])) + ((a.v[4] + a.v[5]) + (a.v[6] + a.v[7]));
}
template <typename T>
static inline Vec8 v8load(const T* p) {
  Vec8 r;
  for (int i = 0; i < 8; ++i) r.v[i] = to_float(p[i]);
  return r;
}
template <typename T>
static inline Vec8 v8load_partial(const T* p, int n) {
  Vec8 r = v8zero();
  for (int i = 0; i < n; ++i) r.v[i] = to_float(p[i]);
  return r;
}
template <typename T>
static inline Vec8 v8expand(const T* p, unsigned byte) {
  Vec8 r;
  int next = 0;
  for (int l = 0; l < 8; ++l) r.v[l] = (byte >> l) & 1 ? to_float(p[next++]) : 0.f;
  return r;
}
template <typename T>
static inline Vec8 v8expand_full(const T* p, unsigned byte) {
  return v8expand(p, byte);
}
template <typename T>
static inline Vec8 v8expand_full_permute2(const T* p, unsigned byte) {
  return v8expand(p, byte);
}
static inline void v8store_set_positions(int32_t* out, unsigned byte, int32_t base, int32_t scale) {
  int next = 0;
  for (int l = 0; l < 8; ++l)
    if ((byte >> l) & 1) out[next++] = (base + l) * scale;
  for (; next < 8; ++next) out[next] = base * scale;
}
static inline void v8store_sparse24_offsets(int32_t* out, unsigned word, int32_t scale) {
  for (int g = 0; g < 4; ++g) {
    const unsigned nib = (word >> (4 * g)) & 0xfu;
    out[2 * g] = int32_t(4 * g + (nib & 3u)) * scale;
    out[2 * g + 1] = int32_t(4 * g + (nib >> 2)) * scale;
  }
}
static inline Vec8 v8hsum8(const Vec8* r) {
  Vec8 s;
  for (int i = 0; i < 8; ++i) s.v[i] = v8hsum(r[i]);
  return s;
}
static inline Vec8 v8loadf(const float* p) {
  Vec8 r;
  for (int i = 0; i < 8; ++i) r.v[i] = p[i];
  return r;
}
static inline void v8storef(float* p, Vec8 a) {
  for (int i = 0; i < 8; ++i) p[i] = a.v[i];
}
struct Sel24 {
  int pos[8];
};
static inline Sel24 v8sel24_index(unsigned w) {
  Sel24 s;
  for (int l = 0; l < 8; ++l) s.pos[l] = 4 * (l / 2) + int((w >> (2 * l)) & 3u);
  return s;
}
static inline void v8sel24_index2(uint32_t two, Sel24& s0, Sel24& s1) {
  s0 = v8sel24_index(two & 0xffffu);
  s1 = v8sel24_index(two >> 16);
}
template <typename T>
static inline Vec8 v8select24(const T* b, Sel24 s) {
  Vec8 r;
  for (int l = 0; l < 8; ++l) r.v[l] = to_float(b[s.pos[l]]);
  return r;
}
template <typename T>
static inline Vec8 v8select24(const T* b, unsigned w) {
  return v8select24(b, v8sel24_index(w));
}
#endif

// The last r (1 .. 4 kW) columns of a panel, in one pass: NV vectors, the last
// one whole or of `last` lanes (kPartial). with_tail(r, f) calls f(Tail<NV,
// kPartial>{last}) for the NV and kPartial that r needs, so a kernel writes its
// tail pass once (a pass per vector, and columns past the last whole vector
// one by one, cost 1.2-3.7x at n = 4 or 24: docs/performance.md).
template <int NV, bool kPartial>
struct Tail {
  static constexpr int kNV = NV;
  static constexpr int kFull = kPartial ? NV - 1 : NV;  // whole vectors
  int last;                                             // lanes of the last vector (kW unless kPartial)
  void zero(VecF (&c)[NV]) const {
    for (int u = 0; u < NV; ++u) c[u] = vzero();
  }
  template <typename T>
  void load(const T* p, VecF (&c)[NV]) const {
    for (int u = 0; u < kFull; ++u) c[u] = vload(p + u * kW);
    if (kPartial) c[NV - 1] = vload_partial(p + (NV - 1) * kW, last);
  }
  template <typename T>
  void fma(VecF v, const T* row, VecF (&c)[NV]) const {  // c += v * row[0 .. columns)
    for (int u = 0; u < kFull; ++u) c[u] = vfma(v, vload(row + u * kW), c[u]);
    if (kPartial) c[NV - 1] = vfma(v, vload_partial(row + (NV - 1) * kW, last), c[NV - 1]);
  }
  template <typename T>
  void store(T* p, const VecF (&c)[NV]) const {
    for (int u = 0; u < kFull; ++u) vstore(p + u * kW, c[u]);
    if (kPartial) vstore_partial(p + (NV - 1) * kW, c[NV - 1], last);
  }
};
template <typename F>
static inline void with_tail(int r, const F& f) {
  const int nv = (r + kW - 1) / kW, last = r - (nv - 1) * kW;
  switch (nv * 2 + (last < kW)) {
    case 2: f(Tail<1, false>{kW}); break;
    case 3: f(Tail<1, true>{last}); break;
    case 4: f(Tail<2, false>{kW}); break;
    case 5: f(Tail<2, true>{last}); break;
    case 6: f(Tail<3, false>{kW}); break;
    case 7: f(Tail<3, true>{last}); break;
    case 8: f(Tail<4, false>{kW}); break;
    default: f(Tail<4, true>{last}); break;
  }
}

// The SpMM kernels' fused bias (the *SpmmArgs::bias of kernels.h): c[u] += bias[i] for each of an output row's
// fp32 sums just before they are rounded to T, so out = round(A @ b + bias) is rounded once (an added pass
// out + bias would round twice: up to 2x the error of torch's own F.linear in bf16). No bias: c unchanged.
template <typename T, int NV>
static inline void add_row_bias(const T* bias, int64_t i, VecF (&c)[NV]) {
  if (!bias) return;
  const VecF vb = vset1(to_float(bias[i]));
  for (int u = 0; u < NV; ++u) c[u] = vadd(c[u], vb);
}

// An fp32 scratch row to its output row: dst[0 .. n) = src[0 .. n) (+ *bias, the row's entry of the fused bias,
// unless bias is nullptr), rounded to T.
template <typename T>
static inline void store_row_sums(T* dst, const float* src, int64_t n, const T* bias) {
  int64_t j = 0;
  if (bias) {
    const VecF vb = vset1(to_float(*bias));
    for (; j + kW <= n; j += kW) vstore(dst + j, vadd(vload(src + j), vb));
    if (j < n) vstore_partial(dst + j, vadd(vload_partial(src + j, int(n - j)), vb), int(n - j));
    return;
  }
  for (; j + kW <= n; j += kW) vstore(dst + j, vload(src + j));
  if (j < n) vstore_partial(dst + j, vload_partial(src + j, int(n - j)), int(n - j));
}

// dot(a[0..d), b[0..d)) in fp32: 4 independent vector accumulators, then single
// vectors, then a scalar tail (d need not be a multiple of kW). Used by the SDDMM kernels.
template <typename T>
static inline float vdot(const T* a, const T* b, int64_t d) {
  int64_t j = 0;
  VecF s0 = vzero();
  if (d >= 4 * kW) {
    VecF s1 = vzero(), s2 = vzero(), s3 = vzero();
    for (; j + 4 * kW <= d; j += 4 * kW) {
      s0 = vfma(vload(a + j), vload(b + j), s0);
      s1 = vfma(vload(a + j + kW), vload(b + j + kW), s1);
      s2 = vfma(vload(a + j + 2 * kW), vload(b + j + 2 * kW), s2);
      s3 = vfma(vload(a + j + 3 * kW), vload(b + j + 3 * kW), s3);
    }
    s0 = vadd(vadd(s0, s1), vadd(s2, s3));
  }
  for (; j + kW <= d; j += kW) s0 = vfma(vload(a + j), vload(b + j), s0);
  float acc = vhsum(s0);
  for (; j < d; ++j) acc += to_float(a[j]) * to_float(b[j]);
  return acc;
}

#if defined(__AVX512BF16__)
// bf16 under avx512bf16 (the SDDMM kernels' copy compiled with -mavx512bf16):
// vdot / vdot4 / vdot4_pairs by vdpbf16ps, 32 bf16 (16 pairs) per instruction
// and no widening; the last < 32 elements by masked loads (zeros add nothing).
// Each add rounds to nearest even; subnormal inputs and results are zero.
// Plain overloads: for bf16_t they are chosen over the templates.
static inline __m512bh bf16_load32(const bf16_t* p, int64_t left) {
  const __mmask32 m = left >= 32 ? ~__mmask32(0) : __mmask32((uint32_t(1) << left) - 1u);
  return (__m512bh)_mm512_maskz_loadu_epi16(m, p);
}
static inline float vdot(const bf16_t* a, const bf16_t* b, int64_t d) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  int64_t j = 0;
  for (; j + 64 <= d; j += 64) {
    s0 = _mm512_dpbf16_ps(s0, bf16_load32(a + j, 32), bf16_load32(b + j, 32));
    s1 = _mm512_dpbf16_ps(s1, bf16_load32(a + j + 32, 32), bf16_load32(b + j + 32, 32));
  }
  for (; j < d; j += 32) s0 = _mm512_dpbf16_ps(s0, bf16_load32(a + j, d - j), bf16_load32(b + j, d - j));
  return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}
static inline void vdot4(const bf16_t* x, const bf16_t* y0, const bf16_t* y1, const bf16_t* y2, const bf16_t* y3,
                         int64_t d, float* r) {
  __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  for (int64_t j = 0; j < d; j += 32) {
    const __m512bh xv = bf16_load32(x + j, d - j);
    s0 = _mm512_dpbf16_ps(s0, xv, bf16_load32(y0 + j, d - j));
    s1 = _mm512_dpbf16_ps(s1, xv, bf16_load32(y1 + j, d - j));
    s2 = _mm512_dpbf16_ps(s2, xv, bf16_load32(y2 + j, d - j));
    s3 = _mm512_dpbf16_ps(s3, xv, bf16_load32(y3 + j, d - j));
  }
  vhsum4(VecF{s0}, VecF{s1}, VecF{s2}, VecF{s3}, r);
}
static inline void vdot4_pairs(const bf16_t* const* x, const bf16_t* const* y, int64_t d, float* r) {
  __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  for (int64_t j = 0; j < d; j += 32) {
    s0 = _mm512_dpbf16_ps(s0, bf16_load32(x[0] + j, d - j), bf16_load32(y[0] + j, d - j));
    s1 = _mm512_dpbf16_ps(s1, bf16_load32(x[1] + j, d - j), bf16_load32(y[1] + j, d - j));
    s2 = _mm512_dpbf16_ps(s2, bf16_load32(x[2] + j, d - j), bf16_load32(y[2] + j, d - j));
    s3 = _mm512_dpbf16_ps(s3, bf16_load32(x[3] + j, d - j), bf16_load32(y[3] + j, d - j));
  }
  vhsum4(VecF{s0}, VecF{s1}, VecF{s2}, VecF{s3}, r);
}
#endif

// r[q] = dot(x[0..d), yq[0..d)), q = 0..3, in fp32: each vector of x is loaded
// once for the four y rows and the four dot products run as independent FMA
// chains (two per product when d >= 2 kW: 8 chains), one vhsum4 at the end,
// then a scalar tail. Used by the SDDMM kernels for entries that share a row.
template <typename T>
static inline void vdot4(const T* x, const T* y0, const T* y1, const T* y2, const T* y3, int64_t d, float* r) {
  VecF s0 = vzero(), s1 = vzero(), s2 = vzero(), s3 = vzero();
  int64_t j = 0;
  if (d >= 2 * kW) {
    VecF t0 = vzero(), t1 = vzero(), t2 = vzero(), t3 = vzero();
    for (; j + 2 * kW <= d; j += 2 * kW) {
      const VecF xa = vload(x + j), xb = vload(x + j + kW);
      s0 = vfma(xa, vload(y0 + j), s0);
      s1 = vfma(xa, vload(y1 + j), s1);
      s2 = vfma(xa, vload(y2 + j), s2);
      s3 = vfma(xa, vload(y3 + j), s3);
      t0 = vfma(xb, vload(y0 + j + kW), t0);
      t1 = vfma(xb, vload(y1 + j + kW), t1);
      t2 = vfma(xb, vload(y2 + j + kW), t2);
      t3 = vfma(xb, vload(y3 + j + kW), t3);
    }
    s0 = vadd(s0, t0);
    s1 = vadd(s1, t1);
    s2 = vadd(s2, t2);
    s3 = vadd(s3, t3);
  }
  for (; j + kW <= d; j += kW) {
    const VecF xv = vload(x + j);
    s0 = vfma(xv, vload(y0 + j), s0);
    s1 = vfma(xv, vload(y1 + j), s1);
    s2 = vfma(xv, vload(y2 + j), s2);
    s3 = vfma(xv, vload(y3 + j), s3);
  }
  vhsum4(s0, s1, s2, s3, r);
  for (; j < d; ++j) {
    const float xv = to_float(x[j]);
    r[0] += xv * to_float(y0[j]);
    r[1] += xv * to_float(y1[j]);
    r[2] += xv * to_float(y2[j]);
    r[3] += xv * to_float(y3[j]);
  }
}

// r[q] = dot(xq[0..d), yq[0..d)), q = 0..3: four unrelated products (no shared
// row), otherwise as vdot4. Used where consecutive entries lie in different rows.
template <typename T>
static inline void vdot4_pairs(const T* const* x, const T* const* y, int64_t d, float* r) {
  VecF s0 = vzero(), s1 = vzero(), s2 = vzero(), s3 = vzero();
  int64_t j = 0;
  if (d >= 2 * kW) {
    VecF t0 = vzero(), t1 = vzero(), t2 = vzero(), t3 = vzero();
    for (; j + 2 * kW <= d; j += 2 * kW) {
      s0 = vfma(vload(x[0] + j), vload(y[0] + j), s0);
      s1 = vfma(vload(x[1] + j), vload(y[1] + j), s1);
      s2 = vfma(vload(x[2] + j), vload(y[2] + j), s2);
      s3 = vfma(vload(x[3] + j), vload(y[3] + j), s3);
      t0 = vfma(vload(x[0] + j + kW), vload(y[0] + j + kW), t0);
      t1 = vfma(vload(x[1] + j + kW), vload(y[1] + j + kW), t1);
      t2 = vfma(vload(x[2] + j + kW), vload(y[2] + j + kW), t2);
      t3 = vfma(vload(x[3] + j + kW), vload(y[3] + j + kW), t3);
    }
    s0 = vadd(s0, t0);
    s1 = vadd(s1, t1);
    s2 = vadd(s2, t2);
    s3 = vadd(s3, t3);
  }
  for (; j + kW <= d; j += kW) {
    s0 = vfma(vload(x[0] + j), vload(y[0] + j), s0);
    s1 = vfma(vload(x[1] + j), vload(y[1] + j), s1);
    s2 = vfma(vload(x[2] + j), vload(y[2] + j), s2);
    s3 = vfma(vload(x[3] + j), vload(y[3] + j), s3);
  }
  vhsum4(s0, s1, s2, s3, r);
  for (; j < d; ++j)
    for (int q = 0; q < 4; ++q) r[q] += to_float(x[q][j]) * to_float(y[q][j]);
}

SK_CPU_NAMESPACE_END
