// The bitmap layout of docs/formats.md, packed element by element from the
// text (not the library's packer), for the host emulations of the CUDA kernels.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace sk_test {

struct Packed {
  int64_t m = 0, k = 0, gm = 0, gk = 0;
  std::vector<int64_t> offs;
  std::vector<uint64_t> masks;
  std::vector<float> values;
};

// The packer of docs/formats.md ("bitmap"), written from the text.
inline Packed pack(const std::vector<float>& a, int64_t m, int64_t k) {
  Packed p;
  p.m = m;
  p.k = k;
  p.gm = (m + 63) / 64;
  p.gk = (k + 63) / 64;
  const int64_t groups = p.gm * p.gk;
  p.masks.assign(groups * 64, 0);
  p.offs.assign(groups + 1, 0);
  for (int64_t gi = 0; gi < p.gm; ++gi) {
    for (int64_t gj = 0; gj < p.gk; ++gj) {
      const int64_t g = gi * p.gk + gj;
      std::vector<float> tile_vals[64];
      for (int64_t r = gi * 64; r < std::min(m, gi * 64 + 64); ++r) {
        for (int64_t c = gj * 64; c < std::min(k, gj * 64 + 64); ++c) {
          const float v = a[r * k + c];
          if (v == 0.f) continue;
          const int lr = static_cast<int>(r % 64), lc = static_cast<int>(c % 64);
          const int fr = lr / 16, fc = lc / 16;
          const int q = ((lr % 16) >= 8 ? 1 : 0) + ((lc % 16) >= 8 ? 2 : 0);
          const int t = (fr * 4 + fc) * 4 + q;
          const int bit = (lr % 8) * 8 + (lc % 8);
          p.masks[g * 64 + t] |= uint64_t(1) << bit;
        }
      }
      // Values tile by tile, set bits ascending.
      int64_t count = 0;
      for (int t = 0; t < 64; ++t) {
        const uint64_t mask = p.masks[g * 64 + t];
        const int f = t / 4, q = t % 4;
        const int64_t r0 = gi * 64 + (f / 4) * 16 + (q & 1) * 8;
        const int64_t c0 = gj * 64 + (f % 4) * 16 + (q >> 1) * 8;
        for (int bit = 0; bit < 64; ++bit) {
          if ((mask >> bit) & 1) {
            p.values.push_back(a[(r0 + bit / 8) * k + c0 + bit % 8]);
            ++count;
          }
        }
      }
      while (count % 8 != 0) {
        p.values.push_back(0.f);
        ++count;
      }
      p.offs[g + 1] = p.offs[g] + count;
    }
  }
  return p;
}

}  // namespace sk_test
