// CSR SpMM on the CPU: out[i, :] = sum_p values[p] * b[col_idx[p], :] over row i.
//
// The metadata checks are fused into the kernel (docs/design.md, Validation):
// before a row is used, 0 <= row_ptr[i] <= row_ptr[i+1] <= nnz; every column
// of the row must be < k, checked inside the gathers for n == 1 with a
// contiguous b and int32 indices (a bad column is clamped to a valid row of b
// and flagged: row_dot_checked), for n >= 2 a chunk of 64 at a time just
// before the chunk's products (row_chunks), else (n == 1 otherwise) by one
// pass over the row's indices first. A bad row stops the chunk
// and is reported through *first_bad; the glue then runs the full validator
// for the exact message.
//
// Decode path (n <= 16): one template per n keeps the n output columns of a row
// in registers (n / kW vectors plus one partial vector), with 2 or 4
// independent accumulator sets when n needs only 1 or 2 vectors, so the FMAs do
// not wait on each other. n == 1 with a contiguous b: kW products per step,
// b gathered by column, four accumulators. n > 16: rows_wide.
#include "kernels/cpu/kernels.h"
#include "kernels/cpu/scratch.h"
#include "kernels/cpu/simd.h"

SK_CPU_NAMESPACE_BEGIN

namespace {

// Whether row i's pointers are sane: 0 <= row_ptr[i] <= row_ptr[i+1] <= nnz.
template <typename T, typename I>
static inline bool row_span(const CsrSpmmArgs<T, I>& a, int64_t i, int64_t& p0, int64_t& p1) {
  p0 = int64_t(a.row_ptr[i]);
  p1 = int64_t(a.row_ptr[i + 1]);
  return p0 >= 0 && p0 <= p1 && p1 <= a.nnz;
}

// row_span, and every column of the row in [0, k).
template <typename T, typename I>
static inline bool row_ok(const CsrSpmmArgs<T, I>& a, int64_t i, int64_t& p0, int64_t& p1) {
  return row_span(a, i, p0, p1) && cols_in_range(a.col_idx + p0, p1 - p0, a.k);
}

// n == 1: sparse dot product of a row with b[:, 0] (row stride ldb).
template <typename T, typename I>
static float row_dot(const CsrSpmmArgs<T, I>& a, int64_t p0, int64_t p1) {
  const T* v = a.values;
  const I* ci = a.col_idx;
  const T* b = a.b;
  int64_t p = p0;
  float s = 0.f;
  if (a.ldb == 1) {
    VecF c0 = vzero(), c1 = vzero(), c2 = vzero(), c3 = vzero();
    for (; p + 4 * kW <= p1; p += 4 * kW) {
      c0 = vfma(vload(v + p), vgather(b, ci + p), c0);
      c1 = vfma(vload(v + p + kW), vgather(b, ci + p + kW), c1);
      c2 = vfma(vload(v + p + 2 * kW), vgather(b, ci + p + 2 * kW), c2);
      c3 = vfma(vload(v + p + 3 * kW), vgather(b, ci + p + 3 * kW), c3);
    }
    for (; p + kW <= p1; p += kW) c0 = vfma(vload(v + p), vgather(b, ci + p), c0);
    s = vhsum(vadd(vadd(c0, c1), vadd(c2, c3)));
    float t0 = 0.f, t1 = 0.f;
    for (; p + 2 <= p1; p += 2) {
      t0 += to_float(v[p]) * to_float(b[ci[p]]);
      t1 += to_float(v[p + 1]) * to_float(b[ci[p + 1]]);
    }
    if (p < p1) t0 += to_float(v[p]) * to_float(b[ci[p]]);
    return s + (t0 + t1);
  }
  const int64_t ldb = a.ldb;
  float acc0 = 0.f, acc1 = 0.f, acc2 = 0.f, acc3 = 0.f;
  for (; p + 4 <= p1; p += 4) {
    acc0 += to_float(v[p]) * to_float(b[int64_t(ci[p]) * ldb]);
    acc1 += to_float(v[p + 1]) * to_float(b[int64_t(ci[p + 1]) * ldb]);
    acc2 += to_float(v[p + 2]) * to_float(b[int64_t(ci[p + 2]) * ldb]);
    acc3 += to_float(v[p + 3]) * to_float(b[int64_t(ci[p + 3]) * ldb]);
  }
  for (; p < p1; ++p) acc0 += to_float(v[p]) * to_float(b[int64_t(ci[p]) * ldb]);
  return (acc0 + acc1) + (acc2 + acc3);
}

// One product of the decode path: acc += values[p] * b[col_idx[p], 0 .. N).
template <int N, typename T, typename I>
static inline void product_small_n(const CsrSpmmArgs<T, I>& a, int64_t p, VecF* acc) {
  constexpr int NF = N / kW, R = N % kW;
  const VecF v = vset1(to_float(a.values[p]));
  const T* brow = a.b + int64_t(a.col_idx[p]) * a.ldb;
  for (int u = 0; u < NF; ++u) acc[u] = vfma(v, vload(brow + u * kW), acc[u]);
  if constexpr (R > 0) acc[NF] = vfma(v, vload_head<R>(brow + NF * kW), acc[NF]);
}

// The stored entries [p0, p1) of a row in chunks of kCheckChunk: each
// chunk's columns are checked just before body(c0, ce) uses them (its indices
// are then in L1 for the gathers), and the value and index streams are
// prefetched kStreamAheadBytes ahead; false at the first chunk with a bad
// column (body has not seen it). Against a checking pass over the whole row
// first, measured in one process (alternating, median of 9, fp32, 2 threads,
// 4096^2, n <= 16): 70 % n = 4 2.43 -> 1.94 ms and n = 16 3.25 -> 2.89 (the
// check alone), with the prefetch a further 7-17 % (n = 16 70 % 3.32 -> 2.77,
// 90 % 1.15 -> 0.98).
constexpr int64_t kCheckChunk = 64;
constexpr int64_t kStreamAheadBytes = 4096;
template <typename T, typename I, typename F>
static inline bool row_chunks(const CsrSpmmArgs<T, I>& a, int64_t p0, int64_t p1, const F& body) {
  for (int64_t c0 = p0; c0 < p1; c0 += kCheckChunk) {
    const int64_t ce = p1 - c0 < kCheckChunk ? p1 : c0 + kCheckChunk;
    if (!cols_in_range(a.col_idx + c0, ce - c0, a.k)) return false;
    // prefetches never fault, so running past the arrays' end is harmless
    const char* v_ahead = reinterpret_cast<const char*>(a.values + c0) + kStreamAheadBytes;
    const char* c_ahead = reinterpret_cast<const char*>(a.col_idx + c0) + kStreamAheadBytes;
    for (int64_t off = 0; off < kCheckChunk * int64_t(sizeof(T)); off += 64) __builtin_prefetch(v_ahead + off);
    for (int64_t off = 0; off < kCheckChunk * int64_t(sizeof(I)); off += 64) __builtin_prefetch(c_ahead + off);
    body(c0, ce);
  }
  return true;
}


// c[s] += values[p + s] * b[col_idx[p + s], columns of t] over [c0, ce) in
// steps of S (then single products into c[0]): S independent accumulator sets
// so that the FMAs of a row do not wait on each other. t: a Tail (simd.h).
template <int S, typename Tl, typename T, typename I>
static inline void tail_products(const CsrSpmmArgs<T, I>& a, const Tl& t, const T* bcol, int64_t ldb, int64_t c0,
                                 int64_t ce, VecF (&c)[S][Tl::kNV]) {
  int64_t p = c0;
  for (; p + S <= ce; p += S)
    for (int s = 0; s < S; ++s)
      t.fma(vset1(to_float(a.values[p + s])), bcol + int64_t(a.col_idx[p + s]) * ldb, c[s]);
  for (; p < ce; ++p) t.fma(vset1(to_float(a.values[p])), bcol + int64_t(a.col_idx[p]) * ldb, c[0]);
}

// 2 <= N <= 16: the row's N columns in NF full vectors plus one partial of R
// lanes, S independent accumulator sets; the row checked by row_chunks.
template <int N, typename T, typename I>
static int64_t rows_small_n(const CsrSpmmArgs<T, I>& a, int64_t begin, int64_t end) {
  constexpr int NF = N / kW, R = N % kW, NV = NF + (R ? 1 : 0);
  constexpr int S = NV == 1 ? 4 : (NV == 2 ? 2 : 1);
  static_assert(kCheckChunk % S == 0, "a chunk holds whole steps of S products");
  for (int64_t i = begin; i < end; ++i) {
    int64_t p0, p1;
    if (!row_span(a, i, p0, p1)) return i;
    VecF acc[S][NV];
    for (int s = 0; s < S; ++s)
      for (int u = 0; u < NV; ++u) acc[s][u] = vzero();
    const bool ok = row_chunks(a, p0, p1, [&](int64_t c0, int64_t ce) {
      int64_t p = c0;
      for (; p + S <= ce; p += S)
        for (int s = 0; s < S; ++s) product_small_n<N>(a, p + s, acc[s]);
      for (; p < ce; ++p) product_small_n<N>(a, p, acc[0]);
    });
    if (!ok) return i;
    for (int s = 1; s < S; ++s)
      for (int u = 0; u < NV; ++u) acc[0][u] = vadd(acc[0][u], acc[s][u]);
    add_row_bias(a.bias, i, acc[0]);
    T* out = a.out + i * a.ldo;
    for (int u = 0; u < NF; ++u) vstore(out + u * kW, acc[0][u]);
    if (R) vstore_partial(out + NF * kW, acc[0][NF], R);
  }
  return -1;
}

// n == 1, contiguous b, int32 indices, 1 <= k < 2^31: the column check is
// fused into the gathers (vgather_below reads a valid row of b for a bad
// index and flags it), so the row's indices are read once, with its values
// (a separate checking pass cost ~25 % of the time). False on a bad column.
template <typename T>
static bool row_dot_checked(const CsrSpmmArgs<T, int32_t>& a, int64_t p0, int64_t p1, float& sum) {
  const T* v = a.values;
  const int32_t* ci = a.col_idx;
  const uint32_t uk = uint32_t(a.k);
  IdxFlags flags;
  VecF c0 = vzero(), c1 = vzero(), c2 = vzero(), c3 = vzero();
  int64_t p = p0;
  for (; p + 4 * kW <= p1; p += 4 * kW) {
    c0 = vfma(vload(v + p), vgather_below(a.b, ci + p, uk, flags), c0);
    c1 = vfma(vload(v + p + kW), vgather_below(a.b, ci + p + kW, uk, flags), c1);
    c2 = vfma(vload(v + p + 2 * kW), vgather_below(a.b, ci + p + 2 * kW, uk, flags), c2);
    c3 = vfma(vload(v + p + 3 * kW), vgather_below(a.b, ci + p + 3 * kW, uk, flags), c3);
  }
  for (; p + kW <= p1; p += kW) c0 = vfma(vload(v + p), vgather_below(a.b, ci + p, uk, flags), c0);
  float t = 0.f;
  uint32_t bad = 0;
  for (; p < p1; ++p) {  // fewer than kW left
    const uint32_t u = uint32_t(ci[p]);
    bad |= uint32_t(u >= uk);
    t += to_float(v[p]) * to_float(a.b[u < uk ? u : 0]);
  }
  sum = vhsum(vadd(vadd(c0, c1), vadd(c2, c3))) + t;
  return bad == 0 && !idx_flags_any(flags);
}

template <typename T, typename I>
static int64_t rows_n1(const CsrSpmmArgs<T, I>& a, int64_t begin, int64_t end) {
  if constexpr (sizeof(I) == 4) {
    if (a.ldb == 1 && a.k >= 1 && a.k < (int64_t(1) << 31)) {
      for (int64_t i = begin; i < end; ++i) {
        const int64_t p0 = int64_t(a.row_ptr[i]), p1 = int64_t(a.row_ptr[i + 1]);
        float sum;
        if (!(p0 >= 0 && p0 <= p1 && p1 <= a.nnz) || !row_dot_checked(a, p0, p1, sum)) return i;
        a.out[i * a.ldo] = from_float<T>(a.bias ? sum + to_float(a.bias[i]) : sum);
      }
      return -1;
    }
  }
  for (int64_t i = begin; i < end; ++i) {
    int64_t p0, p1;
    if (!row_ok(a, i, p0, p1)) return i;
    const float sum = row_dot(a, p0, p1);
    a.out[i * a.ldo] = from_float<T>(a.bias ? sum + to_float(a.bias[i]) : sum);
  }
  return -1;
}

// n > 16: columns in blocks of 8 vectors, the block outermost: a block of b
// (k x 8 vectors, copied contiguous when b's rows are far apart: see
// kPackMinRowBytes) stays in cache while every row of the range uses it (the
// rows' b rows are random, so without blocking each product misses the cache
// for wide n). A whole block is one panel of 8 accumulators (8 independent FMA
// chains per non-zero); a partial last block takes panels of 4 vectors,
// then one pass for the rest (with_tail). A row's first pass in each block
// checks it (row_chunks).
// The copy of a column block (kPackMinRowBytes), measured on 4096^2, 2
// threads, alternating processes, min of 3-7 calls: 95 % n = 2048 154-158 ->
// 108-116 ms, n = 512 25-63 -> 20-22 ms, 70 % n = 1024 438-460 -> 291-503 ms;
// n = 256 a tie (12-15 against 11-13 ms) and n = 64 slower (2.2-2.4 -> 3.2-3.3
// ms: b is contiguous there already).
template <typename T, typename I>
static int64_t rows_wide(const CsrSpmmArgs<T, I>& a, int64_t begin, int64_t end) {
  constexpr int64_t kBlock = 8 * kW;
  static thread_local FloatBuffer packed;
  const bool pack = a.ldb * int64_t(sizeof(T)) >= kPackMinRowBytes &&
                    packed.reserve((a.k * kBlock * int64_t(sizeof(T)) + 3) / 4);
  for (int64_t j0 = 0; j0 < a.n; j0 += kBlock) {
    const int64_t jn = a.n - j0 < kBlock ? a.n : j0 + kBlock;
    // b's columns [j0, jn): rows ldb apart from bblk (column j at bblk + j - j0)
    const T* bblk = a.b + j0;
    int64_t ldb = a.ldb;
    if (pack) {
      T* dst = reinterpret_cast<T*>(packed.data);
      const int64_t w = jn - j0;
      copy_column_block(a.b, a.ldb, a.k, j0, w, dst);
      bblk = dst;
      ldb = w;
    }
    for (int64_t i = begin; i < end; ++i) {
      int64_t p0, p1;
      if (!row_span(a, i, p0, p1)) return i;
      // the row's first pass in each block goes through row_chunks (checked,
      // and its streams prefetched: they come from memory); the other passes
      // find the row in cache
      bool first = true;
      const auto pass = [&](const auto& body) {
        if (!first) return body(p0, p1), true;
        first = false;
        return row_chunks(a, p0, p1, body);
      };
      T* out = a.out + i * a.ldo;
      int64_t j = j0;
      if (jn - j0 == kBlock) {
        VecF c[8];
        for (int u = 0; u < 8; ++u) c[u] = vzero();
        const bool ok = pass([&](int64_t c0, int64_t ce) {
          for (int64_t p = c0; p < ce; ++p) {
            const VecF v = vset1(to_float(a.values[p]));
            const T* brow = bblk + int64_t(a.col_idx[p]) * ldb;
            for (int u = 0; u < 8; ++u) c[u] = vfma(v, vload(brow + u * kW), c[u]);
          }
        });
        if (!ok) return i;
        add_row_bias(a.bias, i, c);
        for (int u = 0; u < 8; ++u) vstore(out + j + u * kW, c[u]);
        continue;
      }
      for (; j + 4 * kW <= jn; j += 4 * kW) {
        VecF c0 = vzero(), c1 = vzero(), c2 = vzero(), c3 = vzero();
        const bool ok = pass([&](int64_t q0, int64_t qe) {
          for (int64_t p = q0; p < qe; ++p) {
            const VecF v = vset1(to_float(a.values[p]));
            const T* brow = bblk + int64_t(a.col_idx[p]) * ldb + (j - j0);
            c0 = vfma(v, vload(brow), c0);
            c1 = vfma(v, vload(brow + kW), c1);
            c2 = vfma(v, vload(brow + 2 * kW), c2);
            c3 = vfma(v, vload(brow + 3 * kW), c3);
          }
        });
        if (!ok) return i;
        if (a.bias) {
          const VecF vb = vset1(to_float(a.bias[i]));
          c0 = vadd(c0, vb), c1 = vadd(c1, vb), c2 = vadd(c2, vb), c3 = vadd(c3, vb);
        }
        vstore(out + j, c0);
        vstore(out + j + kW, c1);
        vstore(out + j + 2 * kW, c2);
        vstore(out + j + 3 * kW, c3);
      }
      // the last < 4 vectors of columns in one pass over the row (separate
      // passes per vector re-read the row: n = 32 on AVX-512 took 1.4x the
      // AVX2 kernel's time), with 4 / NV accumulator sets for NV <= 2 vectors
      // (one set made each product wait on the last one's FMA: n = 17 on
      // AVX-512 took 2.4x the time of n = 16)
      if (j < jn) {
        const T* bcol = bblk + (j - j0);
        bool ok = true;
        with_tail(int(jn - j), [&](auto t) {
          constexpr int NV = decltype(t)::kNV, S = NV == 1 ? 4 : (NV == 2 ? 2 : 1);
          VecF c[S][NV];
          for (int s = 0; s < S; ++s) t.zero(c[s]);
          ok = pass([&](int64_t q0, int64_t qe) { tail_products<S>(a, t, bcol, ldb, q0, qe, c); });
          if (!ok) return;
          for (int s = 1; s < S; ++s)
            for (int u = 0; u < NV; ++u) c[0][u] = vadd(c[0][u], c[s][u]);
          add_row_bias(a.bias, i, c[0]);
          t.store(out + j, c[0]);
        });
        if (!ok) return i;
      }
    }
  }
  return -1;
}

}  // namespace

template <typename T, typename I>
void csr_spmm(const CsrSpmmArgs<T, I>& a, int64_t begin, int64_t end, int64_t* first_bad) {
  int64_t bad = -1;
  switch (a.n) {
    case 1: bad = rows_n1(a, begin, end); break;
#define SK_CASE(N) \
  case N: bad = rows_small_n<N>(a, begin, end); break;
    SK_CASE(2) SK_CASE(3) SK_CASE(4) SK_CASE(5) SK_CASE(6) SK_CASE(7) SK_CASE(8) SK_CASE(9)
    SK_CASE(10) SK_CASE(11) SK_CASE(12) SK_CASE(13) SK_CASE(14) SK_CASE(15) SK_CASE(16)
#undef SK_CASE
    default: bad = rows_wide(a, begin, end); break;
  }
  *first_bad = bad;
}

#define SK_INSTANTIATE(T, I) \
  template void csr_spmm<T, I>(const CsrSpmmArgs<T, I>&, int64_t, int64_t, int64_t*);
SK_INSTANTIATE(float, int32_t)
SK_INSTANTIATE(float, int64_t)
SK_INSTANTIATE(half_t, int32_t)
SK_INSTANTIATE(half_t, int64_t)
SK_INSTANTIATE(bf16_t, int32_t)
SK_INSTANTIATE(bf16_t, int64_t)
#undef SK_INSTANTIATE

SK_CPU_NAMESPACE_END
