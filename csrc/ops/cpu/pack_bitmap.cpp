// CPU sparse::dense_to_bitmap and sparse::bitmap_to_dense (layout:
// docs/formats.md, bitmap). Both work group by group in parallel; groups own
// disjoint 64 x 64 blocks of the dense matrix, so no two threads touch the same
// element. Values are moved as raw bits (every value dtype is 16, 32 or 64 bits),
// so packing and unpacking are exact.
#include <algorithm>

#include <ATen/Parallel.h>
#include <torch/library.h>

#include "core/checks.h"
#include "core/dispatch.h"
#include "core/output.h"
#include "core/validate.h"

namespace sk {

namespace {

constexpr int64_t kGroup = 64;

// Where tile t of a group starts inside the group (see docs/formats.md).
inline int64_t tile_row0(int t) { return (t / 16) * 16 + (t & 1) * 8; }
inline int64_t tile_col0(int t) { return ((t / 4) % 4) * 16 + ((t >> 1) & 1) * 8; }

// Raw-bit view of a value dtype: U holds one element, kMagnitude masks out the
// sign, so (bits & kMagnitude) != 0 is exactly `x != 0` (NaN kept, -0 dropped).
template <typename U>
struct RawBits;
template <>
struct RawBits<uint32_t> {
  static constexpr uint32_t kMagnitude = 0x7fffffffu;
};
template <>
struct RawBits<uint64_t> {
  static constexpr uint64_t kMagnitude = 0x7fffffffffffffffull;
};
template <>
struct RawBits<uint16_t> {
  static constexpr uint16_t kMagnitude = 0x7fffu;
};

template <typename F>
void dispatch_raw_bits(at::ScalarType st, const char* op, F&& f) {
  switch (st) {
    case at::kDouble:
      f(uint64_t{});
      break;
    case at::kFloat:
      f(uint32_t{});
      break;
    case at::kHalf:
    case at::kBFloat16:
      f(uint16_t{});
      break;
    default:
      TORCH_CHECK_TYPE(false, op, ": unsupported dtype ", st, "; expected " SK_CPU_VALUE_DTYPES);
  }
}

struct GroupGeometry {
  int64_t gm, gk;
  int64_t row0(int64_t g) const { return (g / gk) * kGroup; }
  int64_t col0(int64_t g) const { return (g % gk) * kGroup; }
};

// Masks of group g's 64 tiles from the dense rows (row stride k); returns the
// number of set bits.
template <typename U>
int64_t build_masks(const U* dense, int64_t m, int64_t k, const GroupGeometry& geo, int64_t g, uint64_t* masks) {
  std::fill(masks, masks + 64, uint64_t(0));
  const int64_t r0 = geo.row0(g), c0 = geo.col0(g);
  const int64_t rows = std::min(kGroup, m - r0), cols = std::min(kGroup, k - c0);
  for (int64_t lr = 0; lr < rows; ++lr) {
    const U* drow = dense + (r0 + lr) * k + c0;
    const int trow = int((lr >> 4) * 16 + ((lr >> 3) & 1));  // tile number of column 0
    const int shift = int(lr & 7) * 8;
    for (int64_t lc = 0; lc < cols; ++lc) {
      if ((drow[lc] & RawBits<U>::kMagnitude) == 0) continue;
      const int t = trow + int(lc >> 4) * 4 + int((lc >> 3) & 1) * 2;
      masks[t] |= uint64_t(1) << (shift + int(lc & 7));
    }
  }
  int64_t bits = 0;
  for (int t = 0; t < 64; ++t) bits += __builtin_popcountll(masks[t]);
  return bits;
}

template <typename U>
void pack_groups(const U* dense, int64_t k, const GroupGeometry& geo, const int64_t* offsets,
                 const uint64_t* bitmaps, U* values, int64_t gb, int64_t ge) {
  for (int64_t g = gb; g < ge; ++g) {
    U* v = values + offsets[g];
    const int64_t r0 = geo.row0(g), c0 = geo.col0(g);
    for (int t = 0; t < 64; ++t) {
      const int64_t tr = r0 + tile_row0(t), tc = c0 + tile_col0(t);
      for (uint64_t mask = bitmaps[g * 64 + t]; mask != 0; mask &= mask - 1) {
        const int bit = __builtin_ctzll(mask);
        *v++ = dense[(tr + (bit >> 3)) * k + tc + (bit & 7)];
      }
    }
    std::fill(v, values + offsets[g + 1], U(0));  // padding to a multiple of 8
  }
}

template <typename U>
void unpack_groups(const uint64_t* bitmaps, const int64_t* offsets, const U* values, int64_t m, int64_t k,
                   const GroupGeometry& geo, U* dense, int64_t gb, int64_t ge) {
  for (int64_t g = gb; g < ge; ++g) {
    const int64_t r0 = geo.row0(g), c0 = geo.col0(g);
    const int64_t rows = std::min(kGroup, m - r0), cols = std::min(kGroup, k - c0);
    for (int64_t lr = 0; lr < rows; ++lr) std::fill_n(dense + (r0 + lr) * k + c0, cols, U(0));
    const U* v = values + offsets[g];
    for (int t = 0; t < 64; ++t) {
      const int64_t tr = r0 + tile_row0(t), tc = c0 + tile_col0(t);
      for (uint64_t mask = bitmaps[g * 64 + t]; mask != 0; mask &= mask - 1) {
        const int bit = __builtin_ctzll(mask);
        dense[(tr + (bit >> 3)) * k + tc + (bit & 7)] = *v++;
      }
    }
  }
}

}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor> dense_to_bitmap_cpu(const at::Tensor& dense) {
  constexpr const char* op = "sparse::dense_to_bitmap";
  SK_CHECK_STRIDED(op, dense);
  SK_CHECK_DIM(op, dense, 2);
  const at::ScalarType st = dense.scalar_type();
  TORCH_CHECK_TYPE(st == at::kFloat || st == at::kHalf || st == at::kBFloat16 || st == at::kDouble, op,
                   ": 'dense' has unsupported dtype ", st, "; expected " SK_CPU_VALUE_DTYPES);
  const at::Tensor d = dense.contiguous();
  const int64_t m = d.size(0), k = d.size(1);
  const GroupGeometry geo{(m + kGroup - 1) / kGroup, (k + kGroup - 1) / kGroup};
  const int64_t groups = geo.gm * geo.gk;
  at::Tensor offsets = empty_output({groups + 1}, d.options().dtype(at::kLong));
  at::Tensor bitmaps = empty_output({groups * 64}, d.options().dtype(at::kLong));
  at::Tensor values;
  dispatch_raw_bits(d.scalar_type(), op, [&](auto tag) {
    using U = decltype(tag);
    const U* src = reinterpret_cast<const U*>(d.data_ptr());
    int64_t* offs = offsets.data_ptr<int64_t>();
    uint64_t* masks = reinterpret_cast<uint64_t*>(bitmaps.data_ptr<int64_t>());
    // Count pass: masks, and each group's padded value count in offs[g + 1].
    at::parallel_for(0, groups, 4, [&](int64_t gb, int64_t ge) {
      for (int64_t g = gb; g < ge; ++g) {
        const int64_t bits = build_masks(src, m, k, geo, g, masks + g * 64);
        offs[g + 1] = (bits + 7) / 8 * 8;
      }
    });
    // Prefix sum: counts -> offsets.
    offs[0] = 0;
    for (int64_t g = 0; g < groups; ++g) offs[g + 1] += offs[g];
    values = empty_output({offs[groups]}, d.options());
    U* dst = reinterpret_cast<U*>(values.data_ptr());
    // Fill pass: each group's values tile by tile, then its padding.
    at::parallel_for(0, groups, 4, [&](int64_t gb, int64_t ge) {
      pack_groups(src, k, geo, offs, masks, dst, gb, ge);
    });
  });
  return {offsets, bitmaps, values};
}

at::Tensor bitmap_to_dense_cpu(const at::Tensor& group_offsets, const at::Tensor& bitmaps, const at::Tensor& values,
                               int64_t m, int64_t k) {
  constexpr const char* op = "sparse::bitmap_to_dense";
  validate_bitmap(op, group_offsets, bitmaps, values, m, k);
  at::Tensor out = empty_output({m, k}, values.options());
  const GroupGeometry geo{(m + kGroup - 1) / kGroup, (k + kGroup - 1) / kGroup};
  const int64_t groups = geo.gm * geo.gk;
  dispatch_raw_bits(values.scalar_type(), op, [&](auto tag) {
    using U = decltype(tag);
    const int64_t* offs = group_offsets.data_ptr<int64_t>();
    const uint64_t* masks = reinterpret_cast<const uint64_t*>(bitmaps.data_ptr<int64_t>());
    const U* src = reinterpret_cast<const U*>(values.data_ptr());
    U* dst = reinterpret_cast<U*>(out.data_ptr());
    at::parallel_for(0, groups, 4, [&](int64_t gb, int64_t ge) {
      unpack_groups(masks, offs, src, m, k, geo, dst, gb, ge);
    });
  });
  return out;
}

TORCH_LIBRARY_IMPL(sparse, CPU, m) {
  m.impl("dense_to_bitmap", &dense_to_bitmap_cpu);
  m.impl("bitmap_to_dense", &bitmap_to_dense_cpu);
}

}  // namespace sk
