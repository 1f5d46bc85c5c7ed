// The CUDA CSR SpMM (csrc/kernels/cuda/spmm_csr.cu) and, linked from
// csr_validate_on_host.cpp, the CSR validator, their source as written, run on
// host threads (cuda_host_shim.h) through the entry points of kernels.h.
//
// SpMM: random CSR matrices of small integers (every fp32 sum exact: the result
// must EQUAL the dense product rounded once to T), each kernel (n = 1 vector
// kernel; 1, 2 and 4 column tiles of 32), int32 and int64 indices, empty rows,
// unsorted and duplicate columns, rows longer than a warp, b with a row stride
// and with stride 0, outputs poisoned with NaN.
// Validation: each kind of corruption at its first position.
#include "cuda_host_shim.h"
#include "host_check.h"

#include <cmath>
#include <cstdio>
#include <random>
#include <string>

#include "kernels/cuda/spmm_csr.cu"

namespace {

using sk_test::fail;
using sk_test::g_cases;

template <typename T, typename I>
void spmm_case(std::mt19937_64& rng, int64_t m, int64_t k, int64_t n, int max_row, int64_t ldb_mode,
               bool with_bias = false) {
  ++g_cases;
  std::uniform_int_distribution<int> val(-4, 4), len(0, max_row);
  std::uniform_int_distribution<int64_t> colu(0, k > 0 ? k - 1 : 0);
  std::vector<I> row_ptr(1, 0), col_idx;
  std::vector<float> vals;
  for (int64_t i = 0; i < m; ++i) {
    const int l = (i % 5 == 2 || k == 0) ? 0 : len(rng);  // empty rows
    for (int e = 0; e < l; ++e) {
      col_idx.push_back(static_cast<I>(colu(rng)));  // unsorted, duplicates allowed
      const int v = val(rng);
      vals.push_back(static_cast<float>(v == 0 ? 2 : v));
    }
    row_ptr.push_back(static_cast<I>(col_idx.size()));
  }
  const int64_t ldb = ldb_mode < 0 ? 0 : n + ldb_mode;  // -1: every row of b is row 0 (stride 0)
  std::vector<T> b(static_cast<size_t>(std::max<int64_t>(ldb_mode < 0 ? n : k * ldb, 1)), sk::cuda::from_float<T>(1e30f));
  for (int64_t r = 0; r < (ldb_mode < 0 ? 1 : k); ++r)
    for (int64_t c = 0; c < n; ++c) b[r * ldb + c] = sk::cuda::from_float<T>(static_cast<float>(val(rng)));
  std::vector<T> values(vals.size()), out(static_cast<size_t>(m * n), sk::cuda::from_float<T>(NAN));
  for (size_t i = 0; i < vals.size(); ++i) values[i] = sk::cuda::from_float<T>(vals[i]);
  std::vector<T> bias(static_cast<size_t>(m));  // small integers: out = round(A @ b + bias) exactly
  for (auto& x : bias) x = sk::cuda::from_float<T>(static_cast<float>(val(rng)));

  sk::cuda::CsrValidation check{};
  sk::cuda::csr_validate<I>(row_ptr.data(), col_idx.empty() ? nullptr : col_idx.data(), m, k,
                            static_cast<int64_t>(col_idx.size()), &check, nullptr);
  const std::string where = std::string(sk_test::dtype_name<T>()) + (sizeof(I) == 4 ? " int32" : " int64") + " m=" +
                            std::to_string(m) + " k=" + std::to_string(k) + " n=" + std::to_string(n) +
                            " ldb=" + std::to_string(ldb) + (with_bias ? " bias" : "");
  if (check.row_ptr_error != sk::cuda::kNoError || check.col_idx_error != sk::cuda::kNoError)
    fail("validator rejected a valid CSR: " + where);

  const sk::cuda::CsrSpmmArgs<T, I> args{row_ptr.data(), col_idx.empty() ? nullptr : col_idx.data(), values.data(),
                                         b.data(), out.data(), m, k, n, ldb, n,
                                         with_bias ? bias.data() : nullptr};
  sk::cuda::csr_spmm<T, I>(args, nullptr);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = with_bias ? double(sk::cuda::to_float(bias[i])) : 0.0;
      for (I p = row_ptr[i]; p < row_ptr[i + 1]; ++p)
        s += double(vals[p]) * sk::cuda::to_float(b[static_cast<int64_t>(col_idx[p]) * ldb + j]);
      const float want = sk::cuda::to_float(sk::cuda::from_float<T>(static_cast<float>(s)));
      const float got = sk::cuda::to_float(out[i * n + j]);
      if (!(got == want)) {
        fail(where + ": out[" + std::to_string(i) + ", " + std::to_string(j) + "] = " + std::to_string(got) +
             ", want " + std::to_string(want));
        return;
      }
    }
}

template <typename I>
void validation_cases() {
  // 6 x 8, row lengths 2 1 3 0 2 2 (nnz 10)
  const std::vector<I> rp = {0, 2, 3, 6, 6, 8, 10};
  const std::vector<I> ci = {1, 5, 0, 7, 2, 3, 6, 4, 0, 1};
  const int64_t m = 6, k = 8;
  struct Case {
    const char* what;
    void (*apply)(std::vector<I>&, std::vector<I>&);
    unsigned long long row_ptr_error, col_idx_error;
  };
  const unsigned long long none = sk::cuda::kNoError;
  auto key = [](unsigned long long kind, unsigned long long pos) { return (kind << sk::cuda::kCsrKindShift) | pos; };
  const Case cases[] = {
      {"row_ptr[0]", [](std::vector<I>& r, std::vector<I>&) { r[0] = 1; }, key(0, 0), none},
      {"row_ptr[m]", [](std::vector<I>& r, std::vector<I>&) { r[6] = 11; }, key(1, 6), none},
      {"decreasing", [](std::vector<I>& r, std::vector<I>&) { r[3] = 7; }, key(2, 3), none},
      {"decreasing twice", [](std::vector<I>& r, std::vector<I>&) { r[4] = 1; r[2] = 9; }, key(2, 2), none},  // 9 > 6 at 2, 6 > 1 at 3
      {"col negative", [](std::vector<I>&, std::vector<I>& c) { c[2] = -1; }, none, 2},
      {"col k", [](std::vector<I>&, std::vector<I>& c) { c[5] = 8; }, none, 5},
      {"col twice", [](std::vector<I>&, std::vector<I>& c) { c[7] = 11; c[4] = -5; }, none, 4},
      {"first before last", [](std::vector<I>& r, std::vector<I>&) { r[0] = 1; r[6] = 3; }, key(0, 0), none},
  };
  for (const Case& c : cases) {
    ++g_cases;
    std::vector<I> r = rp, col = ci;
    c.apply(r, col);
    sk::cuda::CsrValidation res{};
    sk::cuda::csr_validate<I>(r.data(), col.data(), m, k, static_cast<int64_t>(col.size()), &res, nullptr);
    if (res.row_ptr_error != c.row_ptr_error || res.col_idx_error != c.col_idx_error)
      fail(std::string("validation '") + c.what + "' (" + (sizeof(I) == 4 ? "int32" : "int64") +
           "): row_ptr_error " + std::to_string(res.row_ptr_error) + " col_idx_error " +
           std::to_string(res.col_idx_error));
  }
}

}  // namespace

int main() {
  std::mt19937_64 rng(2026120602);
  validation_cases<int32_t>();
  validation_cases<int64_t>();
  struct Shape {
    int64_t m, k, n;
    int max_row;
  };
  const Shape shapes[] = {{1, 1, 1, 1},   {7, 9, 1, 5},    {40, 70, 1, 70},  {9, 12, 2, 6},   {30, 50, 31, 40},
                          {12, 33, 32, 3}, {20, 40, 33, 50}, {11, 20, 64, 9}, {10, 30, 65, 35}, {6, 25, 130, 12},
                          {0, 5, 3, 2},   {5, 0, 3, 0},    {5, 7, 0, 3}};
  for (const Shape& s : shapes) {
    spmm_case<float, int32_t>(rng, s.m, s.k, s.n, s.max_row, 0);
    spmm_case<float, int64_t>(rng, s.m, s.k, s.n, s.max_row, 3);
    spmm_case<__half, int32_t>(rng, s.m, s.k, s.n, s.max_row, 1);
    spmm_case<__nv_bfloat16, int64_t>(rng, s.m, s.k, s.n, s.max_row, 0);
    spmm_case<__half, int64_t>(rng, s.m, s.k, s.n, s.max_row, -1);  // b rows all the same (stride 0)
    spmm_case<float, int32_t>(rng, s.m, s.k, s.n, s.max_row, 0, true);  // the fused bias
    spmm_case<__nv_bfloat16, int32_t>(rng, s.m, s.k, s.n, s.max_row, 2, true);
  }
  return sk_test::summary("csr kernels on host threads");
}
