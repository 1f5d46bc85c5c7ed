#include <algorithm>
#include <atomic>

#include <ATen/Parallel.h>

#include "core/checks.h"
#include "core/dispatch.h"
#include "core/validate.h"

namespace sk {

namespace {

constexpr int64_t kGroup = 64;

// Mask of the elements of tile t of a group that lie inside the matrix, when
// the group has `rows` valid rows and `cols` valid columns (each 0..64).
uint64_t tile_inside_mask(int t, int64_t rows, int64_t cols) {
  const int f = t / 4, q = t % 4;
  const int64_t r0 = (f / 4) * 16 + (q & 1) * 8;  // tile origin inside the group
  const int64_t c0 = (f % 4) * 16 + (q >> 1) * 8;
  const int64_t nr = std::min<int64_t>(8, std::max<int64_t>(0, rows - r0));
  const int64_t nc = std::min<int64_t>(8, std::max<int64_t>(0, cols - c0));
  const uint64_t row_bits = nr == 8 ? ~uint64_t(0) : (uint64_t(1) << (8 * nr)) - 1;
  const uint64_t col_bits = ((uint64_t(1) << nc) - 1) * 0x0101010101010101ull;
  return row_bits & col_bits;
}

// Set bits of a group's 64 masks. This file is built for baseline x86-64,
// where __builtin_popcountll is a library call; the popcnt clone (picked at
// load time on CPUs that have it) makes the validation of every call cheap.
__attribute__((target_clones("popcnt", "default"))) int64_t group_bits(const uint64_t* masks) {
  int64_t bits = 0;
  for (int t = 0; t < 64; ++t) bits += __builtin_popcountll(masks[t]);
  return bits;
}

// Lowers `slot` to `value` if smaller (first offending index wins).
void record_first(std::atomic<int64_t>& slot, int64_t value) {
  int64_t cur = slot.load();
  while (value < cur && !slot.compare_exchange_weak(cur, value)) {
  }
}

}  // namespace

void check_bitmap_arrays(const char* op, const at::Tensor& group_offsets, const at::Tensor& bitmaps,
                         const at::Tensor& values, int64_t m, int64_t k) {
  TORCH_CHECK_VALUE(m >= 0 && k >= 0, op, ": the sparse shape must be non-negative, got (", m, ", ", k, ")");
  SK_CHECK_STRIDED(op, group_offsets);
  SK_CHECK_STRIDED(op, bitmaps);
  SK_CHECK_STRIDED(op, values);
  SK_CHECK_DTYPE(op, group_offsets, at::kLong);
  SK_CHECK_DTYPE(op, bitmaps, at::kLong);
  const at::ScalarType vt = values.scalar_type();
  TORCH_CHECK_TYPE(vt == at::kFloat || vt == at::kHalf || vt == at::kBFloat16 || is_cpu_float64(values), op,
                   ": 'values' has unsupported dtype ", vt, "; expected " SK_CPU_VALUE_DTYPES);
  SK_CHECK_DIM(op, group_offsets, 1);
  SK_CHECK_DIM(op, bitmaps, 1);
  SK_CHECK_DIM(op, values, 1);
  SK_CHECK_CONTIGUOUS(op, group_offsets);
  SK_CHECK_CONTIGUOUS(op, bitmaps);
  SK_CHECK_CONTIGUOUS(op, values);
  SK_CHECK_SAME_DEVICE(op, group_offsets, bitmaps);
  SK_CHECK_SAME_DEVICE(op, group_offsets, values);

  const int64_t gm = (m + kGroup - 1) / kGroup, gk = (k + kGroup - 1) / kGroup;
  const int64_t groups = gm * gk;
  TORCH_CHECK_VALUE(group_offsets.numel() == groups + 1, op, ": 'group_offsets' must have G + 1 = ", groups + 1,
                    " entries for a ", m, " x ", k, " matrix (G = ", gm, " x ", gk, " groups of 64 x 64), got ",
                    group_offsets.numel());
  TORCH_CHECK_VALUE(bitmaps.numel() == groups * 64, op, ": 'bitmaps' must have G * 64 = ", groups * 64,
                    " entries for a ", m, " x ", k, " matrix (G = ", groups, " groups), got ", bitmaps.numel());
}

void raise_bitmap_first_offset(const char* op, int64_t value) {
  TORCH_CHECK_VALUE(false, op, ": 'group_offsets[0]' must be 0, got ", value);
}

void raise_bitmap_last_offset(const char* op, int64_t groups, int64_t values_len, int64_t value) {
  TORCH_CHECK_VALUE(false, op, ": 'group_offsets[G]' (G = ", groups, ") must equal the length of 'values' (",
                    values_len, "), got ", value);
}

void raise_bitmap_bad_bit(const char* op, int64_t index, uint64_t mask, int64_t m, int64_t k) {
  const int64_t gk = (k + kGroup - 1) / kGroup;
  const int64_t g = index / 64;
  const int t = int(index % 64);
  const int64_t rows = std::min(kGroup, m - (g / gk) * kGroup);
  const int64_t cols = std::min(kGroup, k - (g % gk) * kGroup);
  const uint64_t outside = mask & ~tile_inside_mask(t, rows, cols);
  TORCH_CHECK(outside != 0, op, ": internal error: bitmaps[", index, "] has no bit outside the matrix");
  const int bit = __builtin_ctzll(outside);
  const int f = t / 4, q = t % 4;
  const int64_t row = (g / gk) * kGroup + (f / 4) * 16 + (q & 1) * 8 + bit / 8;
  const int64_t col = (g % gk) * kGroup + (f % 4) * 16 + (q >> 1) * 8 + bit % 8;
  TORCH_CHECK_VALUE(false, op, ": 'bitmaps[", index, "]' (group ", g, ", tile ", t, ") has bit ", bit,
                    " set for element (", row, ", ", col, "), outside the ", m, " x ", k, " matrix");
}

void raise_bitmap_bad_count(const char* op, int64_t g, int64_t begin, int64_t end, int64_t bits) {
  TORCH_CHECK_VALUE(false, op, ": 'group_offsets' gives group ", g, " group_offsets[", g + 1, "] - group_offsets[", g,
                    "] = ", end, " - ", begin, " values, but its 64 bitmaps have ", bits,
                    " set bits, so the count must be ", (bits + 7) / 8 * 8, " (rounded up to a multiple of 8)");
}

void check_bitmap_header(const char* op, const at::Tensor& group_offsets, const at::Tensor& bitmaps,
                         const at::Tensor& values, int64_t m, int64_t k) {
  check_bitmap_arrays(op, group_offsets, bitmaps, values, m, k);
  const int64_t groups = group_offsets.numel() - 1;
  const int64_t* offs = group_offsets.data_ptr<int64_t>();
  if (offs[0] != 0) raise_bitmap_first_offset(op, offs[0]);
  if (offs[groups] != values.numel()) raise_bitmap_last_offset(op, groups, values.numel(), offs[groups]);
}

void validate_bitmap(const char* op, const at::Tensor& group_offsets, const at::Tensor& bitmaps,
                     const at::Tensor& values, int64_t m, int64_t k) {
  check_bitmap_header(op, group_offsets, bitmaps, values, m, k);
  const int64_t gm = (m + kGroup - 1) / kGroup, gk = (k + kGroup - 1) / kGroup;
  const int64_t groups = gm * gk;
  const int64_t* offs = group_offsets.data_ptr<int64_t>();
  const uint64_t* masks = reinterpret_cast<const uint64_t*>(bitmaps.data_ptr<int64_t>());

  // Per group: every bit inside m x k, and the value count matches the masks.
  // With offs[0] == 0 the counts pin every offset, so offsets are in range.
  std::atomic<int64_t> bad_bit{groups * 64}, bad_count{groups};
  at::parallel_for(0, groups, 256, [&](int64_t gb, int64_t ge) {
    for (int64_t g = gb; g < ge; ++g) {
      const int64_t rows = std::min(kGroup, m - (g / gk) * kGroup);
      const int64_t cols = std::min(kGroup, k - (g % gk) * kGroup);
      const uint64_t* gmask = masks + g * 64;
      const int64_t bits = group_bits(gmask);
      if (rows < kGroup || cols < kGroup) {
        for (int t = 0; t < 64; ++t) {
          if (gmask[t] & ~tile_inside_mask(t, rows, cols)) {
            record_first(bad_bit, g * 64 + t);
            break;
          }
        }
      }
      const uint64_t expected = uint64_t((bits + 7) / 8 * 8);
      // Unsigned difference: corrupt offsets near the int64 limits must not overflow.
      if (uint64_t(offs[g + 1]) - uint64_t(offs[g]) != expected) record_first(bad_count, g);
    }
  });

  const int64_t bb = bad_bit.load();
  if (bb < groups * 64) raise_bitmap_bad_bit(op, bb, masks[bb], m, k);
  const int64_t bc = bad_count.load();
  if (bc < groups) raise_bitmap_bad_count(op, bc, offs[bc], offs[bc + 1], group_bits(masks + bc * 64));
}

}  // namespace sk
