// Bitmap SpMM on the CPU: out = A @ b with A in the bitmap format
// (docs/formats.md: 64 x 64 groups, 16 x 16 fragments, 8 x 8 tiles in mma
// A-register order, one 64-bit mask per tile, values tile by tile).
//
// Work unit: one group row (64 output rows) and up to 256 columns of out,
// accumulated in fp32 scratch while the row's groups are visited left to
// right, so each group's masks and values (<= 16 KiB) and b's 64 rows for it
// stay in cache while all 64 rows use them. Two ways to multiply a group:
//   expansion (n <= 8): each row byte of a tile mask expands the row's packed
//           values into 8 lanes (v8expand: a 256-entry table of lane
//           permutations whose sign bits mark the lanes to zero), then one FMA per output column
//           against the 8 values of that column of b for the tile's columns,
//           read from a transposed fp32 copy of b (built once per call in a
//           thread-local buffer, zero past k). Dense arithmetic inside a
//           tile, but no per-element decode. n == 1 keeps the 8 rows of a
//           tile row in registers across its 8 tiles; n >= 2 keeps the n
//           columns of 4 rows (2 for n > 4; AVX2 1-4) in registers across
//           their 8 tiles, each tile's n columns of b loaded once for them.
//           The n >= 2 sums of a row are added to its accumulators as one
//           vector (rows 8 floats apart), not lane by lane: scalar loads of a
//           vector just stored waited on store forwarding (~7 % at n = 8).
//   dense (n > 8, b finite, density above a threshold growing with n: see
//           use_dense): the group is expanded into a 64 x 64 fp32 tile (the
//           expansion above, stored), then multiplied by b's 64 rows with a
//           register-blocked product (6 rows x 2 vectors of accumulators, b in
//           fp32, packed per 64-column chunk). Its cost does not fall with
//           density, but it is FMA bound where the decode is load bound. The
//           next group is expanded (into a second tile) while the product of
//           the current one runs, a tile every few k steps.
//   decode (otherwise): the group is decoded into per-row (column, value)
//           lists with table lookups (no loop over bits), then b's rows are
//           streamed: n <= 16 in registers with 4 accumulator sets over rows
//           padded to a multiple of 4 entries, n > 16 in panels of 4 vectors.
// All multiply only stored values by b, except that the expansion, the dense
// tile and the row padding multiply zeros by b's finite values: a b with a NaN or infinity
// takes the decode path without padding, so a product is never polluted by
// a column the row does not store.
//
// The metadata checks are fused (docs/design.md, Validation): before a group
// is used, 0 <= group_offsets[g] <= group_offsets[g+1] <= len(values), the
// count equals its masks' popcount rounded up to 8, and edge groups have no
// bit outside m x k. A bad group stops the chunk and its group row is reported
// through *first_bad. Scratch is thread-local and reused across calls.
#include <cstring>
#include <type_traits>
#include <utility>

#include "kernels/cpu/kernels.h"
#include "kernels/cpu/scratch.h"
#include "kernels/cpu/simd.h"

SK_CPU_NAMESPACE_BEGIN

namespace {

constexpr int kGroup = 64;          // group edge, in elements
constexpr int kTilesPerGroup = 64;  // 4 x 4 fragments x 4 tiles
// Columns of out per pass over a group row: bounds the fp32 scratch to 64 KiB
// (a pass re-decodes the groups, negligible against 256 columns of work).
constexpr int64_t kColumnChunk = 256;
// Decoded rows are padded to a multiple of this many entries.
constexpr int kRowPad = 4;
// The expansion is used for n <= kExpandMaxN (b finite). Its cost does not
// fall with density, but neither does most of the decode's (a table lookup
// per row and tile): on AVX2 the expansion executes fewer instructions up to
// n = 8 even at 95 % sparsity, the decode fewer at n = 16 (docs/performance.md).
constexpr int kExpandMaxN = 8;
// The dense path's expansion prefetches this many bytes ahead of the tile it
// reads (about one group at 50 % in bf16): a group's product is long enough
// that the hardware prefetcher falls behind the value stream (bf16, 4096^2,
// 50 %, n = 16: 2.75 -> 1.98 ms).
constexpr int kPrefetchBytes = 4096;
// Columns of out per pass of the dense path (b's chunk in fp32: k x 64 floats
// per thread).
constexpr int64_t kDenseChunk = 64;

// Scratch of one kernel call (one thread), allocated once (~150 KiB).
struct Scratch {
  // dense: the group being multiplied and the next one, expanded, row-major
  alignas(64) float tile[2][kGroup * kGroup];
#if defined(__AVX512BF16__)
  alignas(64) uint16_t tile16[2][kGroup * kGroup];  // dense, bf16 by vdpbf16ps: the same in bf16 bits
#endif
  uint16_t starts[kTilesPerGroup];     // tile starts of the current group
  float acc[kGroup * kColumnChunk];    // fp32 accumulators of the group row, rows nc long
  // decode: the current group row by row (CSR inside the group)
  int row_begin[kGroup + 1];
  int32_t cols[kGroup * (kGroup + kRowPad) + 8];  // columns (times a scale; 8 slack: stored 8 at a time)
  float vals[kGroup * (kGroup + kRowPad) + 8];
};

// acc[lr, :] += row lr of the current group @ b[col0 .. col0 + 63, j0 .. j0 + nc),
// for the group's rows decoded in sc (acc's rows are nc long); b's columns in
// panels of 4 vectors, then the rest in one pass (with_tail).
template <typename T>
static void group_times_b(const BitmapSpmmArgs<T>& a, Scratch& sc, int rows, int64_t col0, int64_t j0,
                          int64_t n) {
  const T* b = a.b + col0 * a.ldb + j0;
  int64_t j = 0;
  for (; j + 4 * kW <= n; j += 4 * kW) {
    for (int lr = 0; lr < rows; ++lr) {
      const int p0 = sc.row_begin[lr], p1 = sc.row_begin[lr + 1];
      if (p0 == p1) continue;
      float* acc = sc.acc + lr * n + j;
      VecF c0 = vload(acc), c1 = vload(acc + kW), c2 = vload(acc + 2 * kW), c3 = vload(acc + 3 * kW);
      for (int p = p0; p < p1; ++p) {
        const VecF v = vset1(sc.vals[p]);
        const T* brow = b + sc.cols[p] * a.ldb + j;
        c0 = vfma(v, vload(brow), c0);
        c1 = vfma(v, vload(brow + kW), c1);
        c2 = vfma(v, vload(brow + 2 * kW), c2);
        c3 = vfma(v, vload(brow + 3 * kW), c3);
      }
      vstore(acc, c0);
      vstore(acc + kW, c1);
      vstore(acc + 2 * kW, c2);
      vstore(acc + 3 * kW, c3);
    }
  }
  // the last < 4 vectors of columns in one pass per row (NV - 1 full vectors
  // and one of r lanes): one pass per vector re-read each row, and the
  // columns past the last whole vector went one by one (n = 24 on AVX-512 took
  // 2.3x the AVX2 kernel's time)
  if (j == n) return;
  with_tail(int(n - j), [&](auto t) {
    for (int lr = 0; lr < rows; ++lr) {
      const int p0 = sc.row_begin[lr], p1 = sc.row_begin[lr + 1];
      if (p0 == p1) continue;
      float* acc = sc.acc + lr * n + j;
      VecF c[t.kNV];
      t.load(acc, c);
      for (int p = p0; p < p1; ++p) t.fma(vset1(sc.vals[p]), b + j + sc.cols[p] * a.ldb, c);
      t.store(acc, c);
    }
  });
}


// Mask of the elements of tile t that lie inside the matrix for a group with
// `rows` x `cols` valid elements (the rule of core/validate_bitmap.cpp).
static inline uint64_t tile_inside_mask(int t, int64_t rows, int64_t cols) {
  const int f = t / 4, q = t % 4;
  const int64_t r0 = (f / 4) * 16 + (q & 1) * 8;
  const int64_t c0 = (f % 4) * 16 + (q >> 1) * 8;
  const int64_t nr = rows - r0 < 0 ? 0 : (rows - r0 > 8 ? 8 : rows - r0);
  const int64_t nc = cols - c0 < 0 ? 0 : (cols - c0 > 8 ? 8 : cols - c0);
  const uint64_t row_bits = nr == 8 ? ~uint64_t(0) : (uint64_t(1) << (8 * nr)) - 1;
  const uint64_t col_bits = ((uint64_t(1) << nc) - 1) * 0x0101010101010101ull;
  return row_bits & col_bits;
}

// The fused check of group g (rows x cols valid elements) whose masks have
// `bits` set bits.
template <typename T>
static inline bool group_ok(const BitmapSpmmArgs<T>& a, int64_t g, const uint64_t* masks, int bits, int64_t rows,
                            int64_t cols) {
  const int64_t o0 = a.group_offsets[g], o1 = a.group_offsets[g + 1];
  if (!(o0 >= 0 && o0 <= o1 && o1 <= a.nvalues)) return false;
  if (o1 - o0 != int64_t((bits + 7) / 8 * 8)) return false;
  if (rows < kGroup || cols < kGroup) {
    uint64_t outside = 0;
    for (int t = 0; t < kTilesPerGroup; ++t) outside |= masks[t] & ~tile_inside_mask(t, rows, cols);
    if (outside != 0) return false;
  }
  return true;
}

// n == 1, expansion: acc[lr] (lr < 64) += row lr of the group @ bt[0..64)
// (b's column in fp32, offset to the group's first column, zero past k), tile
// by tile: the 8 rows of a tile row stay in registers across its 8 tiles.
// kSafe: 8 values may be read from any row start of the group (true for every
// group but the last ones of the values array), so each row is one unmasked
// load.
template <bool kSafe, typename T>
static inline void group_dot_expand(const uint64_t* masks, const uint16_t* starts, const T* vals, const float* bt,
                                    float* acc) {
  for (int fr = 0; fr < 4; ++fr) {
    for (int qr = 0; qr < 2; ++qr) {
      Vec8 r[8];
      for (int i = 0; i < 8; ++i) r[i] = v8zero();
      for (int fc = 0; fc < 4; ++fc) {
        for (int qc = 0; qc < 2; ++qc) {
          const int t = (fr * 4 + fc) * 4 + qr + 2 * qc;
          const uint64_t mask = masks[t];
          if (mask == 0) continue;
          const Vec8 bv = v8loadf(bt + fc * 16 + qc * 8);
          const T* v = vals + starts[t];
          // mask byte i is row i; its values follow those of row i - 1. The
          // bytes come from the mask in a register (shifts, not byte loads:
          // the loop is bound by its loads, ~4 % at 1 thread)
          uint64_t rest = mask;
          for (int i = 0; i < 8; ++i, rest >>= 8) {
            const unsigned byte = unsigned(rest) & 0xffu;
            r[i] = v8fma(kSafe ? v8expand_full(v, byte) : v8expand(v, byte), bv, r[i]);
            v += __builtin_popcount(byte);
          }
        }
      }
      float* out = acc + fr * 16 + qr * 8;
      v8storef(out, v8add(v8loadf(out), v8hsum8(r)));
    }
  }
}

// Calls f(h, off, lr) for each block of RB rows (of a tile row) of a group
// that holds one of its first `rows` rows, h = std::integral_constant<int, H>
// (the block's place in its tile row, so that its shift is a constant), off =
// the tile row's first mask (its 8 tiles, left to right, are off +
// kBitmapTileOffset[j]), lr = the block's first row. The block functions it
// calls are noinline, so each keeps the register allocation that was
// measured (through this helper GCC inlined the n <= 4 ones into
// group_row_spmm, whose register pressure is what the constant shift avoids).
template <int RB, typename F, int... H>
static inline void tile_row_blocks(int rows, int off, int lr0, F& f, std::integer_sequence<int, H...>) {
  ((lr0 + H * RB < rows ? f(std::integral_constant<int, H>{}, off, lr0 + H * RB) : void()), ...);
}
template <int RB, typename F>
static inline void for_each_row_block(int rows, F&& f) {
  static_assert(8 % RB == 0, "row blocks within a tile row");
  for (int lr0 = 0; lr0 < rows; lr0 += 8)
    tile_row_blocks<RB>(rows, (lr0 >> 4) * 16 + ((lr0 >> 3) & 1), lr0, f, std::make_integer_sequence<int, 8 / RB>{});
}

#if defined(__AVX512BF16__)
// Byte-shuffle controls that expand a tile row of bf16 values: for row byte x,
// word lane i takes the next packed value (bytes 2r, 2r + 1, r the number of
// set bits of x below i) when bit i is set, else zero (0x80).
struct ExpandShuffles {
  alignas(16) uint8_t c[256][16];
  constexpr ExpandShuffles() : c{} {
    for (int x = 0; x < 256; ++x) {
      int r = 0;
      for (int i = 0; i < 8; ++i) {
        const bool set = (x >> i) & 1;
        c[x][2 * i] = set ? uint8_t(2 * r) : 0x80;
        c[x][2 * i + 1] = set ? uint8_t(2 * r + 1) : 0x80;
        r += set;
      }
    }
  }
};
static constexpr ExpandShuffles kExpandShuffles{};

// The 8 bf16 values of a tile row with mask byte `byte` whose packed values
// start at v, expanded into their lanes (zeros elsewhere). kSafe: 8 values
// readable from v; else a masked load of the row's count.
template <bool kSafe>
static inline __m128i expand_row_bf16(const bf16_t* v, unsigned byte, int cnt) {
  const __m128i src = kSafe ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(v))
                            : _mm_maskz_loadu_epi16(__mmask8((1u << cnt) - 1u), v);
  return _mm_shuffle_epi8(src, _mm_load_si128(reinterpret_cast<const __m128i*>(kExpandShuffles.c[byte])));
}

// n == 1, bf16 under avx512bf16: group_dot_expand with the tile rows expanded
// in bf16 (a byte shuffle, no widening) and multiplied by b's 8 values of the
// tile's columns (bt16: b's column in bf16, zero past k: copy_row_blocks_bf16
// with w = 1) with vdpbf16ps: four
// fp32 lanes of pair sums per row, reduced once per tile row of the group.
template <bool kSafe>
static inline void group_dot_expand_bf16(const uint64_t* masks, const uint16_t* starts, const bf16_t* vals,
                                         const uint16_t* bt16, float* acc) {
  for (int fr = 0; fr < 4; ++fr) {
    for (int qr = 0; qr < 2; ++qr) {
      __m128 r[8];
      for (int i = 0; i < 8; ++i) r[i] = _mm_setzero_ps();
      for (int fc = 0; fc < 4; ++fc) {
        for (int qc = 0; qc < 2; ++qc) {
          const int t = (fr * 4 + fc) * 4 + qr + 2 * qc;
          const uint64_t mask = masks[t];
          if (mask == 0) continue;
          const __m128bh bv = (__m128bh)_mm_loadu_si128(reinterpret_cast<const __m128i*>(bt16 + fc * 16 + qc * 8));
          const bf16_t* v = vals + starts[t];
          // byte i of the mask in memory is row i (x86 is little-endian):
          // loaded (a third load per row) rather than shifted out of a
          // register (three ALU instructions per row). Weights streamed from
          // memory (operand copies rotated, as a decode step reads them), 70 %:
          // 2 threads 4096^2 1.11 -> 0.93 ms and 0.84 -> 0.71 (two A/Bs),
          // 11008 x 4096 2.55 -> 2.25 and 2.46 -> 1.82; 1 thread 1.36 -> 1.24;
          // 50 % a tie. With one operand resident in L3, 2 threads, 4-9 %
          // slower (0.72 -> 0.81 ms). The fp32 loop, bound by its loads, keeps
          // the shifts.
          const uint8_t* mb = reinterpret_cast<const uint8_t*>(masks + t);
          for (int i = 0; i < 8; ++i) {
            const unsigned byte = mb[i];
            const int cnt = __builtin_popcount(byte);
            r[i] = _mm_dpbf16_ps(r[i], (__m128bh)expand_row_bf16<kSafe>(v, byte, cnt), bv);
            v += cnt;
          }
        }
      }
      // lane sums of rows 0-3 and 4-7 (hadd twice gives [sum r0, sum r1, sum r2, sum r3])
      const __m128 s0 = _mm_hadd_ps(_mm_hadd_ps(r[0], r[1]), _mm_hadd_ps(r[2], r[3]));
      const __m128 s1 = _mm_hadd_ps(_mm_hadd_ps(r[4], r[5]), _mm_hadd_ps(r[6], r[7]));
      float* out = acc + fr * 16 + qr * 8;
      _mm_storeu_ps(out, _mm_add_ps(_mm_loadu_ps(out), s0));
      _mm_storeu_ps(out + 4, _mm_add_ps(_mm_loadu_ps(out + 4), s1));
    }
  }
}

// Rows H * RB .. H * RB + RB - 1 of a tile row (mrow, srow as in
// expand_row_block_n, constant shift), each tile's b block loaded once for them.
template <int NZ, int RB, int H, bool kSafe>
__attribute__((noinline)) static void expand_row_block_bf16(const uint64_t* mrow, const uint16_t* srow, const bf16_t* vals,
                                         const uint16_t* bt16, float* acc) {
  constexpr int kShift = H * RB * 8;
  constexpr uint64_t kBelow = (uint64_t(1) << kShift) - 1;
  const __m512i pick = _mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
  __m512 r[RB][NZ];
  for (int i = 0; i < RB; ++i)
    for (int z = 0; z < NZ; ++z) r[i][z] = _mm512_setzero_ps();
#pragma GCC unroll 8
  for (int j = 0; j < 8; ++j) {
    const uint64_t mask = mrow[kBitmapTileOffset[j]];
    const bf16_t* v = vals + srow[kBitmapTileOffset[j]] + (kShift ? __builtin_popcountll(mask & kBelow) : 0);
    const uint16_t* blk = bt16 + j * 8 * 4 * NZ;
    __m512i bz[NZ];
    for (int z = 0; z < NZ; ++z) {
      bz[z] = _mm512_loadu_si512(blk + z * 32);
      if constexpr (RB > 1) __asm__("" : "+v"(bz[z]));  // once for the RB rows, in a register
    }
    uint64_t rest = mask >> kShift;
    for (int i = 0; i < RB; ++i, rest >>= 8) {
      const unsigned byte = unsigned(rest) & 0xffu;
      const int cnt = __builtin_popcount(byte);
      const __m512bh e = (__m512bh)_mm512_broadcast_i32x4(expand_row_bf16<kSafe>(v, byte, cnt));
      v += cnt;
      for (int z = 0; z < NZ; ++z) r[i][z] = _mm512_dpbf16_ps(r[i][z], e, (__m512bh)bz[z]);
    }
  }
  for (int i = 0; i < RB; ++i)
    for (int z = 0; z < NZ; ++z) {
      __m512 t = _mm512_add_ps(r[i][z], _mm512_permute_ps(r[i][z], 0x4e));  // lanes (2, 3, 0, 1) of each group
      t = _mm512_add_ps(t, _mm512_permute_ps(t, 0xb1));                    // (1, 0, 3, 2)
      const __m128 sums = _mm512_castps512_ps128(_mm512_permutexvar_ps(pick, t));
      float* out = acc + i * 8 + 4 * z;
      _mm_storeu_ps(out, _mm_add_ps(_mm_loadu_ps(out), sums));
    }
}

// 2 <= n <= 8, bf16 under avx512bf16: group_expand_n with each row's tile
// piece expanded in bf16 (8 values, 4 pairs), broadcast to the four 128-bit
// lanes of a zmm and multiplied with vdpbf16ps by b's 8 rows of the tile for
// 4 columns at once (lane group c: column c's 8 values as 4 pairs): NZ = 1 or
// 2 instructions per row and tile where the fp32 form has n FMAs and a
// widening. bt16: b in 8-row blocks, 4 NZ columns each (copy_row_blocks_bf16),
// offset to the group's first block. The 4 pair sums of each lane group are
// added at the end of the row. Rows in blocks of 4 as in group_expand_n.
template <int NZ, bool kSafe>
static inline void group_expand_n_bf16(const uint64_t* masks, const uint16_t* starts, const bf16_t* vals,
                                       const uint16_t* bt16, int rows, float* acc) {
  constexpr int RB = 4;
  for_each_row_block<RB>(rows, [&](auto h, int off, int lr) {
    expand_row_block_bf16<NZ, RB, decltype(h)::value, kSafe>(masks + off, starts + off, vals, bt16, acc + lr * 8);
  });
}

// b (n <= w columns, row stride ldb) in bf16 as blocks of 8 rows, each w
// columns of 8 values: dst[(c / 8) * w * 8 + j * 8 + c % 8] = b[c, j], zero
// for columns n .. w and rows rows .. rows_pad (w = 1: b's column, contiguous).
// Returns whether every element is finite.
static inline bool copy_row_blocks_bf16(const bf16_t* b, int64_t ldb, int64_t rows, int64_t rows_pad, int64_t n,
                                        int64_t w, uint16_t* dst) {
  uint32_t bad = 0;
  for (int64_t c = 0; c < rows_pad; ++c) {
    uint16_t* d = dst + (c / 8) * w * 8 + c % 8;
    for (int64_t j = 0; j < w; ++j) {
      const uint16_t x = c < rows && j < n ? b[c * ldb + j].bits : uint16_t(0);
      d[j * 8] = x;
      bad |= uint32_t((x & 0x7f80u) == 0x7f80u);
    }
  }
  return bad == 0;
}

#endif  // __AVX512BF16__

// 2 <= N <= 8, expansion: acc[lr, 0..N) += row lr of the group @ b[col0 ..
// col0 + 64, 0..N) (acc's rows 8 floats apart, lanes N..7 left 0), with bt = b in 8-row blocks transposed (transpose_row_blocks)
// offset to the group's first block. RB rows of a tile row at a time: their
// 8 tile bytes expand their values and each of the N columns takes one FMA
// per row and tile, in registers; the tile's N columns of b are loaded once
// for the RB rows, and the rows share the tile's mask and value start.
// Rows past `rows` (an edge group rounded up to RB) have no set bits: they
// read no value (or, kSafe, values the group may read) and add zeros to
// accumulator rows that are never stored.
template <int N, int RB, int H, bool kSafe, typename T>
__attribute__((noinline)) static void expand_row_block_n(const uint64_t* mrow, const uint16_t* srow, const T* vals, const float* bt,
                                      float* acc) {
  // rows H * RB .. H * RB + RB - 1 of the tile row (constant shift: fewer
  // live registers, so the compiler keeps the row pointers out of vector registers)
  constexpr int kShift = H * RB * 8;
  constexpr uint64_t kBelow = (uint64_t(1) << kShift) - 1;  // mask bits of the rows above the block
  Vec8 r[RB][8];
  for (int i = 0; i < RB; ++i)
    for (int c = 0; c < 8; ++c) r[i][c] = v8zero();
#pragma GCC unroll 8
  for (int j = 0; j < 8; ++j) {
    const uint64_t mask = mrow[kBitmapTileOffset[j]];
    const T* v = vals + srow[kBitmapTileOffset[j]] + (kShift ? __builtin_popcountll(mask & kBelow) : 0);
    const float* blk = bt + j * 8 * N;  // the tile's 8 rows of b, column by column
    Vec8 bv[N];
    for (int c = 0; c < N; ++c) {
      bv[c] = v8loadf(blk + c * 8);
      // loaded once for the RB rows: kept in a register (GCC otherwise folds
      // the load into each row's FMA)
#if defined(__AVX2__) || defined(__AVX512F__)
      if constexpr (RB > 1) __asm__("" : "+x"(bv[c].v));
#endif
    }
    uint64_t rest = mask >> kShift;
    for (int i = 0; i < RB; ++i, rest >>= 8) {
      const unsigned byte = unsigned(rest) & 0xffu;
      const Vec8 e = kSafe ? v8expand_full_permute2(v, byte) : v8expand(v, byte);
      v += __builtin_popcount(byte);
      for (int c = 0; c < N; ++c) r[i][c] = v8fma(e, bv[c], r[i][c]);
    }
  }
  // lanes N..7 of the sums are 0 (r[i][N..8) stay zero): one vector add per row
  for (int i = 0; i < RB; ++i) v8storef(acc + i * 8, v8add(v8loadf(acc + i * 8), v8hsum8(r[i])));
}

template <int N, int RB, bool kSafe, typename T>
static inline void group_expand_n(const uint64_t* masks, const uint16_t* starts, const T* vals, const float* bt,
                                  int rows, float* acc) {
  static_assert(N >= 2 && N <= 8, "one register per column");
  for_each_row_block<RB>(rows, [&](auto h, int off, int lr) {
    expand_row_block_n<N, RB, decltype(h)::value, kSafe>(masks + off, starts + off, vals, bt, acc + lr * 8);
  });
}

// Decodes a group into per-row lists (CSR inside the group): row lr's entries
// are sc.cols/sc.vals[row_begin[lr] .. row_begin[lr + 1]), columns 0..63 in
// increasing order times `scale` (1, or b's row stride so that the FMA loop
// adds them to a pointer as they are), values widened to fp32. Per (row, tile): the row byte's
// set-bit positions from a table and the 8 values from the row's start are
// stored whole, and the write position advances by the byte's popcount (no
// loop over bits). kSafe as for group_dot_expand; kPad: pad each row to a
// multiple of kRowPad entries with zero values (b must be finite).
template <bool kSafe, bool kPad, typename T>
static inline void decode_group(const uint64_t* masks, const uint16_t* starts, const T* vals, int rows,
                                int32_t scale, Scratch& sc) {
  int p = 0;
  for (int lr = 0; lr < rows; ++lr) {
    sc.row_begin[lr] = p;
    const uint64_t* mrow = masks + (lr >> 4) * 16 + ((lr >> 3) & 1);  // as in group_expand_n
    const uint16_t* srow = starts + (lr >> 4) * 16 + ((lr >> 3) & 1);
    const int shift = (lr & 7) * 8;
    const uint64_t below = (uint64_t(1) << shift) - 1;  // mask bits of the rows above it
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) {  // the row's 8 tiles, left to right
      const uint64_t mask = mrow[kBitmapTileOffset[j]];
      const unsigned byte = unsigned(mask >> shift) & 0xffu;
      const int cnt = __builtin_popcount(byte);
      const T* v = vals + srow[kBitmapTileOffset[j]] + __builtin_popcountll(mask & below);
      v8store_set_positions(sc.cols + p, byte, 8 * j, scale);
      v8storef(sc.vals + p, kSafe ? v8load(v) : v8load_partial(v, cnt));
      p += cnt;
    }
    if (!kPad) continue;
    // pad the row to a multiple of kRowPad with zero products on the row's
    // first column (b finite), so the FMA loop has no tail
    const int32_t pad_col = sc.cols[sc.row_begin[lr]];
    for (int i = 0; i < kRowPad; ++i) {
      sc.cols[p + i] = pad_col;
      sc.vals[p + i] = 0.f;
    }
    p = (p + kRowPad - 1) / kRowPad * kRowPad;
  }
  sc.row_begin[rows] = p;
}

// 1 <= N <= 16 columns: acc[lr, 0..N) += row lr of the decoded group @ b's
// rows, the N columns in NF full vectors plus one partial of R lanes.
template <int N, typename T>
static void group_times_b_small(const BitmapSpmmArgs<T>& a, Scratch& sc, int rows, int64_t col0) {
  constexpr int NF = N / kW, R = N % kW, NV = NF + (R ? 1 : 0);
  constexpr int S = NV <= 2 ? 4 : 1;  // independent accumulator sets: the FMAs of a row do not wait on each other
  const T* b = a.b + col0 * a.ldb;
  for (int lr = 0; lr < rows; ++lr) {
    const int p0 = sc.row_begin[lr], p1 = sc.row_begin[lr + 1];
    if (p0 == p1) continue;
    float* acc = sc.acc + lr * N;
    VecF c[S][NV];
    for (int u = 0; u < NF; ++u) c[0][u] = vload(acc + u * kW);
    if (R) c[0][NF] = vload_partial(acc + NF * kW, R);
    for (int s = 1; s < S; ++s)
      for (int u = 0; u < NV; ++u) c[s][u] = vzero();
    int p = p0;
    static_assert(kRowPad % S == 0, "rows are padded to whole accumulator sets");
    for (; p < p1; p += S) {
      for (int s = 0; s < S; ++s) {
        const VecF v = vset1(sc.vals[p + s]);
        const T* brow = b + sc.cols[p + s];  // premultiplied by ldb
        for (int u = 0; u < NF; ++u) c[s][u] = vfma(v, vload(brow + u * kW), c[s][u]);
        if (R) c[s][NF] = vfma(v, vload_partial(brow + NF * kW, R), c[s][NF]);
      }
    }
    for (int s = 1; s < S; ++s)
      for (int u = 0; u < NV; ++u) c[0][u] = vadd(c[0][u], c[s][u]);
    for (int u = 0; u < NF; ++u) vstore(acc + u * kW, c[0][u]);
    if (R) vstore_partial(acc + NF * kW, c[0][NF], R);
  }
}

// dense: the offset of tile t's first element in a row-major 64 x 64 tile
// (fragment t / 4 of the 4 x 4, quarter t % 4: row half q & 1, column half q >> 1).
struct TileOffsets {
  uint16_t at[kTilesPerGroup];
};
static constexpr TileOffsets make_tile_offsets() {
  TileOffsets o{};
  for (int t = 0; t < kTilesPerGroup; ++t) {
    const int f = t / 4, q = t % 4;
    o.at[t] = uint16_t(((f / 4) * 16 + (q & 1) * 8) * kGroup + (f % 4) * 16 + (q >> 1) * 8);
  }
  return o;
}
static constexpr TileOffsets kTileOffsets = make_tile_offsets();

// Whether expand_tile may start at any row (fp32 on AVX-512: vexpandps reads
// only the selected values), so groups need no safe / unsafe split.
template <typename T>
constexpr bool kExpandTileAnyStart =
#if defined(__AVX512F__)
    std::is_same_v<T, float>;
#else
    false;
#endif

// dense: tile t of a group expanded into `tile` (64 x 64 fp32, row-major,
// zeros where no bit is set; edge groups have no bit outside the matrix, so
// their extra rows and columns are zero too): each row byte expands its row's
// values into the 8 columns of the tile.
template <bool kSafe, typename T>
static inline void expand_tile(const uint64_t* masks, const uint16_t* starts, const T* vals, float* tile,
                               unsigned t) {
  float* dst = tile + kTileOffsets.at[t];
  const T* v = vals + starts[t];
  __builtin_prefetch(reinterpret_cast<const char*>(v) + kPrefetchBytes);
  uint64_t rest = masks[t];  // byte i is row i (shifted out of a register, as in group_dot_expand)
#if defined(__AVX512F__)
  if constexpr (kExpandTileAnyStart<T>) {
    // two rows per vexpandps from memory: EVEX only, so the registers it needs are
    // any of the 32 (the blend of v8expand_full is VEX, xmm0..15, which made
    // GCC spill the product's accumulators around it)
    for (int i = 0; i < 8; i += 2, rest >>= 16) {
      const unsigned pair = unsigned(rest) & 0xffffu;
      const __m512 e = _mm512_maskz_expandloadu_ps(__mmask16(pair), v);
      _mm256_storeu_ps(dst + i * kGroup, _mm512_castps512_ps256(e));
      _mm256_storeu_ps(dst + (i + 1) * kGroup, _mm512_extractf32x8_ps(e, 1));
      v += __builtin_popcount(pair);
    }
    return;
  }
#endif
  for (int i = 0; i < 8; ++i, rest >>= 8) {
    const unsigned byte = unsigned(rest) & 0xffu;
    v8storef(dst + i * kGroup, kSafe ? v8expand_full_permute2(v, byte) : v8expand(v, byte));
    v += __builtin_popcount(byte);
  }
}

// dense: acc[r0 + r, 0 .. NV * kW) += tile[r0 + r, :] @ bp[0..64, 0 .. NV * kW)
// for r < MR, bp's rows ldp floats apart (fp32, zero past k). MR x NV
// accumulators stay in registers across the 64 k steps; per step NV loads of
// b and MR broadcasts of the tile feed MR x NV FMAs (6 x 2: 12 FMAs for 8
// loads, FMA bound on AVX2's 16 registers).
// Every 4 k steps it expands one tile of the next group (ex: 64 tiles in the
// 256 k steps of a 1-vector pass, the fewest of any column count).
template <int MR, int NV, typename Ex>
static inline void tile_times_panel(const float* tile, const float* bp, int64_t ldp, float* acc, int64_t lda,
                                    Ex& ex_ref) {
  Ex ex = ex_ref;
  VecF c[MR][NV];
  for (int r = 0; r < MR; ++r)
    for (int u = 0; u < NV; ++u) c[r][u] = vload(acc + r * lda + u * kW);
  for (int kk = 0; kk < kGroup; ++kk) {
    if ((kk & 3) == 3) ex.step();
    VecF bv[NV];
    for (int u = 0; u < NV; ++u) bv[u] = vload(bp + kk * ldp + u * kW);
    for (int r = 0; r < MR; ++r) {
      const VecF av = vset1(tile[r * kGroup + kk]);
      for (int u = 0; u < NV; ++u) c[r][u] = vfma(av, bv[u], c[r][u]);
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int u = 0; u < NV; ++u) vstore(acc + r * lda + u * kW, c[r][u]);
  ex_ref = ex;
}

// dense: acc[0..64, 0..ncp) += tile @ bp[0..64, 0..ncp) (ncp a multiple of
// kW; acc's and bp's rows ncp floats apart). Panels of 2 vectors, rows in
// blocks of kMr2 and one of 4; then panels of 1 vector, rows in blocks of
// kMr1. The blocks fill the register file: 6 x 2 and 8 x 1 accumulators on
// AVX2 (16 registers), 12 x 2 and 16 x 1 on AVX-512 (32).
constexpr int kMr2 = kW >= 16 ? 12 : 6;
constexpr int kMr1 = kW >= 16 ? 16 : 8;
template <typename Ex>
static inline void tile_times_b(const float* tile, const float* bp, int64_t ncp, float* acc, Ex& ex) {
  constexpr int full = kGroup / kMr2 * kMr2;
  static_assert(kGroup - full == 4 && kGroup % kMr1 == 0, "row blocks");
  int64_t j = 0;
  for (; j + 2 * kW <= ncp; j += 2 * kW) {
    for (int r = 0; r < full; r += kMr2)
      tile_times_panel<kMr2, 2>(tile + r * kGroup, bp + j, ncp, acc + r * ncp + j, ncp, ex);
    tile_times_panel<4, 2>(tile + full * kGroup, bp + j, ncp, acc + full * ncp + j, ncp, ex);
  }
  for (; j < ncp; j += kW)
    for (int r = 0; r < kGroup; r += kMr1)
      tile_times_panel<kMr1, 1>(tile + r * kGroup, bp + j, ncp, acc + r * ncp + j, ncp, ex);
}

#if defined(__AVX512BF16__)
// dense, bf16 under avx512bf16: the group expanded in bf16 (no widening) and
// multiplied by b's rows in pairs with vdpbf16ps, which adds two products per
// fp32 lane: half the instructions of the fp32 tile product (FMA bound), from
// a copy of b's column chunk in row pairs (copy_column_pairs).
//
// Tile t of a group into tile (64 x 64 bf16 bits, row-major, zeros where no
// bit is set), row by row (expand_row_bf16); GroupExpander<bf16_t, uint16_t>.
template <bool kSafe>
static inline void expand_tile(const uint64_t* masks, const uint16_t* starts, const bf16_t* vals, uint16_t* tile,
                               unsigned t) {
  uint16_t* dst = tile + kTileOffsets.at[t];
  const uint64_t mask = masks[t];
  if (mask == 0) {
    for (int i = 0; i < 8; ++i) _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i * kGroup), _mm_setzero_si128());
    return;
  }
  const bf16_t* v = vals + starts[t];
  __builtin_prefetch(v + kPrefetchBytes / 2);
  uint64_t rest = mask;
  for (int i = 0; i < 8; ++i, rest >>= 8) {
    const unsigned byte = unsigned(rest) & 0xffu;
    const int cnt = __builtin_popcount(byte);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i * kGroup), expand_row_bf16<kSafe>(v, byte, cnt));
    v += cnt;
  }
}

// Columns [j0, j0 + nc) of b in row pairs: dst[p * ncp + j] = b[2p, j0 + j] |
// b[2p + 1, j0 + j] << 16 for p < rows_pad / 2 (ncp a multiple of 16), zero
// for rows >= rows and columns >= nc. Returns whether every copied element is
// finite (no exponent of all ones).
static inline bool copy_column_pairs(const bf16_t* b, int64_t ldb, int64_t rows, int64_t rows_pad, int64_t j0,
                                     int64_t nc, int64_t ncp, uint32_t* dst) {
  __mmask16 bad = 0;
  const __m256i expo = _mm256_set1_epi16(0x7f80);
  auto row16 = [&](int64_t c, int64_t j) {
    if (c >= rows || j >= nc) return _mm256_setzero_si256();
    const int w = nc - j < 16 ? int(nc - j) : 16;
    const __m256i x = _mm256_maskz_loadu_epi16(__mmask16((1u << w) - 1u), b + c * ldb + j0 + j);
    bad = __mmask16(bad | _mm256_cmpeq_epi16_mask(_mm256_and_si256(x, expo), expo));
    return x;
  };
  for (int64_t p = 0; 2 * p < rows_pad; ++p)
    for (int64_t j = 0; j < ncp; j += 16) {
      const __m512i lo = _mm512_cvtepu16_epi32(row16(2 * p, j)), hi = _mm512_cvtepu16_epi32(row16(2 * p + 1, j));
      _mm512_storeu_si512(dst + p * ncp + j, _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16)));
    }
  return bad == 0;
}

// acc[r, 0 .. 16 NV) += tile[r, :] @ b for r < MR, b as row pairs bp (rows ldp
// dwords apart): per pair step NV loads of b and MR broadcast value pairs feed
// MR x NV vdpbf16ps.
// Every 2 pair steps it expands one tile of the next group (ex: 64 tiles in
// the 128 pair steps of a 1-vector pass).
template <int MR, int NV, typename Ex>
static inline void tile_times_panel_dp(const uint16_t* tile, const uint32_t* bp, int64_t ldp, float* acc,
                                       int64_t lda, Ex& ex_ref) {
  Ex ex = ex_ref;
  __m512 c[MR][NV];
  for (int r = 0; r < MR; ++r)
    for (int u = 0; u < NV; ++u) c[r][u] = _mm512_loadu_ps(acc + r * lda + u * 16);
  for (int kk = 0; kk < kGroup / 2; ++kk) {
    if (kk & 1) ex.step();
    __m512bh bv[NV];
    for (int u = 0; u < NV; ++u) bv[u] = (__m512bh)_mm512_loadu_si512(bp + kk * ldp + u * 16);
    for (int r = 0; r < MR; ++r) {
      uint32_t pr;
      std::memcpy(&pr, tile + r * kGroup + 2 * kk, sizeof pr);
      const __m512bh av = (__m512bh)_mm512_set1_epi32(int(pr));
      for (int u = 0; u < NV; ++u) c[r][u] = _mm512_dpbf16_ps(c[r][u], av, bv[u]);
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int u = 0; u < NV; ++u) _mm512_storeu_ps(acc + r * lda + u * 16, c[r][u]);
  ex_ref = ex;
}

// acc[0..64, 0..ncp) += tile @ bp (ncp a multiple of 16): panels of 2
// vectors with rows in blocks of 12 (and one of 4), then single vectors with
// rows in blocks of 16 (24 and 16 accumulators of the 32 registers).
template <typename Ex>
static inline void tile_times_b_dp(const uint16_t* tile, const uint32_t* bp, int64_t ncp, float* acc, Ex& ex) {
  int64_t j = 0;
  for (; j + 32 <= ncp; j += 32) {
    for (int r = 0; r < 60; r += 12)
      tile_times_panel_dp<12, 2>(tile + r * kGroup, bp + j, ncp, acc + r * ncp + j, ncp, ex);
    tile_times_panel_dp<4, 2>(tile + 60 * kGroup, bp + j, ncp, acc + 60 * ncp + j, ncp, ex);
  }
  for (; j < ncp; j += 16)
    for (int r = 0; r < kGroup; r += 16)
      tile_times_panel_dp<16, 1>(tile + r * kGroup, bp + j, ncp, acc + r * ncp + j, ncp, ex);
}
#endif  // __AVX512BF16__

// How a call multiplies its groups (the same for every group of the call, or
// of a column chunk for kDense).
enum class Mode { kExpand, kDense, kDecodeSmall, kDecodeGeneral };

struct Plan {
  Mode mode;
  const float* bt;  // kExpand: b in 8-row blocks transposed (transpose_row_blocks);
                    // kDense: b's columns [j0, j0 + nc) in fp32, rows ncp floats apart, zero past k and past nc
  int32_t scale;    // decode: column multiplier (b's row stride for kDecodeSmall, else 1)
};

// Whether the expansion (n <= kExpandMaxN) multiplies in bf16 with vdpbf16ps
// (group_dot_expand_bf16, group_expand_n_bf16): bf16 under avx512bf16, but
// not n = 2, where two FMAs per row and tile beat the broadcast and
// vdpbf16ps (4096^2 70 %: 1.28 vs 1.42 ms; n = 3 1.50 vs 1.41).
// Columns of b's bf16 copy for it: 1 (n = 1), 4 or 8 (one or two vdpbf16ps of 4 columns).
static constexpr int64_t bf16_copy_width(int64_t n) { return n == 1 ? 1 : n <= 4 ? 4 : 8; }
template <typename T>
static constexpr bool bf16_dot_expand(const BitmapSpmmArgs<T>& a) {
#if defined(__AVX512BF16__)
  return std::is_same_v<T, bf16_t> && a.n != 2;
#else
  (void)a;
  return false;
#endif
}

// dense: expands a group tile by tile while the previous group's tile
// product runs (it calls step() every few of its k steps), so that the
// expansion's loads, shuffles and stores overlap the product's FMAs instead
// of following them (fp32, n = 16, 70 %, 1 thread: 4096^2 7.64 -> 6.56 ms,
// the product alone 5.55; bf16 50 % 4.81 -> 4.13; fp16 50 % 2048^2 1.76 ->
// 1.50; AVX2 ~5 %). Tile is the expanded type (float, or bf16 bits); kSafe
// as for group_dot_expand.
template <typename T, typename Tile, bool kSafe>
struct GroupExpander {
  const uint64_t* masks = nullptr;
  const uint16_t* starts = nullptr;
  const T* vals = nullptr;
  Tile* tile = nullptr;
  unsigned t = kTilesPerGroup;  // the next tile to expand (none left: kTilesPerGroup)
  inline void step() {
    if (t >= unsigned(kTilesPerGroup)) return;
    expand_tile<kSafe>(masks, starts, vals, tile, t);
    ++t;
  }
  void finish() {
    while (t < kTilesPerGroup) step();
  }
};

// Visits the groups of group row gi (rows valid rows) left to right: each
// one's tile starts into sc.starts, the fused check (a bad group: false, the
// visit stops), then f(masks, col0, vals, safe) for each nonempty group;
// safe: 8 values readable from the group's last value on, so every row start is.
template <typename T, typename F>
static inline bool for_each_group(const BitmapSpmmArgs<T>& a, Scratch& sc, int64_t gi, int rows, F&& f) {
  const int64_t gk = (a.k + kGroup - 1) / kGroup;
  for (int64_t gj = 0; gj < gk; ++gj) {
    const int64_t g = gi * gk + gj;
    const uint64_t* masks = a.bitmaps + g * kTilesPerGroup;
    const int64_t col0 = gj * kGroup;
    const int64_t cols = a.k - col0 < kGroup ? a.k - col0 : kGroup;
    const int bits = bitmap_tile_starts(masks, sc.starts);
    if (!group_ok(a, g, masks, bits, rows, cols)) return false;
    if (bits == 0) continue;  // empty group
    f(masks, col0, a.values + a.group_offsets[g], a.group_offsets[g + 1] + 8 <= a.nvalues);
  }
  return true;
}

// dense, the group row: each nonempty group's tile product (product(tile,
// col0, ex)) runs while the next one is expanded into the other tile buffer
// (the first is expanded alone).
template <typename T, typename Tile, typename Product>
static bool group_row_dense(const BitmapSpmmArgs<T>& a, Scratch& sc, int64_t gi, int rows, Tile* cur, Tile* next,
                            Product&& product) {
  int64_t cur_col0 = -1;  // the first column of the group expanded in cur (-1: none)
  const bool ok = for_each_group(a, sc, gi, rows, [&](const uint64_t* masks, int64_t col0, const T* vals, bool safe) {
    if (safe || kExpandTileAnyStart<T>) {
      GroupExpander<T, Tile, true> ex{masks, sc.starts, vals, next, 0};
      if (cur_col0 >= 0) product(static_cast<const Tile*>(cur), cur_col0, ex);
      ex.finish();
    } else if constexpr (!kExpandTileAnyStart<T>) {
      GroupExpander<T, Tile, false> ex{masks, sc.starts, vals, next, 0};
      if (cur_col0 >= 0) product(static_cast<const Tile*>(cur), cur_col0, ex);
      ex.finish();
    }
    std::swap(cur, next);
    cur_col0 = col0;
  });
  if (!ok) return false;
  if (cur_col0 >= 0) {
    GroupExpander<T, Tile, true> none;  // nothing to expand
    product(static_cast<const Tile*>(cur), cur_col0, none);
  }
  return true;
}

// Output rows of group row gi, columns [j0, j0 + nc).
template <typename T>
static bool group_row_spmm(const BitmapSpmmArgs<T>& a, const Plan& plan, Scratch& sc, int64_t gi, int64_t j0,
                           int64_t nc) {
  const int64_t r0 = gi * kGroup;
  const int rows = int(a.m - r0 < kGroup ? a.m - r0 : kGroup);
  // acc's rows are nc long, except for the expansion with n >= 2 (8: a row's
  // sums are added as one vector) and dense (nc rounded up to whole vectors)
  const int64_t stride = plan.mode == Mode::kExpand && nc >= 2 ? 8
                         : plan.mode == Mode::kDense   ? (nc + kW - 1) / kW * kW
                                                       : nc;
  // dense computes all 64 rows of acc (an edge group's extra rows are zero)
  const int acc_rows = plan.mode == Mode::kDense ? kGroup : rows;
  for (int64_t p = 0; p < acc_rows * stride; ++p) sc.acc[p] = 0.f;
  if (plan.mode == Mode::kDense) {
    bool ok;
#if defined(__AVX512BF16__)
    if constexpr (std::is_same_v<T, bf16_t>) {  // plan.bt holds b's row pairs (copy_column_pairs)
      const uint32_t* bp = reinterpret_cast<const uint32_t*>(plan.bt);
      ok = group_row_dense(a, sc, gi, rows, sc.tile16[0], sc.tile16[1],
                           [&](const uint16_t* tile, int64_t col0, auto& ex) {
                             tile_times_b_dp(tile, bp + (col0 / 2) * stride, stride, sc.acc, ex);
                           });
    } else
#endif
      ok = group_row_dense(a, sc, gi, rows, sc.tile[0], sc.tile[1], [&](const float* tile, int64_t col0, auto& ex) {
        tile_times_b(tile, plan.bt + col0 * stride, stride, sc.acc, ex);
      });
    if (!ok) return false;
  }
  if (plan.mode != Mode::kDense &&
      !for_each_group(a, sc, gi, rows, [&](const uint64_t* masks, int64_t col0, const T* vals, bool safe) {
      if (plan.mode == Mode::kExpand) {
        const float* bt = plan.bt + col0 * a.n;  // block col0 / 8, n * 8 floats per block
#if defined(__AVX512BF16__)
        if constexpr (std::is_same_v<T, bf16_t>) {
          if (bf16_dot_expand(a)) {  // plan.bt: copy_row_blocks_bf16, bf16_copy_width(n) columns
            const uint16_t* bt16 = reinterpret_cast<const uint16_t*>(plan.bt) + col0 * bf16_copy_width(a.n);
            if (a.n == 1) {
              if (safe)
                group_dot_expand_bf16<true>(masks, sc.starts, vals, bt16, sc.acc);
              else
                group_dot_expand_bf16<false>(masks, sc.starts, vals, bt16, sc.acc);
            } else if (a.n <= 4) {
              if (safe)
                group_expand_n_bf16<1, true>(masks, sc.starts, vals, bt16, rows, sc.acc);
              else
                group_expand_n_bf16<1, false>(masks, sc.starts, vals, bt16, rows, sc.acc);
            } else {
              if (safe)
                group_expand_n_bf16<2, true>(masks, sc.starts, vals, bt16, rows, sc.acc);
              else
                group_expand_n_bf16<2, false>(masks, sc.starts, vals, bt16, rows, sc.acc);
            }
            return;
          }
        }
#endif
        if (a.n == 1) {
          if (safe)
            group_dot_expand<true>(masks, sc.starts, vals, bt, sc.acc);
          else
            group_dot_expand<false>(masks, sc.starts, vals, bt, sc.acc);
          return;
        }
        switch (a.n) {
#define SK_CASE(N)                                                                             \
  case N:                                                                                      \
    if (safe)                                                                                  \
      group_expand_n<N, vec8_row_block<N>(), true>(masks, sc.starts, vals, bt, rows, sc.acc);  \
    else                                                                                       \
      group_expand_n<N, vec8_row_block<N>(), false>(masks, sc.starts, vals, bt, rows, sc.acc); \
    break;
          SK_CASE(2) SK_CASE(3) SK_CASE(4) SK_CASE(5) SK_CASE(6) SK_CASE(7) SK_CASE(8)
#undef SK_CASE
          default: break;
        }
        return;
      }
      // Decode the group once, then stream b's 64 rows of this group per panel.
      if (plan.mode == Mode::kDecodeSmall) {
        if (safe)
          decode_group<true, true>(masks, sc.starts, vals, rows, plan.scale, sc);
        else
          decode_group<false, true>(masks, sc.starts, vals, rows, plan.scale, sc);
        switch (a.n) {
#define SK_CASE(N) \
  case N: group_times_b_small<N>(a, sc, rows, col0); break;
          SK_CASE(1) SK_CASE(2) SK_CASE(3) SK_CASE(4) SK_CASE(5) SK_CASE(6) SK_CASE(7) SK_CASE(8)
          SK_CASE(9) SK_CASE(10) SK_CASE(11) SK_CASE(12) SK_CASE(13) SK_CASE(14) SK_CASE(15) SK_CASE(16)
#undef SK_CASE
          default: break;
        }
      } else {
        if (safe)
          decode_group<true, false>(masks, sc.starts, vals, rows, 1, sc);
        else
          decode_group<false, false>(masks, sc.starts, vals, rows, 1, sc);
        group_times_b(a, sc, rows, col0, j0, nc);
      }
    }))
    return false;
  for (int lr = 0; lr < rows; ++lr) {
    store_row_sums(a.out + (r0 + lr) * a.ldo + j0, sc.acc + lr * stride, nc, a.bias ? a.bias + r0 + lr : nullptr);
  }
  return true;
}

// Whether every element of b is finite.
template <typename T>
static bool b_finite(const BitmapSpmmArgs<T>& a) {
  uint32_t bad = 0;  // as in transpose_row_blocks
  for (int64_t c = 0; c < a.k; ++c)
    for (int64_t j = 0; j < a.n; ++j) {
      const float x = to_float(a.b[c * a.ldb + j]);
      bad |= non_finite_bit(x);
    }
  return bad == 0;
}

// Whether n > kExpandMaxN columns take the dense path. Its cost per group is
// the same at any density (the expansion, ~1 FMA cycle per element per 2
// vectors of columns), the decode's falls with the density but costs ~2 loads
// and a broadcast per stored value per 2 vectors plus the per-(row, tile)
// decode. Crossovers measured on AVX2 (4096 x 4096 fp32, 2 threads,
// docs/performance.md): n = 16 at ~25 % density, 24-64 at ~30-35 %, 128 at
// ~50 %.
template <typename T>
static bool use_dense(const BitmapSpmmArgs<T>& a) {
#if defined(__AVX512BF16__)
  // bf16 by vdpbf16ps: the tile product costs half as much, so it pays down
  // to lower densities (Zen 4, 4096^2 bf16, 2 threads, tile vs decode: n = 16
  // 1.95 vs 2.6 ms at 10 % density, a tie at 5 %; n = 32 3.3 vs 5.2 at 30 %,
  // a tie at 15-20 %; n = 64 5.8 vs 4.7 at 15 %; n = 128 11.7 vs 13.9 at 30 %,
  // 11.8 vs 9.7 at 20 %)
  if constexpr (std::is_same_v<T, bf16_t>) {
    const double min_bf16 = a.n <= 16 ? 0.05 : a.n <= 64 ? 0.2 : 0.25;
    return double(a.nvalues) >= min_bf16 * double(a.m) * double(a.k);
  }
#endif
  const double min_density = a.n <= 16 ? 0.25 : a.n <= 64 ? 0.35 : 0.5;
  return double(a.nvalues) >= min_density * double(a.m) * double(a.k);
}

__attribute__((noinline)) static Scratch& thread_scratch() {
  static thread_local Scratch sc;
  return sc;
}
__attribute__((noinline)) static FloatBuffer& thread_bt() {
  static thread_local FloatBuffer buf;
  return buf;
}

}  // namespace

template <typename T>
void bitmap_spmm(const BitmapSpmmArgs<T>& a, int64_t begin, int64_t end, int64_t* first_bad) {
  // One scratch per thread, reused by every call (the thread-local address is
  // looked up once here, not inside the loops).
  Scratch& sc = thread_scratch();
  *first_bad = -1;
  if (begin >= end) return;
  Plan plan{Mode::kDecodeGeneral, nullptr, 1};
  FloatBuffer& buf = thread_bt();
  const int64_t kpad = (a.k + kGroup - 1) / kGroup * kGroup;  // b's copies are zero past k
  if (a.n > kExpandMaxN && use_dense(a)) {
    // column chunk by column chunk: b's chunk in fp32, then every group row
    // of the range; a chunk whose b has a NaN or infinity is decoded instead
    // (only stored values meet it)
    for (int64_t j0 = 0; j0 < a.n; j0 += kDenseChunk) {
      const int64_t nc = a.n - j0 < kDenseChunk ? a.n - j0 : kDenseChunk;
      const int64_t ncp = (nc + kW - 1) / kW * kW;
      Plan chunk{Mode::kDecodeGeneral, nullptr, 1};
#if defined(__AVX512BF16__)
      if constexpr (std::is_same_v<T, bf16_t>) {
        if (buf.reserve(kpad / 2 * ncp) &&
            copy_column_pairs(a.b, a.ldb, a.k, kpad, j0, nc, ncp, reinterpret_cast<uint32_t*>(buf.data)))
          chunk = Plan{Mode::kDense, buf.data, 1};
      } else
#endif
      if (buf.reserve(kpad * ncp) && copy_columns_fp32(a.b, a.ldb, a.k, kpad, j0, nc, ncp, buf.data))
        chunk = Plan{Mode::kDense, buf.data, 1};
      for (int64_t gi = begin; gi < end; ++gi)
        if (!group_row_spmm(a, chunk, sc, gi, j0, nc)) {
          *first_bad = gi;
          return;
        }
    }
    return;
  }
  if (a.n <= kExpandMaxN) {
    bool bf16_copy = false;  // b copied in bf16 for the vdpbf16ps expansion (bf16_dot_expand)
#if defined(__AVX512BF16__)
    if constexpr (std::is_same_v<T, bf16_t>) {
      if (bf16_dot_expand(a)) {
        bf16_copy = true;
        const int64_t w = bf16_copy_width(a.n);
        if (buf.reserve(kpad * w / 2 + 1) &&
            copy_row_blocks_bf16(a.b, a.ldb, a.k, kpad, a.n, w, reinterpret_cast<uint16_t*>(buf.data)))
          plan = Plan{Mode::kExpand, buf.data, 1};
      }
    }
#endif
    // b in 8-row blocks, transposed; false when b holds a NaN or infinity
    if (!bf16_copy && buf.reserve(a.n * kpad) && transpose_row_blocks(a.b, a.ldb, a.k, kpad, a.n, 8, buf.data))
      plan = Plan{Mode::kExpand, buf.data, 1};
  }
  if (plan.mode != Mode::kExpand && a.n <= 16 && a.ldb < (int64_t(1) << 31) / kGroup && b_finite(a))
    plan = Plan{Mode::kDecodeSmall, nullptr, int32_t(a.ldb)};
  const int64_t nc_max = a.n < kColumnChunk ? a.n : kColumnChunk;
  if (plan.mode == Mode::kDecodeGeneral && a.n > 16 && a.ldb * int64_t(sizeof(T)) >= kPackMinRowBytes &&
      buf.reserve((a.k * nc_max * int64_t(sizeof(T)) + 3) / 4)) {
    // b's rows far apart: each column chunk of b is copied into a contiguous
    // buffer (rows nc apart, values as they are), then every group row of the
    // range uses it (kPackMinRowBytes)
    T* const dst = reinterpret_cast<T*>(buf.data);
    for (int64_t j0 = 0; j0 < a.n; j0 += kColumnChunk) {
      const int64_t nc = a.n - j0 < kColumnChunk ? a.n - j0 : kColumnChunk;
      copy_column_block(a.b, a.ldb, a.k, j0, nc, dst);
      BitmapSpmmArgs<T> ab = a;  // column j of ab is column j0 + j of a
      ab.b = dst;
      ab.ldb = nc;
      ab.out = a.out + j0;
      for (int64_t gi = begin; gi < end; ++gi)
        if (!group_row_spmm(ab, plan, sc, gi, 0, nc)) {
          *first_bad = gi;
          return;
        }
    }
    return;
  }
  for (int64_t gi = begin; gi < end; ++gi)
    for (int64_t j0 = 0; j0 < a.n; j0 += kColumnChunk)
      if (!group_row_spmm(a, plan, sc, gi, j0, a.n - j0 < kColumnChunk ? a.n - j0 : kColumnChunk)) {
        *first_bad = gi;
        return;
      }
}

template void bitmap_spmm<float>(const BitmapSpmmArgs<float>&, int64_t, int64_t, int64_t*);
template void bitmap_spmm<half_t>(const BitmapSpmmArgs<half_t>&, int64_t, int64_t, int64_t*);
template void bitmap_spmm<bf16_t>(const BitmapSpmmArgs<bf16_t>&, int64_t, int64_t, int64_t*);

SK_CPU_NAMESPACE_END
