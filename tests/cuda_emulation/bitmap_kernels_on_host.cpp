// The CUDA bitmap SpMM and validator, their source as written, run on host
// threads (cuda_host_shim.h): the entry points bitmap_spmm_plan, bitmap_spmm
// and bitmap_validate of csrc/kernels/cuda/kernels.h, called on host memory.
//
// SpMM: random matrices of small integers (every fp32 sum exact, so the only
// rounding is the output's, and the result must EQUAL the dense product
// rounded once to T), odd shapes, every column-chunk width the planner picks,
// K splits forced by the SM count, the exact path (b with NaN / inf), b with a
// row stride, outputs poisoned with NaN before the call.
// Validation: each kind of corruption reported at its first position.
//
// Build (tests/test_cuda_emulation.py): c++ -std=c++20 -O1 -pthread -Icsrc
//   -Itests/cuda_emulation -isystem $CUDA_HOME/include THIS_FILE
#include "cuda_host_shim.h"
#include "host_check.h"

#include <cmath>
#include <cstdio>
#include <random>
#include <string>

#include "kernels/cuda/bitmap_spmm.cu"
#include "kernels/cuda/validate_bitmap.cu"

#include "bitmap_pack.h"

namespace {

using sk_test::fail;
using sk_test::g_cases;

template <typename T>
T from_f(float x) {
  return sk::cuda::from_float<T>(x);
}
template <typename T>
float to_f(T x) {
  return sk::cuda::to_float(x);
}

template <typename T>
void spmm_case(std::mt19937_64& rng, int64_t m, int64_t k, int64_t n, double density, int sm_count, int64_t ldb_pad,
               bool non_finite, bool with_bias = false) {
  ++g_cases;
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::uniform_int_distribution<int> val(-4, 4);
  std::vector<float> a(m * k, 0.f);
  for (auto& x : a)
    if (u(rng) < density) {
      const int v = val(rng);
      x = static_cast<float>(v == 0 ? 3 : v);
    }
  const int64_t ldb = n + ldb_pad;
  std::vector<float> bf(k * ldb, 1e30f);  // the padding columns must never be read into a sum
  for (int64_t r = 0; r < k; ++r)
    for (int64_t c = 0; c < n; ++c) bf[r * ldb + c] = static_cast<float>(val(rng));
  int64_t bad_row = -1, bad_col = -1;
  if (non_finite && k > 0 && n > 0) {
    bad_row = k / 2;
    bad_col = n - 1;
    bf[bad_row * ldb + bad_col] = INFINITY;
  }
  const sk_test::Packed p = sk_test::pack(a, m, k);
  std::vector<T> values(p.values.size()), b(bf.size()), out(m * n);
  for (size_t i = 0; i < values.size(); ++i) values[i] = from_f<T>(p.values[i]);
  for (size_t i = 0; i < bf.size(); ++i) b[i] = from_f<T>(bf[i]);
  for (auto& o : out) o = from_f<T>(NAN);
  std::vector<T> bias(static_cast<size_t>(m));  // small integers: out = round(A @ b + bias) exactly
  for (auto& x : bias) x = from_f<T>(static_cast<float>(val(rng)));

  // The validator, as the glue runs it first: a valid format, and b's scan.
  sk::cuda::BitmapValidation check{};
  sk::cuda::bitmap_validate<T>(p.offs.data(), p.masks.data(), static_cast<int64_t>(values.size()), m, k,
                               b.data(), n, ldb, &check, nullptr);
  const std::string where = std::string(sk_test::dtype_name<T>()) + " m=" + std::to_string(m) + " k=" + std::to_string(k) +
                            " n=" + std::to_string(n) + " sms=" + std::to_string(sm_count) +
                            " ldb=" + std::to_string(ldb) + (non_finite ? " inf" : "") + (with_bias ? " bias" : "");
  if (check.header != sk::cuda::kNoError || check.bad_bit != sk::cuda::kNoError ||
      check.bad_count != sk::cuda::kNoError)
    fail("validator rejected a valid format: " + where);
  const bool exact = check.b_non_finite != 0;
  if (exact != (bad_row >= 0)) fail("b_non_finite = " + std::to_string(check.b_non_finite) + ": " + where);

  const bool is_fp32 = std::is_same<T, float>::value;
  const sk::cuda::BitmapSpmmPlan plan = sk::cuda::bitmap_spmm_plan(m, k, n, is_fp32, !is_fp32 && exact, sm_count);
  std::vector<float> ws(static_cast<size_t>(plan.workspace_elems), NAN);
  const sk::cuda::BitmapSpmmArgs<T> args{p.offs.data(), p.masks.data(), values.data(), b.data(), out.data(),
                                         ws.empty() ? nullptr : ws.data(), m, k, n, ldb, n,
                                         with_bias ? bias.data() : nullptr};
  sk::cuda::bitmap_spmm<T>(args, plan, nullptr);

  for (int64_t i = 0; i < m; ++i) {
    bool row_hits_bad = false;
    if (bad_row >= 0) row_hits_bad = a[i * k + bad_row] != 0.f;
    for (int64_t j = 0; j < n; ++j) {
      const float got = to_f(out[i * n + j]);
      if (row_hits_bad && j == bad_col) {
        if (std::isfinite(got)) fail("row storing the inf column is finite: " + where);
        continue;
      }
      double s = with_bias ? double(to_f(bias[i])) : 0.0;
      for (int64_t kk = 0; kk < k; ++kk)  // only stored values meet b (0 x inf would be NaN)
        if (a[i * k + kk] != 0.f) s += double(a[i * k + kk]) * to_f(b[kk * ldb + j]);
      const float want = to_f(from_f<T>(static_cast<float>(s)));
      if (!(got == want)) {
        fail(where + " (" + (plan.tensor_cores ? "mma" : "cuda-core") + " NC=" +
             std::to_string(plan.cols_per_block) + " splits=" + std::to_string(plan.splits) + "): out[" +
             std::to_string(i) + ", " + std::to_string(j) + "] = " + std::to_string(got) + ", want " +
             std::to_string(want));
        return;
      }
    }
  }
}

void validation_cases(std::mt19937_64& rng) {
  const int64_t m = 70, k = 100;  // 2 x 2 groups, both edges partial
  std::vector<float> a(m * k, 0.f);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (auto& x : a) x = u(rng) < 0.5 ? 1.f : 0.f;
  const sk_test::Packed base = sk_test::pack(a, m, k);
  struct Corruption {
    const char* what;
    void (*apply)(sk_test::Packed&, int64_t&);
    unsigned long long header, bad_bit, bad_count;
  };
  const unsigned long long none = sk::cuda::kNoError;
  const Corruption cases[] = {
      {"first offset", [](sk_test::Packed& p, int64_t&) { for (auto& o : p.offs) o += 8; }, 0, none, none},
      {"last offset", [](sk_test::Packed&, int64_t& len) { len -= 8; }, 1, none, none},
      {"count", [](sk_test::Packed& p, int64_t&) { p.offs[2] += 8; }, none, none, 1},
      {"counts twice", [](sk_test::Packed& p, int64_t&) { p.offs[3] += 8; p.offs[1] += 8; p.offs[2] += 8; }, none,
       none, 0},
      {"offset min", [](sk_test::Packed& p, int64_t&) { p.offs[1] = INT64_MIN; }, none, none, 0},
      {"bit row", [](sk_test::Packed& p, int64_t&) { p.masks[3 * 64] |= uint64_t(1) << 48; }, none, 3 * 64, none},
      {"bit col", [](sk_test::Packed& p, int64_t&) { p.masks[3 * 64 + 12] |= uint64_t(1) << 3; }, none,
       3 * 64 + 12, none},
      {"bit high", [](sk_test::Packed& p, int64_t&) { p.masks[64 + 63] |= uint64_t(1) << 63; }, none, 127, none},
      {"two bits", [](sk_test::Packed& p, int64_t&) {
         p.masks[3 * 64 + 12] |= uint64_t(1) << 3;
         p.masks[2 * 64 + 1] |= uint64_t(1) << 63;  // group 2 (rows 64-69, cols 0-63): tile 1 row 15
       }, none, 2 * 64 + 1, none},
  };
  for (const Corruption& c : cases) {
    ++g_cases;
    sk_test::Packed p = base;
    int64_t len = static_cast<int64_t>(p.values.size());
    c.apply(p, len);
    sk::cuda::BitmapValidation r{};
    sk::cuda::bitmap_validate<float>(p.offs.data(), p.masks.data(), len, m, k, nullptr, 0, 0, &r, nullptr);
    // bad_count also fires where a bad bit changed a popcount: only check it where the case expects it.
    const bool ok = r.header == c.header && r.bad_bit == c.bad_bit &&
                    (c.bad_count == none ? (c.bad_bit != none || r.bad_count == none) : r.bad_count == c.bad_count);
    if (!ok)
      fail(std::string("validation '") + c.what + "': header " + std::to_string(r.header) + " bad_bit " +
           std::to_string(r.bad_bit) + " bad_count " + std::to_string(r.bad_count));
  }
}

}  // namespace

int main() {
  std::mt19937_64 rng(6122026);
  validation_cases(rng);
  struct Shape {
    int64_t m, k, n;
  };
  const Shape shapes[] = {{1, 1, 1},  {7, 9, 5},    {16, 64, 8},  {33, 65, 9},  {64, 130, 17},
                          {65, 200, 33}, {130, 70, 64}, {70, 300, 70}, {3, 260, 2}, {0, 5, 3}, {5, 0, 3}, {5, 7, 0}};
  for (const Shape& s : shapes) {
    for (int sms : {1, 132}) {  // 132 SMs: small grids split K where K has >= 4 groups
      const double density = (s.m + s.n) % 3 == 0 ? 0.9 : 0.4;
      spmm_case<__half>(rng, s.m, s.k, s.n, density, sms, 0, false);
      spmm_case<__nv_bfloat16>(rng, s.m, s.k, s.n, density, sms, s.n % 2 ? 3 : 0, false);
      spmm_case<float>(rng, s.m, s.k, s.n, density, sms, 0, false);
      spmm_case<__half>(rng, s.m, s.k, s.n, density, sms, 1, true);  // the exact path
      // the fused bias: in the mma and CUDA-core epilogues, and in the split-K rounding (70 x 300 x 70 at 132
      // SMs splits K in two)
      spmm_case<__nv_bfloat16>(rng, s.m, s.k, s.n, density, sms, 0, false, true);
      spmm_case<float>(rng, s.m, s.k, s.n, density, sms, 2, false, true);
    }
  }
  return sk_test::summary("bitmap kernels on host threads");
}
