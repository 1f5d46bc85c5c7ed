// 2:4 SpMM on the CPU: row i of out is the sum over the groups g of row i of
// values[i, 2g] * b[4g + idx0, :] + values[i, 2g+1] * b[4g + idx1, :], the two
// 2-bit positions read from meta (docs/formats.md). Groups wholly past k are
// not visited; in the one group that straddles k, positions >= k are skipped.
//
// The metadata check is fused (docs/design.md, Validation): before a row is
// used, each of its meta words (padding words included) is checked to hold
// strictly increasing positions (meta_row_ok, bit arithmetic on 16 words at
// a time); a bad row stops the chunk and is reported through *first_bad.
//
// n == 1, contiguous b: per meta word (16 columns, 8 values), the 16 b values
// are loaded contiguously and the 8 selected by the positions are picked with
// two permutes (v8select24), one FMA per 8 values. 2 <= n <= 8 with a finite
// b: the expansion (rows_expand: each meta byte's 4 values expanded into
// their 8 columns, N FMAs against a transposed fp32 copy of b shared by a
// block of rows). 2 <= n <= 3 otherwise: the select per column of b, from a
// per-call transposed fp32 copy of b (row_select_n).
// 4 <= n <= 16 (and 2-3 when the transposed copy cannot be allocated): the n
// output columns in registers (template per n), each value broadcast against
// its b row (b offsets from a table per meta byte), several accumulator sets,
// rows in tiles and k in chunks so that b's chunk stays in L1 (rows_small_n).
// n > 16: columns in panels of 8 vectors, each copied into a contiguous fp32
// buffer (zero past n), then the broadcast form on it with k in L1-sized
// chunks (rows_wide_packed); without the buffer, b's columns in blocks of 8
// vectors read in place.
#include <cstring>
#include <type_traits>

#include "kernels/cpu/kernels.h"
#include "kernels/cpu/scratch.h"
#include "kernels/cpu/simd.h"

SK_CPU_NAMESPACE_BEGIN

namespace {

// Sets bit 4j of bad when 4-bit group j of the four meta words in x does not
// hold strictly increasing positions. Per group, (idx1 | 4) - idx0 is
// 4 + idx1 - idx0 in [1, 7] (no borrow between groups); idx0 < idx1 exactly
// when that has bit 2 and one of bits 0, 1 set. Written for any integer or
// vector-of-integer type U.
template <typename U>
static inline void mark_bad_groups(U& bad, const U& x) {
  constexpr uint64_t k3 = 0x3333333333333333ull, k4 = 0x4444444444444444ull, k1 = 0x1111111111111111ull;
  const U d = (((x >> 2) & k3) | k4) - (x & k3);
  bad |= ((d >> 2) & (d | (d >> 1)) & k1) ^ k1;
}

// True when every group of the row's meta words holds strictly increasing
// positions: sixteen words per step as a vector of four 64-bit lanes (the
// compiler's vector extension, one ymm register under AVX2), then four words,
// then one, so the check is a small fraction of the row's arithmetic.
static inline bool meta_row_ok(const uint16_t* meta, int64_t words) {
  typedef uint64_t U64x4 __attribute__((vector_size(32)));
  U64x4 bad4 = {0, 0, 0, 0};
  int64_t w = 0;
  for (; w + 16 <= words; w += 16) {
    U64x4 x;
    std::memcpy(&x, meta + w, sizeof x);
    mark_bad_groups(bad4, x);
  }
  uint64_t bad = bad4[0] | bad4[1] | bad4[2] | bad4[3];
  for (; w + 4 <= words; w += 4) {
    uint64_t x;
    std::memcpy(&x, meta + w, sizeof x);
    mark_bad_groups(bad, x);
  }
  for (; w < words; ++w) {
    uint64_t one = 0;
    mark_bad_groups(one, uint64_t(meta[w]));
    bad |= one & 0x1111u;
  }
  return bad == 0;
}

// Calls f(column, value) for every stored element of a row that lies inside k,
// from group g0 on.
template <typename T, typename F>
static inline void for_each_entry(const T* vals, const uint16_t* meta, int64_t k, F&& f, int64_t g0 = 0) {
  const int64_t full = k / 4;
  for (int64_t g = g0; g < full; ++g) {
    const unsigned nib = (unsigned(meta[g >> 2]) >> ((g & 3) * 4)) & 0xfu;
    f(4 * g + (nib & 3u), vals[2 * g]);
    f(4 * g + (nib >> 2), vals[2 * g + 1]);
  }
  if (k % 4 != 0) {
    const int64_t g = full;
    const unsigned nib = (unsigned(meta[g >> 2]) >> ((g & 3) * 4)) & 0xfu;
    const int64_t c0 = 4 * g + (nib & 3u), c1 = 4 * g + (nib >> 2);
    if (c0 < k) f(c0, vals[2 * g]);
    if (c1 < k) f(c1, vals[2 * g + 1]);
  }
}

// n == 1: sparse dot product of a row with b[:, 0] (row stride ldb).
template <typename T>
static float row_dot(const T* vals, const uint16_t* meta, int64_t k, const T* b, int64_t ldb) {
  int64_t g = 0;
  float s = 0.f;
  if (ldb == 1) {
    const int64_t words = k / 16;  // words whose 16 columns all lie inside k
    Vec8 c0 = v8zero(), c1 = v8zero();
    int64_t w = 0;
    for (; w + 2 <= words; w += 2) {  // two words from one broadcast
      uint32_t two;
      std::memcpy(&two, meta + w, sizeof two);
      Sel24 s0, s1;
      v8sel24_index2(two, s0, s1);
      c0 = v8fma(v8load(vals + 8 * w), v8select24(b + 16 * w, s0), c0);
      c1 = v8fma(v8load(vals + 8 * w + 8), v8select24(b + 16 * w + 16, s1), c1);
    }
    if (w < words) {
      c0 = v8fma(v8load(vals + 8 * w), v8select24(b + 16 * w, meta[w]), c0);
      ++w;
    }
    s = v8hsum(v8add(c0, c1));
    g = 4 * w;
  }
  float acc = 0.f;
  for_each_entry(vals, meta, k, [&](int64_t col, T v) { acc += to_float(v) * to_float(b[col * ldb]); }, g);
  return s + acc;
}

// For row i of the row tile [i0, i1) working on the values [v0, v1) of its
// row (rows row_len values apart): prefetches the same range two rows on, or,
// past the tile's last row, the next chunk [v1, v_next) of its first rows. A
// row's chunk is a few cache lines, not a stream the hardware prefetcher
// follows across rows.
template <typename T>
static inline void prefetch_chunk_ahead(const T* values, int64_t row_len, int64_t i, int64_t i0, int64_t i1,
                                        int64_t v0, int64_t v1, int64_t v_next) {
  int64_t ip = i + 2;
  if (ip >= i1) {
    ip -= i1 - i0;
    v0 = v1;
    v1 = v_next;
  }
  const char* p = reinterpret_cast<const char*>(values + ip * row_len + v0);
  const char* pe = reinterpret_cast<const char*>(values + ip * row_len + v1);
  for (; p < pe; p += 64) __builtin_prefetch(p);
}

// 2 <= N <= 16, broadcast form: rows in tiles of kTileRows, k in chunks of
// kChunkWords meta words (256 rows of b, 16 KiB at n = 16 in fp32), the chunk
// outermost within a tile, so b's chunk stays in L1 while the tile's rows use
// it (without the chunks every row walks all of b, from L2). Per (row, chunk)
// the n sums live in registers (NF full vectors plus one partial of R lanes,
// S accumulator sets for independent FMA chains) and go through an fp32 tile
// between chunks, so half-precision outputs are rounded once.
constexpr int64_t kTileRows = 32;
// Meta words per chunk: 16 (256 rows of b) up to N = 16, fewer for the wide
// panels so that a chunk stays at 16 KiB of fp32 b.
template <int N>
constexpr int64_t chunk_words() {
  return N <= 16 ? 16 : (256 / N > 0 ? 256 / N : 1);
}

// Offsets (in elements of b) of the 4 values of a meta byte's two groups,
// relative to the byte's first column: tab[byte][l] = column(l) * ldb.
struct ByteOffsets {
  int32_t tab[256][4];
  explicit ByteOffsets(int32_t ldb) {
    for (int v = 0; v < 256; ++v) {
      tab[v][0] = int32_t(v & 3) * ldb;
      tab[v][1] = int32_t((v >> 2) & 3) * ldb;
      tab[v][2] = int32_t(4 + ((v >> 4) & 3)) * ldb;
      tab[v][3] = int32_t(4 + ((v >> 6) & 3)) * ldb;
    }
  }
};

// Adds the entries of meta words [w0, w1) of one row (and, when tail, those
// past the last whole word) times b to the N sums at acc (fp32; not read when
// first).
template <int N, typename T, typename B>
static inline void row_chunk_small_n(const Sparse24SpmmArgs<T>& a, const B* b, int64_t ldb, const ByteOffsets& bo,
                                     const T* vals, const uint16_t* meta, float* accp, int64_t w0, int64_t w1,
                                     bool first, bool tail) {
  constexpr int NF = N / kW, R = N % kW, NV = NF + (R ? 1 : 0);
  constexpr int S = NV <= 2 ? 4 : NV <= 4 ? 2 : 1;
  VecF acc[S][NV];
  for (int s = 0; s < S; ++s)
    for (int u = 0; u < NV; ++u) acc[s][u] = vzero();
  if (!first) {
    for (int u = 0; u < NF; ++u) acc[0][u] = vload(accp + u * kW);
    if (R) acc[0][NF] = vload_partial(accp + NF * kW, R);
  }
  auto add = [&](int s, const B* brow, T v) {
    const VecF vv = vset1(to_float(v));
    for (int u = 0; u < NF; ++u) acc[s][u] = vfma(vv, vload(brow + u * kW), acc[s][u]);
    if constexpr (R > 0) acc[s][NF] = vfma(vv, vload_head<R>(brow + NF * kW), acc[s][NF]);
  };
  for (int64_t w = w0; w < w1; ++w) {
    const unsigned mw = meta[w];
    for (int h = 0; h < 2; ++h) {
      const int32_t* off = bo.tab[(mw >> (8 * h)) & 0xffu];
      const B* bh = b + (16 * w + 8 * h) * ldb;
      for (int l = 0; l < 4; ++l) add((4 * h + l) % S, bh + off[l], vals[8 * w + 4 * h + l]);
    }
  }
  if (tail) for_each_entry(vals, meta, a.k, [&](int64_t col, T v) { add(0, b + col * ldb, v); }, 4 * (a.k / 16));
  for (int s = 1; s < S; ++s)
    for (int u = 0; u < NV; ++u) acc[0][u] = vadd(acc[0][u], acc[s][u]);
  for (int u = 0; u < NF; ++u) vstore(accp + u * kW, acc[0][u]);
  if (R) vstore_partial(accp + NF * kW, acc[0][NF], R);
}

// Rows [begin, end) by the broadcast form; returns the first bad row or -1
// (a tile's rows are all checked before any is computed). The first ncols of
// the N sums of a row go to out (row stride a.ldo).
template <int N, typename T, typename B>
static int64_t rows_small_n(const Sparse24SpmmArgs<T>& a, const B* b, int64_t ldb, int64_t begin, int64_t end,
                            T* out, int64_t ncols) {
  constexpr int64_t kChunkWords = chunk_words<N>();
  const int64_t kp = (a.k + 15) / 16 * 16, words = a.k / 16;
  const ByteOffsets bo{int32_t(ldb)};
  alignas(64) float tile[kTileRows * N];
  for (int64_t i0 = begin; i0 < end; i0 += kTileRows) {
    const int64_t i1 = end - i0 < kTileRows ? end : i0 + kTileRows;
    for (int64_t i = i0; i < i1; ++i)
      if (!meta_row_ok(a.meta + i * (kp / 16), kp / 16)) return i;
    for (int64_t w0 = 0;; w0 += kChunkWords) {
      const int64_t w1 = words - w0 < kChunkWords ? words : w0 + kChunkWords;
      const bool last = w1 == words;
      for (int64_t i = i0; i < i1; ++i) {
        prefetch_chunk_ahead(a.values, kp / 2, i, i0, i1, 8 * w0, 8 * w1,
                             8 * (words - w1 < kChunkWords ? words : w1 + kChunkWords));
        row_chunk_small_n<N>(a, b, ldb, bo, a.values + i * (kp / 2), a.meta + i * (kp / 16), tile + (i - i0) * N,
                             w0, w1, w0 == 0, last);
      }
      if (last) break;
    }
    for (int64_t i = i0; i < i1; ++i) {
      float* sums = tile + (i - i0) * N;
      if (a.bias)  // the fused bias (simd.h, add_row_bias)
        for (int64_t j = 0; j < ncols; ++j) sums[j] += to_float(a.bias[i]);
      for (int64_t j = 0; j < ncols; ++j) out[i * a.ldo + j] = from_float<T>(sums[j]);
    }
  }
  return -1;
}

// One fp32 copy of b per thread, reused by every call: b transposed in 16-row
// blocks for the select form (n <= 3), or b widened from 16 bits for the
// broadcast form (n >= 4); a call uses one or the other.
__attribute__((noinline)) static FloatBuffer& thread_bt() {
  static thread_local FloatBuffer buf;
  return buf;
}

// The broadcast form on b as it is for fp32; a 16-bit b whose N is not a whole
// number of vectors is first widened to a per-call fp32 copy (k x N,
// thread-local): a partial 16-bit vector has no masked load on AVX2 and is
// assembled lane by lane (vload_partial), on every use. Measured with the
// register-built partial load, bf16 / fp16 at N = 4, 6, 12 (4096^2, 2
// threads): 20-40 % faster with the copy. (Before that load was fixed, bf16
// N = 4 ran 7x slower than fp32 without the copy.)
template <int N, typename T>
static int64_t rows_small_n(const Sparse24SpmmArgs<T>& a, int64_t begin, int64_t end) {
  if (sizeof(T) == 2 && N % kW != 0) {
    FloatBuffer& buf = thread_bt();
    if (buf.reserve(a.k * N)) {
      for (int64_t c = 0; c < a.k; ++c)
        for (int j = 0; j < N; ++j) buf.data[c * N + j] = to_float(a.b[c * a.ldb + j]);
      return rows_small_n<N>(a, static_cast<const float*>(buf.data), N, begin, end, a.out, N);
    }
  }
  return rows_small_n<N>(a, a.b, a.ldb, begin, end, a.out, N);
}

// n > 16: columns in panels of kWideN (8 vectors: 8 accumulators, one
// broadcast and one offset load per 8 FMAs), the last (or only) one 2 or 4
// vectors wide when that holds its columns. Each panel of b is copied into a
// contiguous fp32 buffer (k x kWideN, zero past n, thread-local; 16-bit b
// widened once), then the broadcast form runs on it with chunks of k of
// 16 KiB (chunk_words). Read in place, b's rows are 4 n bytes apart and a
// row's half of them aliased in L1/L2: 4096^2, 2 threads, alternating
// processes, min of 3: n = 512 338 -> 108-132 ms (4 vectors) / 111-122 ms
// (8), n = 2048 1468 -> 473-680 / 424-432 ms; cachegrind at n = 512, 1.34G
// (4 vectors) -> 1.14G (8) instructions per call, ~30 % of them the
// per-(row, chunk) visit. Returns -2 when the buffer cannot be allocated
// (nothing written).
constexpr int kWideN = 8 * kW;
template <typename T>
static int64_t rows_wide_packed(const Sparse24SpmmArgs<T>& a, int64_t begin, int64_t end) {
  FloatBuffer& buf = thread_bt();
  if (!buf.reserve(a.k * kWideN)) return -2;
  for (int64_t j0 = 0; j0 < a.n; j0 += kWideN) {
    const int64_t jw = a.n - j0 < kWideN ? a.n - j0 : kWideN;
    // the panel's width: the fewest of 2, 4 or 8 vectors that hold its jw
    // columns (a panel of 8 vectors for n = 24 did 5.3x the FMAs it needed)
    const int64_t wp = jw <= 2 * kW ? 2 * kW : jw <= 4 * kW ? 4 * kW : kWideN;
    copy_columns_fp32(a.b, a.ldb, a.k, a.k, j0, jw, wp, buf.data);  // as it is, non-finite values included
    const float* bp = static_cast<const float*>(buf.data);
    const int64_t bad = wp == 2 * kW   ? rows_small_n<2 * kW>(a, bp, wp, begin, end, a.out + j0, jw)
                        : wp == 4 * kW ? rows_small_n<4 * kW>(a, bp, wp, begin, end, a.out + j0, jw)
                                       : rows_small_n<kWideN>(a, bp, wp, begin, end, a.out + j0, jw);
    if (bad >= 0) return bad;
  }
  return -1;
}

// Up to this n, row_select_n (2 permutes per column per 8 values) beats the
// broadcast form (rows_small_n); past it the permutes saturate their port.
// AVX2, Zen 3, 1 thread, 4096^2 fp32, best of 4 runs, select vs broadcast:
// n = 2 4.0 vs 6.1 ms, n = 3 5.6 vs 6.4, n = 4 6.7 vs 6.3, n = 5 8.1 vs 6.3.
constexpr int64_t kSelectMaxN = 3;

// 2 <= N <= 8 with b transposed per 16-row block (bt, transpose_row_blocks):
// per meta word the permutation is computed once, then for each column j the
// 8 b values at the word's stored positions are selected from that column's
// 16 (v8select24) and multiplied by the word's 8 values: one FMA per column
// per 8 values, no per-value broadcast. The tail past the last whole word
// reads b directly.
template <int N, typename T>
static void row_select_n(const Sparse24SpmmArgs<T>& a, const T* vals, const uint16_t* meta, const float* bt,
                         T* out, const T* bias) {
  static_assert(N >= 2 && N <= 8, "one register per column");
  Vec8 acc[8];
  for (int j = 0; j < 8; ++j) acc[j] = v8zero();
  const int64_t words = a.k / 16;
  for (int64_t w = 0; w < words; ++w) {
    const Vec8 v = v8load(vals + 8 * w);
    const Sel24 s = v8sel24_index(meta[w]);
    const float* blk = bt + w * 16 * N;
    for (int j = 0; j < N; ++j) acc[j] = v8fma(v, v8select24(blk + 16 * j, s), acc[j]);
  }
  float sums[8];
  v8storef(sums, v8hsum8(acc));
  for_each_entry(vals, meta, a.k, [&](int64_t col, T v) {
    const T* brow = a.b + col * a.ldb;
    for (int j = 0; j < N; ++j) sums[j] += to_float(v) * to_float(brow[j]);
  }, 4 * words);
  if (bias)
    for (int j = 0; j < N; ++j) sums[j] += to_float(*bias);
  for (int j = 0; j < N; ++j) out[j] = from_float<T>(sums[j]);
}


template <int NV, typename T>
static inline void panel(const Sparse24SpmmArgs<T>& a, const T* vals, const uint16_t* meta, T* out, int64_t j,
                         const T* bias) {
  VecF acc[NV];
  for (int u = 0; u < NV; ++u) acc[u] = vzero();
  for_each_entry(vals, meta, a.k, [&](int64_t col, T v) {
    const VecF vv = vset1(to_float(v));
    const T* brow = a.b + col * a.ldb + j;
    for (int u = 0; u < NV; ++u) acc[u] = vfma(vv, vload(brow + u * kW), acc[u]);
  });
  add_row_bias(bias, 0, acc);
  for (int u = 0; u < NV; ++u) vstore(out + j + u * kW, acc[u]);
}

// Columns [j0, j1) of one row: a whole block of 8 vectors as one panel (8
// independent FMA chains), else panels of 4 vectors, single vectors and one
// partial vector.
template <typename T>
static void row_wide(const Sparse24SpmmArgs<T>& a, const T* vals, const uint16_t* meta, T* out, int64_t j0,
                     int64_t j1, const T* bias) {
  int64_t j = j0;
  if (j1 - j0 == 8 * kW) {
    panel<8>(a, vals, meta, out, j, bias);
    return;
  }
  for (; j + 4 * kW <= j1; j += 4 * kW) panel<4>(a, vals, meta, out, j, bias);
  for (; j + kW <= j1; j += kW) panel<1>(a, vals, meta, out, j, bias);
  if (j < j1) {
    const int r = int(j1 - j);
    VecF acc = vzero();
    for_each_entry(vals, meta, a.k, [&](int64_t col, T v) {
      acc = vfma(vset1(to_float(v)), vload_partial(a.b + col * a.ldb + j, r), acc);
    });
    if (bias) acc = vadd(acc, vset1(to_float(*bias)));
    vstore_partial(out + j, acc, r);
  }
}

// 2 <= N <= 8, expansion (b finite): a meta byte covers 8 columns and 4
// values; its two groups' positions become a bitmap byte (kMetaBits), which
// expands the 4 values into their 8 lanes as the bitmap expansion does
// (v8expand_full_permute2), and each of the N columns takes one FMA against
// the 8 values of that column of b (bt: b in 8-row blocks transposed,
// transpose_row_blocks, zero past k). Rows in blocks of RB share each block of
// b, loaded once into registers; a row's N sums stay in registers across all
// of k (bt, 16 KiB per 1024 columns at N = 4, is read from L2). Twice the
// FMAs of the broadcast form (the zeros of each 8-column block), but no
// broadcast and no b row load per value (4096^2 fp32, 2 threads, n = 4:
// 2.39 -> 1.62 ms). The values are prefetched: without it the expansion was
// slower than the broadcast form (3.3 ms).
struct MetaBits {
  uint8_t bits[256];
  constexpr MetaBits() : bits{} {
    for (int v = 0; v < 256; ++v)
      bits[v] = uint8_t((1u << (v & 3)) | (1u << ((v >> 2) & 3)) | (1u << (4 + ((v >> 4) & 3))) |
                        (1u << (4 + ((v >> 6) & 3))));
  }
};
static constexpr MetaBits kMetaBits{};

template <int N, int RB, typename T>
static void rows_block_expand(const Sparse24SpmmArgs<T>& a, const float* bt, int64_t i0) {
  const int64_t kp = (a.k + 15) / 16 * 16;
  const int64_t nb = (a.k + 7) / 8;  // 8-column blocks holding columns < k
  // the last block: the bits of columns < k (positions past k are skipped),
  // and a partial value load (4 values past it may lie past the array)
  const unsigned last_cols = unsigned((1u << (a.k - 8 * (nb - 1))) - 1u);
  const uint8_t* mb[RB];  // the rows' meta as bytes: byte jb is columns 8 jb .. 8 jb + 7 (x86 is little-endian)
  const T* vr[RB];
  for (int i = 0; i < RB; ++i) {
    mb[i] = reinterpret_cast<const uint8_t*>(a.meta + (i0 + i) * (kp / 16));
    vr[i] = a.values + (i0 + i) * (kp / 2);
  }
  Vec8 r[RB][8];
  for (int i = 0; i < RB; ++i)
    for (int c = 0; c < 8; ++c) r[i][c] = v8zero();
  auto block = [&](int64_t jb, auto last) {
    const float* blk = bt + jb * 8 * N;
    Vec8 bv[N];
    for (int c = 0; c < N; ++c) {
      bv[c] = v8loadf(blk + c * 8);
#if defined(__AVX2__) || defined(__AVX512F__)
      if constexpr (RB > 1) __asm__("" : "+x"(bv[c].v));  // once for the RB rows, in a register
#endif
    }
    for (int i = 0; i < RB; ++i) {
      const T* v = vr[i] + 4 * jb;
      Vec8 e;
      if constexpr (last.value)
        e = v8expand(v, kMetaBits.bits[mb[i][jb]] & last_cols);
      else
        e = v8expand_full_permute2(v, kMetaBits.bits[mb[i][jb]]);
      for (int c = 0; c < N; ++c) r[i][c] = v8fma(e, bv[c], r[i][c]);
    }
  };
  // the rows' values streamed 2 KiB ahead, a cache line per row every 64
  // bytes of values (RB streams at once are more than the hardware
  // prefetcher follows well)
  constexpr int64_t kLineBlocks = 64 / (4 * int64_t(sizeof(T)));  // blocks per cache line of values
  int64_t jb = 0;
  for (; jb + kLineBlocks < nb; jb += kLineBlocks) {
    for (int i = 0; i < RB; ++i) __builtin_prefetch(reinterpret_cast<const char*>(vr[i] + 4 * jb) + 2048);
    for (int64_t u = 0; u < kLineBlocks; ++u) block(jb + u, std::false_type{});
  }
  for (; jb + 1 < nb; ++jb) block(jb, std::false_type{});
  block(nb - 1, std::true_type{});
  for (int i = 0; i < RB; ++i) {
    float sums[8];
    v8storef(sums, v8hsum8(r[i]));
    if (a.bias)
      for (int c = 0; c < N; ++c) sums[c] += to_float(a.bias[i0 + i]);
    T* out = a.out + (i0 + i) * a.ldo;
    for (int c = 0; c < N; ++c) out[c] = from_float<T>(sums[c]);
  }
}

// Rows [begin, end) by the expansion; returns the first bad row or -1 (a
// block's rows are checked before any is computed).
template <int N, typename T>
static int64_t rows_expand(const Sparse24SpmmArgs<T>& a, const float* bt, int64_t begin, int64_t end) {
  constexpr int RB = vec8_row_block<N>();
  const int64_t kp = (a.k + 15) / 16 * 16;
  int64_t i = begin;
  for (; i < end; i += RB) {
    const int64_t i1 = end - i < RB ? end : i + RB;
    for (int64_t r = i; r < i1; ++r)
      if (!meta_row_ok(a.meta + r * (kp / 16), kp / 16)) return r;
    if (i1 - i == RB)
      rows_block_expand<N, RB>(a, bt, i);
    else
      for (int64_t r = i; r < i1; ++r) rows_block_expand<N, 1>(a, bt, r);
  }
  return -1;
}

// Calls row(values, meta, out, bias) for rows [begin, end) (bias: the row's
// entry of a.bias, or nullptr), each checked first
// unless check is false (a later column block of rows already checked).
// The rows' values are one contiguous stream, left to the hardware
// prefetcher: prefetching the whole row after next at each row's start (a
// burst of kp / 32 lines for fp32) measured much slower (one process,
// alternating, n = 1, 4096^2 fp32: 1 thread 3.15 -> 1.87 ms without it, 2
// threads 2.00 -> 1.38; bf16 2 threads 1.09 -> 0.72; 11008 x 4096 bf16 3.55 ->
// 1.99).
template <typename T, typename Row>
static int64_t rows(const Sparse24SpmmArgs<T>& a, int64_t begin, int64_t end, const Row& row, bool check = true) {
  const int64_t kp = (a.k + 15) / 16 * 16;
  for (int64_t i = begin; i < end; ++i) {
    const uint16_t* meta = a.meta + i * (kp / 16);
    if (check && !meta_row_ok(meta, kp / 16)) return i;
    row(a.values + i * (kp / 2), meta, a.out + i * a.ldo, a.bias ? a.bias + i : nullptr);
  }
  return -1;
}

#if defined(__AVX512BF16__)
// bf16, 2 <= n <= 16, AVX512-BF16 (the avx512bf16 copy of this file): a
// group's two values are one dword (vals[2g] low, vals[2g + 1] high) and
// vdpbf16ps multiplies a broadcast dword by NP dwords of b pairs, adding both
// products to NP fp32 lanes: one instruction per group where the broadcast
// form spends two FMAs, two broadcasts and two b-row conversions (n <= 4: two
// groups per 256-bit instruction, chunk_bf16_dot). The b pairs
// come from a per-call copy of b (thread-local): for each whole group g < k / 4
// and each of its 6 position pairs (i0 < i1), the dwords
// (b[4g + i0, j], b[4g + i1, j]) for j < NP (zero past n), pair after pair,
// 6 NP dwords per group (k = 4096, n = 16: 384 KiB; built in ~1 % of the
// call). The group that straddles k (k % 4 != 0) is added in fp32 from b.
// vdpbf16ps rounds each of its two adds to nearest even and treats subnormal
// inputs and results as zero (bf16 subnormals are below 1.2e-38).
// Offset (in dwords, per NP = 1) of a group's pair from its 4-bit meta
// idx0 | idx1 << 2, pairs in the order (0,1) (0,2) (0,3) (1,2) (1,3) (2,3);
// invalid nibbles (rejected by meta_row_ok before a row is used) map to 0.
alignas(16) constexpr uint8_t kPairOfNibble[16] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 3, 0, 0, 2, 4, 5, 0};
constexpr int kPairLo[6] = {0, 0, 0, 1, 1, 2}, kPairHi[6] = {1, 2, 3, 2, 3, 3};

template <int NP>
struct DotVec;
template <>
struct DotVec<16> {
  using V = __m512;
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static V zero() { return _mm512_setzero_ps(); }
  static V add(V x, V y) { return _mm512_add_ps(x, y); }
  static V dot(V acc, uint32_t pair, const uint32_t* bp) {
    return _mm512_dpbf16_ps(acc, (__m512bh)_mm512_set1_epi32(int(pair)), (__m512bh)_mm512_loadu_si512(bp));
  }
  static void store(float* p, V x) { _mm512_storeu_ps(p, x); }
  static void store_pairs(uint32_t* p, __m512i d) { _mm512_storeu_si512(p, d); }
};
template <>
struct DotVec<8> {
  using V = __m256;
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static V zero() { return _mm256_setzero_ps(); }
  static V add(V x, V y) { return _mm256_add_ps(x, y); }
  static V dot(V acc, uint32_t pair, const uint32_t* bp) {
    return _mm256_dpbf16_ps(acc, (__m256bh)_mm256_set1_epi32(int(pair)),
                            (__m256bh)_mm256_loadu_si256(reinterpret_cast<const __m256i*>(bp)));
  }
  static void store(float* p, V x) { _mm256_storeu_ps(p, x); }
  static void store_pairs(uint32_t* p, __m512i d) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_castsi512_si256(d));
  }
};
template <>
struct DotVec<4> {
  using V = __m128;
  static V load(const float* p) { return _mm_loadu_ps(p); }
  static V zero() { return _mm_setzero_ps(); }
  static V add(V x, V y) { return _mm_add_ps(x, y); }
  static V dot(V acc, uint32_t pair, const uint32_t* bp) {
    return _mm_dpbf16_ps(acc, (__m128bh)_mm_set1_epi32(int(pair)),
                         (__m128bh)_mm_loadu_si128(reinterpret_cast<const __m128i*>(bp)));
  }
  static void store(float* p, V x) { _mm_storeu_ps(p, x); }
  static void store_pairs(uint32_t* p, __m512i d) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm512_castsi512_si128(d));
  }
};

// The b pairs of the whole groups (layout above) into dst (6 * NP * (k / 4) dwords).
template <int NP>
static void build_b_pairs(const Sparse24SpmmArgs<bf16_t>& a, uint32_t* dst) {
  const __mmask16 cols = __mmask16((1u << a.n) - 1u);
  const int64_t full = a.k / 4;
  for (int64_t g = 0; g < full; ++g, dst += 6 * NP) {
    __m512i r[4];
    for (int i = 0; i < 4; ++i)
      r[i] = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(cols, a.b + (4 * g + i) * a.ldb));
    for (int c = 0; c < 6; ++c)
      DotVec<NP>::store_pairs(dst + c * NP, _mm512_or_si512(r[kPairLo[c]], _mm512_slli_epi32(r[kPairHi[c]], 16)));
  }
}

// Byte offsets into the b pairs of groups [g0, g1) of a row (g0 a multiple
// of 16): offs[g - g0] = (6 g + pair(g)) * NP * 4, sixteen groups (four meta
// words) per step: the nibbles split and interleaved into group order, the
// pair index looked up with a byte shuffle (kPairOfNibble), widened and
// scaled. Scalar per-group offset arithmetic (shift, mask, table load,
// address) was ~7 of the 10 instructions per group and held the loop near 3
// cycles per group.
template <int NP>
static void pair_offsets(const uint16_t* meta, int64_t g0, int64_t g1, int32_t* offs) {
  constexpr int kShift = NP == 16 ? 6 : NP == 8 ? 5 : 4;  // log2(NP * 4)
  const __m128i lut = _mm_load_si128(reinterpret_cast<const __m128i*>(kPairOfNibble));
  const __m128i lo4 = _mm_set1_epi8(0x0f);
  const __m512i ramp = _mm512_setr_epi32(0, 6, 12, 18, 24, 30, 36, 42, 48, 54, 60, 66, 72, 78, 84, 90);
  int64_t g = g0;
  for (; g + 16 <= g1; g += 16) {
    const __m128i x = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(meta + g / 4));
    const __m128i nib = _mm_unpacklo_epi8(_mm_and_si128(x, lo4), _mm_and_si128(_mm_srli_epi16(x, 4), lo4));
    const __m512i c = _mm512_cvtepu8_epi32(_mm_shuffle_epi8(lut, nib));
    const __m512i base = _mm512_add_epi32(ramp, _mm512_set1_epi32(int(6 * g)));
    _mm512_storeu_si512(offs + (g - g0), _mm512_slli_epi32(_mm512_add_epi32(c, base), kShift));
  }
  for (; g < g1; ++g) {
    const unsigned nib = (unsigned(meta[g >> 2]) >> ((g & 3) * 4)) & 0xfu;
    offs[g - g0] = int32_t((6 * g + kPairOfNibble[nib]) * NP * 4);
  }
}

// acc[0..NP) += groups [g0, g1) of one row (values vals, meta) times the b
// pairs bp, by vdpbf16ps at the offsets of pair_offsets (8 independent
// accumulators: the instruction's latency, 6 cycles on Zen 4, is several
// times its issue interval).
template <int NP>
static void chunk_bf16_dot(const uint32_t* bp, int32_t* offs, const bf16_t* vals, const uint16_t* meta, int64_t g0,
                           int64_t g1, float* acc) {
  using D = DotVec<NP>;
  pair_offsets<NP>(meta, g0, g1, offs);
  typename D::V c[8];
  c[0] = D::load(acc);
  for (int u = 1; u < 8; ++u) c[u] = D::zero();
  const char* bbytes = reinterpret_cast<const char*>(bp);
  auto pair_at = [&](int64_t g) {
    uint32_t p;
    std::memcpy(&p, vals + 2 * g, sizeof p);
    return p;
  };
  const int64_t len = g1 - g0;
  int64_t g = 0;
  if constexpr (NP == 4) {
    // two groups per 256-bit vdpbf16ps (their pairs in the two 128-bit
    // lanes, the two value dwords spread over them): half the dot
    // instructions of one 128-bit one per group. 2:4 bf16 n = 4, one process,
    // alternating: in L2 (512 x 1024, 1 thread) 0.138 -> 0.125 and 0.077 ->
    // 0.073 ms, 512 x 4096 n = 3 0.437 -> 0.384; 2 threads, operands rotated,
    // 4096^2 1.66 -> 1.51 and 3.86 -> 3.72, 11008 x 4096 4.39 -> 4.09 and
    // 5.35 -> 5.03. Alternating processes (a very noisy hour): in cache
    // 0.149 -> 0.108, 512 x 4096 0.439 -> 0.370; rotated, 2 threads, a tie or
    // worse (4096^2 2.09 vs 2.12, 11008 4.33 vs 5.51 and 6.09 vs 6.51). (At
    // NP = 8, two groups per 512-bit one: no gain, not done.)
    const __m256i sel = _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1);
    __m256 y[8];
    for (int u = 0; u < 8; ++u) y[u] = _mm256_setzero_ps();
    for (; g + 16 <= len; g += 16) {
#pragma GCC unroll 8
      for (int u = 0; u < 8; ++u) {
        const __m256i bb = _mm256_inserti128_si256(
            _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(bbytes + offs[g + 2 * u]))),
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(bbytes + offs[g + 2 * u + 1])), 1);
        const __m256i vv = _mm256_permutevar8x32_epi32(
            _mm256_castsi128_si256(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(vals + 2 * (g0 + g + 2 * u)))), sel);
        y[u] = _mm256_dpbf16_ps(y[u], (__m256bh)vv, (__m256bh)bb);
      }
    }
    for (int u = 1; u < 8; ++u) y[0] = _mm256_add_ps(y[0], y[u]);
    c[1] = D::add(c[1], _mm_add_ps(_mm256_castps256_ps128(y[0]), _mm256_extractf128_ps(y[0], 1)));
  }
  for (; g + 8 <= len; g += 8) {
#pragma GCC unroll 8
    for (int u = 0; u < 8; ++u)
      c[u] = D::dot(c[u], pair_at(g0 + g + u), reinterpret_cast<const uint32_t*>(bbytes + offs[g + u]));
  }
  for (; g < len; ++g)
    c[g & 7] = D::dot(c[g & 7], pair_at(g0 + g), reinterpret_cast<const uint32_t*>(bbytes + offs[g]));
  for (int u = 1; u < 8; ++u) c[0] = D::add(c[0], c[u]);
  D::store(acc, c[0]);
}

// Groups per k chunk: the chunk's b pairs (6 NP dwords per group) take 24 KiB
// at NP = 4 and 8, so they stay in L1 while a tile of rows uses them. Read
// across all of k, the pairs (96 KiB at NP = 4, 384 KiB at 16) came from L2,
// one line per group: measured in isolation 0.96 vs 0.57 ns per group at
// NP = 4, 0.88 vs 0.74 at 16. At NP = 16 the chunk is 128 groups (48 KiB):
// with 64 the per-(row, chunk) work (offsets, 8 accumulators) cost more than
// L1 saved (4096^2: 2.04 vs 1.91 ms; 32 groups: 3.75 ms); 48 KiB chunks at
// NP = 4 took 2.11 ms against 1.29.
template <int NP>
constexpr int64_t pair_chunk_groups() {
  return NP == 16 ? 128 : 1024 / NP;
}
constexpr int64_t kPairTileRows = 32;

__attribute__((noinline)) static FloatBuffer& thread_pairs() {
  static thread_local FloatBuffer buf;
  return buf;
}

// Rows [begin, end) in tiles of kPairTileRows, k in chunks (pair_chunk_groups)
// outermost within a tile, the NP sums of each row in an fp32 tile between
// chunks; then the straddling group in fp32 and the output rounded once.
// Returns the first bad row, -1, or -2 when the buffer cannot be allocated
// (nothing written). A tile's rows are all checked before any is computed.
template <int NP>
static int64_t rows_bf16_dot(const Sparse24SpmmArgs<bf16_t>& a, int64_t begin, int64_t end) {
  constexpr int64_t kChunk = pair_chunk_groups<NP>();
  const int64_t full = a.k / 4;
  // byte offsets into the pairs are int32
  if ((6 * full + 6) * NP * 4 >= (int64_t(1) << 31)) return -2;
  FloatBuffer& buf = thread_pairs();
  if (!buf.reserve(6 * NP * full + kChunk)) return -2;
  uint32_t* bp = reinterpret_cast<uint32_t*>(buf.data);
  int32_t* offs = reinterpret_cast<int32_t*>(buf.data + 6 * NP * full);
  build_b_pairs<NP>(a, bp);
  const int64_t kp = (a.k + 15) / 16 * 16;
  alignas(64) float tile[kPairTileRows * NP];
  for (int64_t i0 = begin; i0 < end; i0 += kPairTileRows) {
    const int64_t i1 = end - i0 < kPairTileRows ? end : i0 + kPairTileRows;
    for (int64_t i = i0; i < i1; ++i)
      if (!meta_row_ok(a.meta + i * (kp / 16), kp / 16)) return i;
    for (int64_t r = 0; r < (i1 - i0) * NP; ++r) tile[r] = 0.f;
    for (int64_t c0 = 0; c0 < full; c0 += kChunk) {
      const int64_t c1 = full - c0 < kChunk ? full : c0 + kChunk;
      for (int64_t i = i0; i < i1; ++i) {
        prefetch_chunk_ahead(a.values, kp / 2, i, i0, i1, 2 * c0, 2 * c1, 2 * (full - c1 < kChunk ? full : c1 + kChunk));
        chunk_bf16_dot<NP>(bp, offs, a.values + i * (kp / 2), a.meta + i * (kp / 16), c0, c1, tile + (i - i0) * NP);
      }
    }
    for (int64_t i = i0; i < i1; ++i) {
      float* sums = tile + (i - i0) * NP;
      for_each_entry(a.values + i * (kp / 2), a.meta + i * (kp / 16), a.k, [&](int64_t col, bf16_t v) {
        const bf16_t* brow = a.b + col * a.ldb;
        for (int64_t j = 0; j < a.n; ++j) sums[j] += to_float(v) * to_float(brow[j]);
      }, full);
      if (a.bias)
        for (int64_t j = 0; j < a.n; ++j) sums[j] += to_float(a.bias[i]);
      bf16_t* out = a.out + i * a.ldo;
      for (int64_t j = 0; j < a.n; ++j) out[j] = from_float<bf16_t>(sums[j]);
    }
  }
  return -1;
}

static int64_t sparse24_bf16_dot(const Sparse24SpmmArgs<bf16_t>& a, int64_t begin, int64_t end) {
  return a.n <= 4 ? rows_bf16_dot<4>(a, begin, end) : a.n <= 8 ? rows_bf16_dot<8>(a, begin, end)
                                                              : rows_bf16_dot<16>(a, begin, end);
}
#endif  // __AVX512BF16__

}  // namespace

template <typename T>
void sparse24_spmm(const Sparse24SpmmArgs<T>& a, int64_t begin, int64_t end, int64_t* first_bad) {
  int64_t bad = -1;
#if defined(__AVX512BF16__)
  if constexpr (std::is_same_v<T, bf16_t>) {
    if (a.n >= 2 && a.n <= 16 && begin < end) {
      bad = sparse24_bf16_dot(a, begin, end);
      if (bad != -2) {
        *first_bad = bad;
        return;
      }
      bad = -1;
    }
  }
#endif
  // 2 <= n <= 8, b finite: the expansion (b transposed per 8-row block once
  // per call, thread-local buffer)
  if (a.n >= 2 && a.n <= 8 && a.k > 0 && begin < end) {  // b through its copy: any row stride
    FloatBuffer& buf = thread_bt();
    const int64_t kpad = (a.k + 7) / 8 * 8;
    if (buf.reserve(kpad * a.n) && transpose_row_blocks(a.b, a.ldb, a.k, kpad, a.n, 8, buf.data)) {
      switch (a.n) {
#define SK_CASE(N) \
  case N: bad = rows_expand<N>(a, buf.data, begin, end); break;
        SK_CASE(2) SK_CASE(3) SK_CASE(4) SK_CASE(5) SK_CASE(6) SK_CASE(7) SK_CASE(8)
#undef SK_CASE
        default: break;
      }
      *first_bad = bad;
      return;
    }
  }
  // 2 <= n <= kSelectMaxN: b transposed per 16-row block once per call
  // (thread-local buffer)
  const float* bt = nullptr;
  if (a.n >= 2 && a.n <= kSelectMaxN && begin < end) {
    FloatBuffer& buf = thread_bt();
    const int64_t words = a.k / 16;
    if (buf.reserve(16 * words * a.n)) {
      transpose_row_blocks(a.b, a.ldb, 16 * words, 16 * words, a.n, 16, buf.data);
      bt = buf.data;
    }
  }
  // The small-n forms keep b offsets of up to 8 rows in int32; a b whose row
  // stride is too large for that (never from a plain [k, n] tensor) goes the
  // wide way, all in int64.
  const bool int32_offsets = a.ldb < (int64_t(1) << 28);
  switch (a.n >= 2 && a.n <= 16 && !int32_offsets ? int64_t(0) : a.n) {
    case 1:
      bad = rows(a, begin, end, [&](const T* vals, const uint16_t* meta, T* out, const T* bias) {
        const float sum = row_dot(vals, meta, a.k, a.b, a.ldb);
        out[0] = from_float<T>(bias ? sum + to_float(*bias) : sum);
      });
      break;
#define SK_CASE(N)                                                                                 \
  case N:                                                                                          \
    if (bt != nullptr)                                                                             \
      bad = rows(a, begin, end, [&](const T* vals, const uint16_t* meta, T* out, const T* bias) {  \
        row_select_n<N>(a, vals, meta, bt, out, bias);                                             \
      });                                                                                          \
    else                                                                                           \
      bad = rows_small_n<N>(a, begin, end);                                                        \
    break;
      SK_CASE(2) SK_CASE(3)
#undef SK_CASE
#define SK_CASE(N)                         \
  case N:                                  \
    bad = rows_small_n<N>(a, begin, end);  \
    break;
      SK_CASE(4) SK_CASE(5) SK_CASE(6) SK_CASE(7) SK_CASE(8) SK_CASE(9) SK_CASE(10) SK_CASE(11) SK_CASE(12)
      SK_CASE(13) SK_CASE(14) SK_CASE(15) SK_CASE(16)
#undef SK_CASE
    default:
      bad = rows_wide_packed(a, begin, end);  // offsets into its own buffer: any row stride of b
      if (bad != -2) break;
      bad = -1;
      // without the buffer: columns in blocks of 8 vectors, the block
      // outermost, b read in place (each row reads half of b's rows)
      for (int64_t j0 = 0; j0 < a.n && bad < 0; j0 += 8 * kW) {
        const int64_t j1 = a.n - j0 < 8 * kW ? a.n : j0 + 8 * kW;
        bad = rows(a, begin, end, [&](const T* vals, const uint16_t* meta, T* out, const T* bias) {
          row_wide(a, vals, meta, out, j0, j1, bias);
        }, j0 == 0);
      }
      break;
  }
  *first_bad = bad;
}

#define SK_INSTANTIATE(T) template void sparse24_spmm<T>(const Sparse24SpmmArgs<T>&, int64_t, int64_t, int64_t*);
SK_INSTANTIATE(float)
SK_INSTANTIATE(half_t)
SK_INSTANTIATE(bf16_t)
#undef SK_INSTANTIATE

SK_CPU_NAMESPACE_END
