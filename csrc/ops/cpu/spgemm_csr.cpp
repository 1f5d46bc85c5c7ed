// CPU glue for sparse::csr_spgemm: checks -> validation of A and B -> row flops
// -> symbolic pass -> prefix sum -> numeric pass (kernels/cpu/spgemm_csr.cpp).
//
// C = A [m, k] @ B [k, n]. C's columns are sorted and distinct within each row;
// C is the structural product: every (i, j) reached by some product
// A[i, c] * B[c, j] is stored, also when the products cancel to 0 (no value
// test, so the pattern depends only on A's and B's patterns). A and B may have
// unsorted rows and duplicate columns (summed). C's indices are int64 when
// either input's are, else int32 (ValueError when nnz(C) needs more).
//
// float64 (CPU): the same flops and symbolic passes, then a simple numeric
// pass in double (kernels/cpu/float64.cpp: a row's products sorted by column).
//
// Accumulator per parallel part: dense (marker + fp32 array of n entries) when
// n <= 2^20 and n is at most 8x the part's products, else a per-row hash table
// sized by the row's products. SPARSEKERNELS_SPGEMM_ACCUMULATOR=dense|hash
// forces one (read per call; for tests and benchmarks).
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include <ATen/Parallel.h>
#include <torch/library.h>

#include "core/checks.h"
#include "core/cpu_isa.h"
#include "core/dispatch.h"
#include "core/output.h"
#include "core/validate.h"
#include "kernels/cpu/float64.h"
#include "kernels/cpu/sddmm_spgemm.h"
#include "ops/cpu/row_split.h"

namespace sk {
namespace {

constexpr const char* kOp = "sparse::csr_spgemm";
constexpr int64_t kDenseAccumulatorMaxCols = int64_t(1) << 20;

enum class Accumulator { automatic, dense, hash };

Accumulator accumulator_choice() {
  const char* env = std::getenv("SPARSEKERNELS_SPGEMM_ACCUMULATOR");
  if (env == nullptr || *env == '\0' || std::strcmp(env, "auto") == 0) return Accumulator::automatic;
  if (std::strcmp(env, "dense") == 0) return Accumulator::dense;
  if (std::strcmp(env, "hash") == 0) return Accumulator::hash;
  TORCH_CHECK_VALUE(false, kOp, ": SPARSEKERNELS_SPGEMM_ACCUMULATOR must be auto, dense or hash, got '", env, "'");
}

// Scratch of one parallel part (rows [begin, end)); flops is the prefix sum of
// the row products (flops[i + 1] - flops[i] = products of row i).
struct Scratch {
  std::unique_ptr<int64_t[]> marker, keys;
  std::unique_ptr<float[]> acc, vals;
  cpu::SpgemmWorkspace ws{nullptr, nullptr, nullptr, nullptr, 0};

  Scratch(Accumulator choice, bool numeric, int64_t n, const int64_t* flops, int64_t begin, int64_t end) {
    const int64_t part_flops = flops[end] - flops[begin];
    const bool dense = choice == Accumulator::dense ||
                       (choice == Accumulator::automatic && n <= kDenseAccumulatorMaxCols && n <= 8 * part_flops);
    if (dense) {
      marker.reset(new int64_t[n]);
      std::fill_n(marker.get(), n, int64_t(-1));
      ws.marker = marker.get();
      if (numeric) {
        acc.reset(new float[n]);
        ws.acc = acc.get();
      }
      return;
    }
    // A power of two >= 2 * min(n, products) for every row of the part.
    int64_t bound = 0;
    for (int64_t i = begin; i < end; ++i) bound = std::max(bound, std::min(n, flops[i + 1] - flops[i]));
    int64_t size = 2;
    while (size < 2 * bound) size *= 2;
    keys.reset(new int64_t[size]);
    ws.keys = keys.get();
    if (numeric) {
      vals.reset(new float[size]);
      ws.vals = vals.get();
    }
    ws.hash_capacity = size;
  }
};

// dispatch_value_type plus float64 (CPU), whose numeric pass is the simple
// double kernel (kernels/cpu/float64.h); flops and the symbolic pass read only
// the patterns and serve every value type.
template <typename F>
decltype(auto) dispatch_spgemm_value_type(const at::Tensor& values, F&& f) {
  if (is_cpu_float64(values)) return f(double{});
  return dispatch_value_type(values.scalar_type(), kOp, std::forward<F>(f));
}

// Scratch of the float64 numeric pass for rows [begin, end): room for the
// products of the part's longest row.
struct ScratchF64 {
  std::unique_ptr<int64_t[]> cols;
  std::unique_ptr<double[]> vals;
  cpu::SpgemmF64Workspace ws{nullptr, nullptr, 0};

  ScratchF64(const int64_t* flops, int64_t begin, int64_t end) {
    int64_t most = 1;
    for (int64_t i = begin; i < end; ++i) most = std::max(most, flops[i + 1] - flops[i]);
    cols.reset(new int64_t[most]);
    vals.reset(new double[most]);
    ws = {cols.get(), vals.get(), most};
  }
};

void validate_operand(const char* op, const at::Tensor& row_ptr, const at::Tensor& col_idx,
                      const at::Tensor& values, int64_t cols) {
  TORCH_CHECK_VALUE(row_ptr.dim() == 1 && row_ptr.numel() >= 1, op,
                    ": 'row_ptr' must be a 1-D tensor with rows + 1 >= 1 entries, got shape ", row_ptr.sizes());
  validate_csr(op, row_ptr, col_idx, values, row_ptr.numel() - 1, cols);
}

}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor> csr_spgemm_cpu(const at::Tensor& a_row_ptr,
                                                              const at::Tensor& a_col_idx,
                                                              const at::Tensor& a_values,
                                                              const at::Tensor& b_row_ptr,
                                                              const at::Tensor& b_col_idx,
                                                              const at::Tensor& b_values, int64_t n) {
  SK_CHECK_SAME_DTYPE(kOp, a_values, b_values);
  SK_CHECK_SAME_DEVICE(kOp, a_values, b_values);
  TORCH_CHECK_VALUE(n >= 0, kOp, ": 'n' (columns of B) must be non-negative, got ", n);
  TORCH_CHECK_VALUE(b_row_ptr.dim() == 1 && b_row_ptr.numel() >= 1, kOp,
                    ": 'b_row_ptr' must be a 1-D tensor with k + 1 >= 1 entries, got shape ", b_row_ptr.sizes());
  const int64_t k = b_row_ptr.numel() - 1;
  // validate_csr names its arguments row_ptr / col_idx / values: say which operand.
  validate_operand("sparse::csr_spgemm, operand A (a_row_ptr, a_col_idx, a_values)", a_row_ptr, a_col_idx,
                   a_values, k);
  validate_operand("sparse::csr_spgemm, operand B (b_row_ptr, b_col_idx, b_values)", b_row_ptr, b_col_idx,
                   b_values, n);
  const int64_t m = a_row_ptr.numel() - 1;
  const bool wide = a_row_ptr.scalar_type() == at::kLong || b_row_ptr.scalar_type() == at::kLong;
  const at::ScalarType c_index = wide ? at::kLong : at::kInt;
  const Accumulator choice = accumulator_choice();

  return dispatch_spgemm_value_type(a_values, [&](auto vtag) {
    using T = decltype(vtag);
    return dispatch_index_type(a_row_ptr.scalar_type(), kOp, [&](auto atag) {
      using IA = decltype(atag);
      return dispatch_index_type(b_row_ptr.scalar_type(), kOp, [&](auto btag) {
        using IB = decltype(btag);
        using IC = std::conditional_t<std::is_same_v<IA, int64_t> || std::is_same_v<IB, int64_t>, int64_t, int32_t>;
        const cpu::CsrSpgemmPatternArgs<IA, IB> pattern{a_row_ptr.data_ptr<IA>(), a_col_idx.data_ptr<IA>(),
                                                        b_row_ptr.data_ptr<IB>(), b_col_idx.data_ptr<IB>(),
                                                        m, k, n};
        // flops[i] = products of rows [0, i); c_ptr[i] = entries of C in rows [0, i).
        std::vector<int64_t> flops(m + 1, 0), c_ptr(m + 1, 0);
        int64_t* fl = flops.data();
        at::parallel_for(0, m, 2048, [&](int64_t begin, int64_t end) {
          SK_CPU_CALL(csr_spgemm_row_flops, pattern, fl + 1, begin, end);
        });
        for (int64_t i = 0; i < m; ++i) fl[i + 1] += fl[i];

        std::vector<int64_t> bounds;
        if (m > 0 && fl[m] > 0) {
          // Cost of rows [0, i): their products plus a little per row.
          bounds = split_rows_by_cost(m, 1 << 14, [&](int64_t i) { return fl[i] + i; });
          int64_t* cp = c_ptr.data();
          parallel_for_row_parts(bounds, [&](int64_t begin, int64_t end) {
            const Scratch s(choice, /*numeric=*/false, n, fl, begin, end);
            SK_CPU_CALL(csr_spgemm_symbolic, pattern, s.ws, cp + 1, begin, end);
          });
          for (int64_t i = 0; i < m; ++i) cp[i + 1] += cp[i];
        }
        const int64_t nnz = c_ptr[m];
        TORCH_CHECK_VALUE(wide || nnz <= std::numeric_limits<int32_t>::max(), kOp, ": the product has ", nnz,
                          " stored entries, more than int32 indices can address; pass A's or B's indices as "
                          "int64 (e.g. a_row_ptr.long(), a_col_idx.long()) to get int64 output indices");

        at::Tensor c_row_ptr = empty_output({m + 1}, a_row_ptr.options().dtype(c_index));
        at::Tensor c_col_idx = empty_output({nnz}, a_row_ptr.options().dtype(c_index));
        at::Tensor c_values = empty_output({nnz}, a_values.options());
        IC* crp = c_row_ptr.data_ptr<IC>();
        for (int64_t i = 0; i <= m; ++i) crp[i] = IC(c_ptr[i]);
        if (nnz > 0) {
          const cpu::CsrSpgemmArgs<T, IA, IB, IC> args{pattern,
                                                       data_as<const T>(a_values),
                                                       data_as<const T>(b_values),
                                                       crp,
                                                       c_col_idx.data_ptr<IC>(),
                                                       data_as<T>(c_values)};
          parallel_for_row_parts(bounds, [&](int64_t begin, int64_t end) {
            if constexpr (std::is_same_v<T, double>) {
              const ScratchF64 s(fl, begin, end);
              SK_CPU_CALL(csr_spgemm_numeric_f64, args, s.ws, begin, end);
            } else {
              const Scratch s(choice, /*numeric=*/true, n, fl, begin, end);
              SK_CPU_CALL(csr_spgemm_numeric, args, s.ws, begin, end);
            }
          });
        }
        return std::make_tuple(c_row_ptr, c_col_idx, c_values);
      });
    });
  });
}

TORCH_LIBRARY_IMPL(sparse, CPU, m) { m.impl("csr_spgemm", &csr_spgemm_cpu); }

}  // namespace sk
