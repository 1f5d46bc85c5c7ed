// CPU sparse::dense_to_sparse24 and sparse::sparse24_to_dense (docs/formats.md, 2:4).
#include <tuple>

#include <ATen/Parallel.h>
#include <torch/library.h>

#include "core/checks.h"
#include "core/output.h"
#include "core/parallel_find.h"
#include "core/validate.h"
#include "ops/cpu/pack_common.h"

namespace sk {

namespace {

constexpr int64_t kSparse24KAlign = 16;  // rows padded to a whole int16 of metadata

// Packs one group (columns 4g .. 4g+3 of `row`, those >= k read as 0) into
// vals[0..1] and its 4-bit metadata; returns the number of non-zeros found
// (more than 2: nothing is written, the caller raises).
template <typename scalar_t>
int pack_group(const scalar_t* row, int64_t k, int64_t g, scalar_t* vals, unsigned* nib) {
  int pos[4];
  int count = 0;
  for (int q = 0; q < 4; ++q) {
    const int64_t col = 4 * g + q;
    if (col < k && is_nonzero(row[col])) pos[count++] = q;
  }
  if (count > 2) return count;
  // Fewer than 2 non-zeros: explicit zeros at the lowest free positions.
  int idx0 = 0, idx1 = 1;
  if (count == 2) {
    idx0 = pos[0];
    idx1 = pos[1];
  } else if (count == 1 && pos[0] != 0) {
    idx1 = pos[0];
  }
  const int64_t c0 = 4 * g + idx0, c1 = 4 * g + idx1;
  vals[0] = c0 < k && is_nonzero(row[c0]) ? row[c0] : scalar_t(0);
  vals[1] = c1 < k && is_nonzero(row[c1]) ? row[c1] : scalar_t(0);
  *nib = unsigned(idx0) | (unsigned(idx1) << 2);
  return count;
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> dense_to_sparse24_cpu(const at::Tensor& dense) {
  constexpr const char* op = "sparse::dense_to_sparse24";
  const at::Tensor d = check_pack_dense_input(op, dense);
  const int64_t m = d.size(0), k = d.size(1);
  const int64_t kp = (k + kSparse24KAlign - 1) / kSparse24KAlign * kSparse24KAlign;
  const int64_t groups = kp / 4;
  at::Tensor values = empty_output({m, kp / 2}, d.options());
  at::Tensor meta = empty_output({m, kp / 16}, d.options().dtype(at::kShort));
  dispatch_pack_type(d.scalar_type(), op, [&](auto vtag) {
    using scalar_t = decltype(vtag);
    const scalar_t* src = d.data_ptr<scalar_t>();
    scalar_t* vals = values.data_ptr<scalar_t>();
    uint16_t* words = reinterpret_cast<uint16_t*>(meta.data_ptr());
    // Packs row i; true if it breaks the 2:4 pattern (the first such row is reported).
    const auto pack_row = [&](int64_t i) {
      const scalar_t* row = src + i * k;
      for (int64_t w = 0; w < kp / 16; ++w) {
        unsigned word = 0;
        for (int64_t gg = 0; gg < 4; ++gg) {
          const int64_t g = 4 * w + gg;
          unsigned nib = 0;
          if (pack_group(row, k, g, vals + i * (kp / 2) + 2 * g, &nib) > 2) return true;
          word |= nib << (4 * gg);
        }
        words[i * (kp / 16) + w] = uint16_t(word);
      }
      return false;
    };
    const int64_t bad_row = parallel_find_first(m, pack_row_grain(k), pack_row);
    if (bad_row == m) return;
    const scalar_t* row = src + bad_row * k;
    for (int64_t g = 0; g < groups; ++g) {
      scalar_t scratch[2];
      unsigned nib;
      const int count = pack_group(row, k, g, scratch, &nib);
      TORCH_CHECK_VALUE(count <= 2, op, ": 'dense' is not 2:4 sparse: row ", bad_row, ", group ", g, " (columns ",
                        4 * g, "..", 4 * g + 3, ") has ", count, " non-zeros; at most 2 of every 4 are allowed");
    }
  });
  return {values, meta};
}

at::Tensor sparse24_to_dense_cpu(const at::Tensor& values, const at::Tensor& meta, int64_t k) {
  constexpr const char* op = "sparse::sparse24_to_dense";
  check_unpack_values_dtype(op, values, "values");
  validate_sparse24(op, values, meta, k);
  const int64_t m = values.size(0), kp = (k + kSparse24KAlign - 1) / kSparse24KAlign * kSparse24KAlign;
  at::Tensor out = empty_output({m, k}, values.options());
  if (m == 0 || k == 0) return out;
  dispatch_pack_type(values.scalar_type(), op, [&](auto vtag) {
    using scalar_t = decltype(vtag);
    const scalar_t* vals = values.data_ptr<scalar_t>();
    const uint16_t* words = reinterpret_cast<const uint16_t*>(meta.data_ptr());
    scalar_t* dst = out.data_ptr<scalar_t>();
    at::parallel_for(0, m, pack_row_grain(k), [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        scalar_t* row = dst + i * k;
        const scalar_t* v = vals + i * (kp / 2);
        const uint16_t* w = words + i * (kp / 16);
        std::fill(row, row + k, scalar_t(0));
        for (int64_t g = 0; 4 * g < k; ++g) {
          const unsigned nib = (unsigned(w[g / 4]) >> (4 * (g % 4))) & 0xfu;
          const int64_t c0 = 4 * g + (nib & 3u), c1 = 4 * g + (nib >> 2);
          if (c0 < k) row[c0] = v[2 * g];
          if (c1 < k) row[c1] = v[2 * g + 1];
        }
      }
    });
  });
  return out;
}

TORCH_LIBRARY_IMPL(sparse, CPU, m) {
  m.impl("dense_to_sparse24", &dense_to_sparse24_cpu);
  m.impl("sparse24_to_dense", &sparse24_to_dense_cpu);
}

}  // namespace sk
