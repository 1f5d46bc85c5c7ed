// CPU sparse::dense_to_csr and sparse::csr_to_dense.
#include <tuple>
#include <vector>

#include <ATen/Parallel.h>
#include <torch/library.h>

#include "core/checks.h"
#include "core/dispatch.h"
#include "core/output.h"
#include "core/validate.h"
#include "ops/cpu/pack_common.h"

namespace sk {

// Two passes over the rows: count the non-zeros of each row (into row_ptr[i+1]),
// prefix-sum, then write each row's columns (ascending) and values.
std::tuple<at::Tensor, at::Tensor, at::Tensor> dense_to_csr_cpu(const at::Tensor& dense) {
  constexpr const char* op = "sparse::dense_to_csr";
  const at::Tensor d = check_pack_dense_input(op, dense);
  const int64_t m = d.size(0), k = d.size(1);
  const at::TensorOptions index_opts = d.options().dtype(pack_index_dtype(m, k));
  at::Tensor row_ptr = empty_output({m + 1}, index_opts);
  at::Tensor col_idx, values;
  dispatch_pack_type(d.scalar_type(), op, [&](auto vtag) {
    using scalar_t = decltype(vtag);
    const scalar_t* src = d.data_ptr<scalar_t>();
    dispatch_index_type(row_ptr.scalar_type(), op, [&](auto itag) {
      using I = decltype(itag);
      I* rp = row_ptr.data_ptr<I>();
      rp[0] = 0;
      at::parallel_for(0, m, pack_row_grain(k), [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
          const scalar_t* row = src + i * k;
          I count = 0;
          for (int64_t j = 0; j < k; ++j) count += is_nonzero(row[j]) ? 1 : 0;
          rp[i + 1] = count;
        }
      });
      for (int64_t i = 0; i < m; ++i) rp[i + 1] += rp[i];
      const int64_t nnz = int64_t(rp[m]);
      col_idx = empty_output({nnz}, index_opts);
      values = empty_output({nnz}, d.options());
      I* ci = col_idx.data_ptr<I>();
      scalar_t* vals = values.data_ptr<scalar_t>();
      at::parallel_for(0, m, pack_row_grain(k), [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
          const scalar_t* row = src + i * k;
          int64_t p = int64_t(rp[i]);
          for (int64_t j = 0; j < k; ++j) {
            if (is_nonzero(row[j])) {
              ci[p] = I(j);
              vals[p] = row[j];
              ++p;
            }
          }
        }
      });
    });
  });
  return {row_ptr, col_idx, values};
}

// Each row is summed in an fp32 buffer (double for float64; duplicate columns
// add up), then rounded once to the values dtype.
at::Tensor csr_to_dense_cpu(const at::Tensor& row_ptr, const at::Tensor& col_idx, const at::Tensor& values,
                            int64_t m, int64_t k) {
  constexpr const char* op = "sparse::csr_to_dense";
  check_unpack_values_dtype(op, values, "values");
  validate_csr(op, row_ptr, col_idx, values, m, k);
  at::Tensor out = empty_output({m, k}, values.options());
  if (m == 0 || k == 0) return out;
  dispatch_pack_type(values.scalar_type(), op, [&](auto vtag) {
    using scalar_t = decltype(vtag);
    const scalar_t* vals = values.data_ptr<scalar_t>();
    scalar_t* dst = out.data_ptr<scalar_t>();
    dispatch_index_type(row_ptr.scalar_type(), op, [&](auto itag) {
      using I = decltype(itag);
      const I* rp = row_ptr.data_ptr<I>();
      const I* ci = col_idx.data_ptr<I>();
      at::parallel_for(0, m, pack_row_grain(k), [&](int64_t begin, int64_t end) {
        std::vector<pack_acc_t<scalar_t>> buf(k);
        for (int64_t i = begin; i < end; ++i) {
          std::fill(buf.begin(), buf.end(), pack_acc_t<scalar_t>(0));
          for (int64_t p = rp[i]; p < int64_t(rp[i + 1]); ++p) buf[ci[p]] += static_cast<pack_acc_t<scalar_t>>(vals[p]);
          scalar_t* row = dst + i * k;
          for (int64_t j = 0; j < k; ++j) row[j] = scalar_t(buf[j]);
        }
      });
    });
  });
  return out;
}

TORCH_LIBRARY_IMPL(sparse, CPU, m) {
  m.impl("dense_to_csr", &dense_to_csr_cpu);
  m.impl("csr_to_dense", &csr_to_dense_cpu);
}

}  // namespace sk
