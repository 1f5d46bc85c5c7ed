// Host emulation of the CUDA bitmap SpMM (csrc/kernels/cuda/bitmap_spmm.cu).
//
// No GPU is needed: this program runs the kernels' per-lane index arithmetic
// (csrc/kernels/cuda/bitmap_fragment.h, included as is) for every lane of
// every warp, and replaces the hardware by what the PTX ISA specifies:
//   - mma.m16n8k16 (.f16 / .bf16 inputs, .f32 accumulator): the fragment
//     layouts below are written out here from the ISA's tables, independently
//     of bitmap_fragment.h, so a wrong index in the header shows as a wrong
//     product;
//   - __shfl_up_sync / __shfl_xor_sync over the 32 lanes.
// It packs random matrices into the bitmap layout with its own packer (from
// docs/formats.md, not the library's), runs the tensor-core and the CUDA-core
// decomposition (column chunks, a grid.y smaller than the chunk count, K
// splits with an fp32 workspace), and compares with a dense product in double.
// Values are small integers, so every sum is exact in float and the
// comparison is equality.
//
// Build and run (tests/test_cuda_emulation.py does this in CI):
//   c++ -std=c++17 -O1 -Icsrc tests/cuda_emulation/bitmap_mma_emulation.cpp -o emu && ./emu
// Prints one line per failure and a summary; exit status 0 when all pass.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "kernels/cuda/bitmap_fragment.h"
#include "bitmap_pack.h"

namespace bm = sk::cuda::bitmap;
using sk_test::Packed;
using sk_test::pack;

namespace {

constexpr int kLanes = 32;
constexpr int kWarps = 4;

// ---- the hardware, from the PTX ISA --------------------------------------
// mma.m16n8k16, .f16/.bf16 A (16 x 16, row): lane L, groupID g = L >> 2,
// threadID_in_group t = L % 4; elements a0..a7 (a_{2j}, a_{2j+1} in register j):
//   a0, a1: row g,     cols 2t, 2t+1        a2, a3: row g + 8, cols 2t, 2t+1
//   a4, a5: row g,     cols 2t+8, 2t+9      a6, a7: row g + 8, cols 2t+8, 2t+9
// B (16 x 8, col): b0, b1: rows (k) 2t, 2t+1, col g;  b2, b3: rows 2t+8, 2t+9, col g.
// C / D (16 x 8, f32): c0, c1: row g, cols 2t, 2t+1;  c2, c3: row g + 8, cols 2t, 2t+1.
int ptx_a_row(int lane, int i) { return (lane >> 2) + ((i == 2 || i == 3 || i == 6 || i == 7) ? 8 : 0); }
int ptx_a_col(int lane, int i) { return (lane % 4) * 2 + (i % 2) + (i >= 4 ? 8 : 0); }
int ptx_b_row(int lane, int i) { return (lane % 4) * 2 + (i % 2) + (i >= 2 ? 8 : 0); }
int ptx_b_col(int lane) { return lane >> 2; }
int ptx_c_row(int lane, int i) { return (lane >> 2) + (i >= 2 ? 8 : 0); }
int ptx_c_col(int lane, int i) { return (lane % 4) * 2 + (i % 2); }

// d = A B + c over one warp: areg[lane][8] halves, breg[lane][4], acc[lane][4].
void mma_m16n8k16(const float (&areg)[kLanes][8], const float (&breg)[kLanes][4], float (&acc)[kLanes][4]) {
  double A[16][16] = {}, B[16][8] = {};
  for (int l = 0; l < kLanes; ++l) {
    for (int i = 0; i < 8; ++i) A[ptx_a_row(l, i)][ptx_a_col(l, i)] = areg[l][i];
    for (int i = 0; i < 4; ++i) B[ptx_b_row(l, i)][ptx_b_col(l)] = breg[l][i];
  }
  for (int l = 0; l < kLanes; ++l) {
    for (int i = 0; i < 4; ++i) {
      double s = acc[l][i];
      for (int kk = 0; kk < 16; ++kk) s += A[ptx_c_row(l, i)][kk] * B[kk][ptx_c_col(l, i)];
      acc[l][i] = static_cast<float>(s);
    }
  }
}

// __shfl_up_sync inclusive scan over a warp, as stage_group does it.
void warp_inclusive_scan(int (&v)[kLanes]) {
  for (int d = 1; d < kLanes; d <<= 1) {
    int up[kLanes];
    for (int l = 0; l < kLanes; ++l) up[l] = v[(l - d + kLanes) % kLanes];  // lanes below d keep their own
    for (int l = 0; l < kLanes; ++l)
      if (l >= d) v[l] += up[l];
  }
}

// ---- the kernels' decomposition -------------------------------------------
struct StageE {
  uint64_t mask[64];
  int32_t incl[64];
  std::vector<float> b;  // 64 x nc
};

int g_failures = 0;
#define CHECK(cond, ...)                      \
  do {                                        \
    if (!(cond)) {                            \
      if (g_failures < 20) {                  \
        std::printf("FAIL %s: ", #cond);      \
        std::printf(__VA_ARGS__);             \
        std::printf("\n");                    \
      }                                       \
      ++g_failures;                           \
    }                                         \
  } while (0)

void stage(StageE& st, const Packed& p, const std::vector<float>& b, int64_t n, int64_t g, int64_t gj, int64_t n0,
           int nc) {
  for (int half = 0; half < 2; ++half) {  // warps 0 and 1 of the block
    int v[kLanes];
    for (int l = 0; l < kLanes; ++l) {
      st.mask[half * 32 + l] = p.masks[g * 64 + half * 32 + l];
      v[l] = bm::popc64(st.mask[half * 32 + l]);
    }
    warp_inclusive_scan(v);
    for (int l = 0; l < kLanes; ++l) st.incl[half * 32 + l] = v[l];
  }
  st.b.assign(64 * nc, 0.f);
  for (int r = 0; r < 64; ++r)
    for (int c = 0; c < nc; ++c) {
      const int64_t kk = gj * 64 + r, nn = n0 + c;
      st.b[r * nc + c] = (kk < p.k && nn < n) ? b[kk * n + nn] : 0.f;
    }
}

// Reads the value the kernel reads for (tile t, lane, element 0 or 1), checking
// that the index stays inside the group's values and matches the dense A.
float fetch(const Packed& p, const StageE& st, int64_t g, int t, int lane, int which, bool* set) {
  const int64_t base = p.offs[g];
  const int64_t start = bm::tile_value_start(base, t, st.incl[t], st.incl[31], st.mask[t]);
  const bm::PairRef ref = bm::tile_pair(st.mask[t], start, lane);
  *set = which == 0 ? ref.set0 : ref.set1;
  if (!*set) return 0.f;
  const int64_t idx = ref.idx + (which == 1 && ref.set0 ? 1 : 0);
  CHECK(idx >= base && idx < p.offs[g + 1], "value index %lld outside group %lld [%lld, %lld)", (long long)idx,
        (long long)g, (long long)base, (long long)p.offs[g + 1]);
  if (idx < base || idx >= p.offs[g + 1]) return 0.f;
  return p.values[idx];
}

// out (m x n) by the tensor-core kernel's decomposition with NT n8 tiles per block.
std::vector<float> run_mma(const Packed& p, const std::vector<float>& b, int64_t n, int nt, int64_t grid_y,
                           int64_t per_split) {
  const int nc = nt * 8;
  const int64_t chunks = (n + nc - 1) / nc;
  const int64_t splits = p.gk == 0 ? 1 : (p.gk + per_split - 1) / per_split;
  std::vector<float> ws(p.m * n, 0.f), out(p.m * n, -777.f);
  StageE st;
  for (int64_t gi = 0; gi < p.gm; ++gi)
    for (int64_t by = 0; by < grid_y; ++by)
      for (int64_t z = 0; z < splits; ++z)
        for (int64_t chunk = by; chunk < chunks; chunk += grid_y) {
          const int64_t n0 = chunk * nc;
          std::vector<float> acc(kWarps * nt * kLanes * 4, 0.f);
          auto A = [&](int w, int j, int l, int i) -> float& { return acc[((w * nt + j) * kLanes + l) * 4 + i]; };
          for (int64_t gj = z * per_split; gj < std::min(p.gk, (z + 1) * per_split); ++gj) {
            const int64_t g = gi * p.gk + gj;
            stage(st, p, b, n, g, gj, n0, nc);
            for (int w = 0; w < kWarps; ++w)
              for (int fc = 0; fc < 4; ++fc) {
                float areg[kLanes][8];
                for (int l = 0; l < kLanes; ++l)
                  for (int q = 0; q < 4; ++q) {
                    const int t = bm::tile_index(w, fc, q);
                    bool s0, s1;
                    areg[l][2 * q] = fetch(p, st, g, t, l, 0, &s0);
                    areg[l][2 * q + 1] = fetch(p, st, g, t, l, 1, &s1);
                  }
                const int kb = fc * 16;
                for (int j = 0; j < nt; ++j) {
                  float breg[kLanes][4], c[kLanes][4];
                  for (int l = 0; l < kLanes; ++l) {
                    const int nl = j * 8 + bm::b_n(l);
                    for (int i = 0; i < 4; ++i) {
                      breg[l][i] = st.b[(kb + bm::b_k(l, i)) * nc + nl];
                      c[l][i] = A(w, j, l, i);
                    }
                  }
                  mma_m16n8k16(areg, breg, c);
                  for (int l = 0; l < kLanes; ++l)
                    for (int i = 0; i < 4; ++i) A(w, j, l, i) = c[l][i];
                }
              }
          }
          for (int w = 0; w < kWarps; ++w)
            for (int j = 0; j < nt; ++j)
              for (int l = 0; l < kLanes; ++l)
                for (int i = 0; i < 4; ++i) {
                  const int64_t row = gi * 64 + w * 16 + bm::c_row(l, i);
                  const int64_t col = n0 + j * 8 + bm::c_col(l, i);
                  if (row < p.m && col < n) {
                    if (splits > 1)
                      ws[row * n + col] += A(w, j, l, i);
                    else {
                      CHECK(out[row * n + col] == -777.f, "element (%lld, %lld) written twice", (long long)row,
                            (long long)col);
                      out[row * n + col] = A(w, j, l, i);
                    }
                  }
                }
        }
  if (splits > 1) out = ws;
  return out;
}

// out by the CUDA-core kernel's decomposition with NC columns per block.
std::vector<float> run_simt(const Packed& p, const std::vector<float>& b, int64_t n, int nc, int64_t grid_y,
                            int64_t per_split) {
  const int64_t chunks = (n + nc - 1) / nc;
  const int64_t splits = p.gk == 0 ? 1 : (p.gk + per_split - 1) / per_split;
  std::vector<float> ws(p.m * n, 0.f), out(p.m * n, -777.f);
  StageE st;
  for (int64_t gi = 0; gi < p.gm; ++gi)
    for (int64_t by = 0; by < grid_y; ++by)
      for (int64_t z = 0; z < splits; ++z)
        for (int64_t chunk = by; chunk < chunks; chunk += grid_y) {
          const int64_t n0 = chunk * nc;
          std::vector<float> acc(kWarps * kLanes * 2 * nc, 0.f);
          auto A = [&](int w, int l, int r, int c) -> float& { return acc[((w * kLanes + l) * 2 + r) * nc + c]; };
          for (int64_t gj = z * per_split; gj < std::min(p.gk, (z + 1) * per_split); ++gj) {
            const int64_t g = gi * p.gk + gj;
            stage(st, p, b, n, g, gj, n0, nc);
            for (int w = 0; w < kWarps; ++w)
              for (int fc = 0; fc < 4; ++fc)
                for (int l = 0; l < kLanes; ++l) {
                  float v[8];
                  bool set[8];
                  for (int q = 0; q < 4; ++q) {
                    const int t = bm::tile_index(w, fc, q);
                    v[2 * q] = fetch(p, st, g, t, l, 0, &set[2 * q]);
                    v[2 * q + 1] = fetch(p, st, g, t, l, 1, &set[2 * q + 1]);
                  }
                  for (int e = 0; e < 8; ++e) {
                    // The kernel's row choice must agree with pair_row.
                    CHECK(((e >> 1) & 1) == (bm::pair_row(l, e) >= 8 ? 1 : 0), "row half of lane %d element %d", l, e);
                    CHECK(bm::pair_row(l, e) % 8 == (l >> 2), "row of lane %d element %d", l, e);
                    if (!set[e]) continue;
                    const int r = (e >> 1) & 1;
                    for (int c = 0; c < nc; ++c)
                      A(w, l, r, c) += v[e] * st.b[(fc * 16 + bm::pair_col(l, e)) * nc + c];
                  }
                }
          }
          // __shfl_xor_sync(1), then (2): each lane gets the sum of its row's 4 lanes.
          for (int w = 0; w < kWarps; ++w)
            for (int d = 1; d <= 2; d <<= 1) {
              std::vector<float> copy(acc.begin() + w * kLanes * 2 * nc, acc.begin() + (w + 1) * kLanes * 2 * nc);
              for (int l = 0; l < kLanes; ++l)
                for (int r = 0; r < 2; ++r)
                  for (int c = 0; c < nc; ++c) A(w, l, r, c) += copy[((l ^ d) * 2 + r) * nc + c];
            }
          for (int w = 0; w < kWarps; ++w)
            for (int l = 0; l < kLanes; ++l)
              for (int r = 0; r < 2; ++r)
                for (int c = 0; c < nc; ++c) {
                  const int64_t row = gi * 64 + w * 16 + (l >> 2) + r * 8, col = n0 + c;
                  if ((c & 3) == (l & 3) && row < p.m && col < n) {
                    if (splits > 1)
                      ws[row * n + col] += A(w, l, r, c);
                    else {
                      CHECK(out[row * n + col] == -777.f, "element (%lld, %lld) written twice", (long long)row,
                            (long long)col);
                      out[row * n + col] = A(w, l, r, c);
                    }
                  }
                }
        }
  if (splits > 1) out = ws;
  return out;
}

int g_cases = 0;

void compare(const char* what, const std::vector<float>& got, const std::vector<double>& want, int64_t m, int64_t k,
             int64_t n, int param, int64_t grid_y, int64_t per_split) {
  ++g_cases;
  for (int64_t i = 0; i < m * n; ++i) {
    if (got[i] != static_cast<float>(want[i])) {
      CHECK(false, "%s m=%lld k=%lld n=%lld param=%d grid_y=%lld per_split=%lld: out[%lld, %lld] = %g, want %g", what,
            (long long)m, (long long)k, (long long)n, param, (long long)grid_y, (long long)per_split,
            (long long)(i / n), (long long)(i % n), got[i], want[i]);
      return;
    }
  }
}

void run_case(std::mt19937_64& rng, int64_t m, int64_t k, int64_t n, double density) {
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::uniform_int_distribution<int> val(-4, 4);
  std::vector<float> a(m * k, 0.f), b(k * n);
  for (auto& x : a)
    if (u(rng) < density) {
      int v = val(rng);
      x = static_cast<float>(v == 0 ? 1 : v);
    }
  for (auto& x : b) x = static_cast<float>(val(rng));
  std::vector<double> want(m * n, 0.0);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t kk = 0; kk < k; ++kk)
      for (int64_t j = 0; j < n; ++j) want[i * n + j] += double(a[i * k + kk]) * b[kk * n + j];
  const Packed p = pack(a, m, k);
  for (int64_t g = 0; g + 1 < static_cast<int64_t>(p.offs.size()); ++g)
    CHECK((p.offs[g] * 2) % 16 == 0, "group %lld values not 16-byte aligned in fp16", (long long)g);

  const int64_t per_splits[] = {std::max<int64_t>(p.gk, 1), 1, 2};
  for (int nt : {1, 2, 4, 8}) {
    const int64_t chunks = (n + nt * 8 - 1) / (nt * 8);
    for (int64_t ps : per_splits)
      for (int64_t gy : {chunks, std::max<int64_t>(1, chunks / 2)})
        compare("mma", run_mma(p, b, n, nt, std::max<int64_t>(gy, 1), ps), want, m, k, n, nt, gy, ps);
  }
  for (int nc : {8, 16}) {
    const int64_t chunks = (n + nc - 1) / nc;
    for (int64_t ps : per_splits)
      compare("simt", run_simt(p, b, n, nc, std::max<int64_t>(chunks, 1), ps), want, m, k, n, nc, chunks, ps);
  }
}

void check_helpers() {
  // tile_inside_mask against an element-by-element count.
  for (int rows : {0, 1, 7, 8, 9, 16, 33, 63, 64})
    for (int cols : {0, 1, 8, 15, 40, 64})
      for (int t = 0; t < 64; ++t) {
        const int f = t / 4, q = t % 4;
        const int r0 = (f / 4) * 16 + (q & 1) * 8, c0 = (f % 4) * 16 + (q >> 1) * 8;
        uint64_t want = 0;
        for (int bit = 0; bit < 64; ++bit)
          if (r0 + bit / 8 < rows && c0 + bit % 8 < cols) want |= uint64_t(1) << bit;
        CHECK(bm::tile_inside_mask(t, rows, cols) == want, "tile_inside_mask(%d, %d, %d)", t, rows, cols);
      }
  // The helpers' fragment layouts against the ISA's.
  for (int l = 0; l < kLanes; ++l) {
    for (int e = 0; e < 8; ++e) {
      CHECK(bm::pair_row(l, e) == ptx_a_row(l, e), "pair_row(%d, %d)", l, e);
      CHECK(bm::pair_col(l, e) == ptx_a_col(l, e), "pair_col(%d, %d)", l, e);
    }
    for (int i = 0; i < 4; ++i) {
      CHECK(bm::b_k(l, i) == ptx_b_row(l, i), "b_k(%d, %d)", l, i);
      CHECK(bm::c_row(l, i) == ptx_c_row(l, i), "c_row(%d, %d)", l, i);
      CHECK(bm::c_col(l, i) == ptx_c_col(l, i), "c_col(%d, %d)", l, i);
    }
    CHECK(bm::b_n(l) == ptx_b_col(l), "b_n(%d)", l);
  }
  // plan_splits: splits cover gk exactly, none empty, at least 2 groups each when split.
  for (int64_t gk = 0; gk < 300; gk += (gk < 20 ? 1 : 37))
    for (int64_t blocks : {1, 3, 50, 131, 2000})
      for (int sms : {1, 108, 132}) {
        int64_t per = 0;
        const int64_t s = bm::plan_splits(blocks, gk, sms, 65535, &per);
        CHECK(s >= 1 && per >= 1, "plan_splits(%lld, %lld, %d) = %lld x %lld", (long long)blocks, (long long)gk, sms,
              (long long)s, (long long)per);
        if (gk > 0) {
          CHECK(s * per >= gk && (s - 1) * per < gk, "plan_splits(%lld, %lld, %d): %lld x %lld for %lld groups",
                (long long)blocks, (long long)gk, sms, (long long)s, (long long)per, (long long)gk);
          CHECK(s == 1 || per >= 2, "plan_splits(%lld, %lld, %d): %lld groups per split", (long long)blocks,
                (long long)gk, sms, (long long)per);
        }
      }
}

}  // namespace

int main() {
  check_helpers();
  std::mt19937_64 rng(20261206);
  const int64_t ms[] = {1, 7, 16, 33, 64, 65, 130};
  const int64_t ks[] = {1, 9, 64, 65, 200};
  const int64_t ns[] = {1, 5, 8, 9, 17, 33, 64, 70};
  for (int64_t m : ms)
    for (int64_t k : ks)
      for (int64_t n : ns) {
        const double density = (m + k + n) % 5 == 0 ? 1.0 : (m * k * n) % 7 == 0 ? 0.0 : 0.1 + 0.2 * ((m + n) % 4);
        run_case(rng, m, k, n, density);
      }
  // Empty matrices: nothing to write, nothing read.
  run_case(rng, 0, 5, 3, 0.5);
  run_case(rng, 5, 0, 3, 0.5);
  run_case(rng, 5, 7, 0, 0.5);
  std::printf("bitmap mma emulation: %d cases, %d failures\n", g_cases, g_failures);
  return g_failures == 0 ? 0 : 1;
}
