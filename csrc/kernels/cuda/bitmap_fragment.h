// Where the CUDA bitmap SpMM (bitmap_spmm.cu) finds each lane's elements.
//
// Host and device code with no CUDA dependency: the kernels include it, and
// tests/cuda_emulation/bitmap_mma_emulation.cpp compiles it with the host
// compiler, builds every lane's registers for random matrices and checks them
// against the mma.m16n8k16 fragment layouts as the PTX ISA states them
// (written out independently in that test), so the index arithmetic is checked
// on machines without a GPU.
//
// Layout (docs/formats.md, "bitmap"): a 64 x 64 group is a 4 x 4 grid of
// 16 x 16 fragments (f = fr * 4 + fc); a fragment is four 8 x 8 tiles in mma
// A-register order (q = 0: rows 0-7 / cols 0-7, q = 1: rows 8-15 / cols 0-7,
// q = 2: rows 0-7 / cols 8-15, q = 3: rows 8-15 / cols 8-15), tile t = f * 4 + q
// of the group; bit r * 8 + c of a tile's mask is its element (r, c); a group's
// values are packed tile by tile, set bits in ascending order.
//
// In an m16n8k16 A fragment (.f16 / .bf16) lane L holds, for quarter q, the
// registers a[2q], a[2q + 1]: tile-local row L >> 2 and tile-local columns
// 2 (L & 3), 2 (L & 3) + 1 of tile q. That is why the layout numbers the tiles
// in this order: a lane's two elements of a tile are adjacent bits, and the
// tile's mask and value start are all a lane needs to find them.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define SK_HD __host__ __device__ __forceinline__
#else
#define SK_HD inline
#endif

namespace sk {
namespace cuda {
namespace bitmap {

constexpr int kGroup = 64;           // rows and columns of a group
constexpr int kTilesPerGroup = 64;   // 8 x 8 tiles per group
constexpr int kFragmentRows = 4;     // 16-row fragment rows per group (one warp each)

SK_HD int popc64(uint64_t x) {
#if defined(__CUDA_ARCH__)
  return __popcll(x);
#else
  return __builtin_popcountll(x);
#endif
}

// Tile number inside the group of quarter q of fragment (fr, fc).
SK_HD int tile_index(int fr, int fc, int q) { return (fr * 4 + fc) * 4 + q; }

// Bit of the first of lane's two elements in a tile (tile-local row lane >> 2,
// column 2 (lane & 3)); the second is the next bit. At most 62.
SK_HD int pair_bit(int lane) { return (lane >> 2) * 8 + (lane & 3) * 2; }

// Lane's two elements of a tile whose values start at `tile_start` in the
// values array: set0 / set1 tell whether each is stored; the first stored one
// is at values[idx], the second (when both are) at values[idx + 1].
struct PairRef {
  int64_t idx;
  bool set0, set1;
};
SK_HD PairRef tile_pair(uint64_t mask, int64_t tile_start, int lane) {
  const int bit = pair_bit(lane);
  const uint64_t below = mask & ((uint64_t(1) << bit) - 1);
  return {tile_start + popc64(below), ((mask >> bit) & 1) != 0, ((mask >> (bit + 1)) & 1) != 0};
}

// Value start of tile t of a group whose values begin at `base`, from the
// kernels' staged prefix sums: incl_t is the inclusive popcount prefix of tile t
// within its half of the group (tiles 0-31 or 32-63, one warp scan each),
// incl_31 that of tile 31 (the whole first half), mask_t the tile's mask.
SK_HD int64_t tile_value_start(int64_t base, int t, int32_t incl_t, int32_t incl_31, uint64_t mask_t) {
  return base + (t >= 32 ? incl_31 : 0) + incl_t - popc64(mask_t);
}

// Blocks along K for a bitmap SpMM launch: enough blocks for every SM to hold
// several (`blocks`: the grid over group rows x column chunks, `gk`: groups
// along K), at least two groups per split. Returns the splits, and sets
// per_split (groups per split; the last split may hold fewer, none is empty).
SK_HD int64_t plan_splits(int64_t blocks, int64_t gk, int sm_count, int64_t max_splits, int64_t* per_split) {
  const int64_t target = 8 * static_cast<int64_t>(sm_count > 0 ? sm_count : 1);
  int64_t splits = 1;
  if (gk >= 4 && blocks > 0 && blocks < target) {
    splits = (target + blocks - 1) / blocks;
    if (splits > gk / 2) splits = gk / 2;
    if (splits > max_splits) splits = max_splits;
    if (splits < 1) splits = 1;
  }
  *per_split = gk == 0 ? 1 : (gk + splits - 1) / splits;
  return gk == 0 ? 1 : (gk + *per_split - 1) / *per_split;
}

// B operand (k16 x n8, .f16 / .bf16) of m16n8k16: lane's element i (0..3)
// sits at k = b_k(lane, i), n = b_n(lane); registers b[0] = {i = 0, 1},
// b[1] = {i = 2, 3}, the lower index in the low half.
SK_HD int b_k(int lane, int i) { return (lane & 3) * 2 + (i & 1) + (i >> 1) * 8; }
SK_HD int b_n(int lane) { return lane >> 2; }

// Accumulator (m16 x n8, f32) of m16n8k16: lane's element i (0..3).
SK_HD int c_row(int lane, int i) { return (lane >> 2) + (i >> 1) * 8; }
SK_HD int c_col(int lane, int i) { return (lane & 3) * 2 + (i & 1); }

// Fragment-local (row, column) of lane's element e (0..7) in the A fragment:
// quarter q = e / 2, element e % 2 of its pair. (The CUDA-core path uses this
// to know which row and which k each decoded element belongs to.)
SK_HD int pair_row(int lane, int e) { return (lane >> 2) + ((e >> 1) & 1) * 8; }
SK_HD int pair_col(int lane, int e) { return (lane & 3) * 2 + (e & 1) + (e >> 2) * 8; }

// Mask of the elements of tile t of a group that lie inside the matrix, when
// the group has `rows` valid rows and `cols` valid columns (each 0..64); the
// same function as the CPU validator's (core/validate_bitmap.cpp).
SK_HD uint64_t tile_inside_mask(int t, int64_t rows, int64_t cols) {
  const int f = t / 4, q = t % 4;
  const int64_t r0 = (f / 4) * 16 + (q & 1) * 8;
  const int64_t c0 = (f % 4) * 16 + (q >> 1) * 8;
  int64_t nr = rows - r0, nc = cols - c0;
  nr = nr < 0 ? 0 : (nr > 8 ? 8 : nr);
  nc = nc < 0 ? 0 : (nc > 8 ? 8 : nc);
  const uint64_t row_bits = nr == 8 ? ~uint64_t(0) : (uint64_t(1) << (8 * nr)) - 1;
  const uint64_t col_bits = ((uint64_t(1) << nc) - 1) * 0x0101010101010101ull;
  return row_bits & col_bits;
}

}  // namespace bitmap
}  // namespace cuda
}  // namespace sk
