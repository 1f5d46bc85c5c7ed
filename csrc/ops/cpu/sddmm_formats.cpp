// CPU glue for the SDDMM ops of BSR, bitmap and 2:4 (the gradient of each
// format's values tensor): sparse::{bsr,bitmap,sparse24}_sddmm. x [m, d] and
// y [k, d] give the matrix shape m x k; the output has the shape of the format's
// values tensor and is validated as such together with the metadata. Checks ->
// output allocation -> validation -> kernel (kernels/cpu/sddmm_formats.cpp).
#include <algorithm>
#include <utility>

#include <ATen/Parallel.h>
#include <torch/library.h>

#include "core/checks.h"
#include "core/cpu_isa.h"
#include "core/dispatch.h"
#include "core/output.h"
#include "core/validate.h"
#include "kernels/cpu/float64.h"
#include "kernels/cpu/grad_kernels.h"

namespace sk {

namespace {

// Checks the dense operands x [m, d] and y [k, d]; returns them with
// contiguous rows (copying only a tensor whose rows are strided).
std::pair<at::Tensor, at::Tensor> check_sddmm_operands(const char* op, const at::Tensor& x, const at::Tensor& y) {
  SK_CHECK_STRIDED(op, x);
  SK_CHECK_STRIDED(op, y);
  SK_CHECK_DIM(op, x, 2);
  SK_CHECK_DIM(op, y, 2);
  const at::ScalarType st = x.scalar_type();
  TORCH_CHECK_TYPE(st == at::kFloat || st == at::kHalf || st == at::kBFloat16 || is_cpu_float64(x), op,
                   ": 'x' has unsupported dtype ", st, "; expected " SK_CPU_VALUE_DTYPES);
  SK_CHECK_SAME_DTYPE(op, x, y);
  SK_CHECK_SAME_DEVICE(op, x, y);
  TORCH_CHECK_VALUE(x.size(1) == y.size(1), op, ": 'x' [m, d] and 'y' [k, d] must have the same d, got ",
                    x.sizes(), " and ", y.sizes());
  const int64_t d = x.size(1);
  return {(d <= 1 || x.stride(1) == 1) ? x : x.contiguous(), (d <= 1 || y.stride(1) == 1) ? y : y.contiguous()};
}

// Work per output slot: a dot product of length d, plus a little.
inline int64_t sddmm_grain(int64_t slots_per_unit, int64_t d) {
  return std::max<int64_t>(1, 32768 / std::max<int64_t>(1, slots_per_unit * (d + 4)));
}

}  // namespace

// out [nnzb, r, c]: out[p, i, j] = dot(x[I*r + i], y[J*c + j]) for block p at
// (I, J), 0 where that element is outside the m x k matrix.
at::Tensor bsr_sddmm_cpu(const at::Tensor& block_row_ptr, const at::Tensor& block_col_idx, const at::Tensor& x,
                         const at::Tensor& y, int64_t r, int64_t c) {
  constexpr const char* op = "sparse::bsr_sddmm";
  const auto operands = check_sddmm_operands(op, x, y);
  const at::Tensor &xx = operands.first, &yy = operands.second;
  SK_CHECK_SAME_DEVICE(op, block_row_ptr, x);
  TORCH_CHECK_VALUE(r >= 1 && c >= 1, op, ": the block size must be r, c >= 1, got r = ", r, ", c = ", c);
  SK_CHECK_DIM(op, block_col_idx, 1);
  const int64_t m = xx.size(0), k = yy.size(0), d = xx.size(1);
  const int64_t nnzb = block_col_idx.numel();
  at::Tensor out = empty_output({nnzb, r, c}, xx.options());
  validate_bsr(op, block_row_ptr, block_col_idx, out, m, k);
  if (nnzb == 0) return out;
  const int64_t row_blocks = (m + r - 1) / r;
  const int64_t per_row_block = std::max<int64_t>(1, nnzb / std::max<int64_t>(row_blocks, 1)) * r * c;
  if (is_cpu_float64(xx)) {  // simple double kernel (validated above)
    dispatch_index_type(block_row_ptr.scalar_type(), op, [&](auto itag) {
      using I = decltype(itag);
      const cpu::BsrSddmmArgs<double, I> args{block_row_ptr.data_ptr<I>(), block_col_idx.data_ptr<I>(),
                                              data_as<const double>(xx),   data_as<const double>(yy),
                                              data_as<double>(out),        m,
                                              k,                           d,
                                              r,                           c,
                                              xx.stride(0),                yy.stride(0)};
      at::parallel_for(0, row_blocks, sddmm_grain(per_row_block, d),
                       [&](int64_t begin, int64_t end) { SK_CPU_CALL(bsr_sddmm_f64, args, begin, end); });
    });
    return out;
  }
  dispatch_value_type(xx.scalar_type(), op, [&](auto vtag) {
    using T = decltype(vtag);
    dispatch_index_type(block_row_ptr.scalar_type(), op, [&](auto itag) {
      using I = decltype(itag);
      const cpu::BsrSddmmArgs<T, I> args{block_row_ptr.data_ptr<I>(),
                                         block_col_idx.data_ptr<I>(),
                                         data_as<const T>(xx),
                                         data_as<const T>(yy),
                                         data_as<T>(out),
                                         m,
                                         k,
                                         d,
                                         r,
                                         c,
                                         xx.stride(0),
                                         yy.stride(0)};
      at::parallel_for(0, row_blocks, sddmm_grain(per_row_block, d),
                       [&](int64_t begin, int64_t end) { SK_CPU_CALL_BF16DOT(CpuIsa::avx512bf16, bsr_sddmm, args, begin, end); });
    });
  });
  return out;
}

// out [num_values] (the bitmap values tensor's length): dot(x[row], y[col]) for
// each set bit in values order, 0 in the padding slots of each group.
at::Tensor bitmap_sddmm_cpu(const at::Tensor& group_offsets, const at::Tensor& bitmaps, const at::Tensor& x,
                            const at::Tensor& y, int64_t num_values) {
  constexpr const char* op = "sparse::bitmap_sddmm";
  const auto operands = check_sddmm_operands(op, x, y);
  const at::Tensor &xx = operands.first, &yy = operands.second;
  SK_CHECK_SAME_DEVICE(op, group_offsets, x);
  TORCH_CHECK_VALUE(num_values >= 0, op, ": 'num_values' (the length of the values tensor) must be >= 0, got ",
                    num_values);
  // num_values is the values' length, group_offsets[G]: checked before an output of that length is allocated
  // (the validator below checks group_offsets itself)
  if (group_offsets.dim() == 1 && group_offsets.numel() >= 1 && group_offsets.scalar_type() == at::kLong &&
      group_offsets.is_contiguous() && group_offsets.device().is_cpu()) {
    const int64_t total = group_offsets.data_ptr<int64_t>()[group_offsets.numel() - 1];
    TORCH_CHECK_VALUE(total == num_values, op, ": 'num_values' = ", num_values,
                      " must equal the length of the values tensor, group_offsets[G] = ", total);
  }
  const int64_t m = xx.size(0), k = yy.size(0), d = xx.size(1);
  at::Tensor out = empty_output({num_values}, xx.options());
  validate_bitmap(op, group_offsets, bitmaps, out, m, k);
  const int64_t groups = group_offsets.numel() - 1;
  if (groups == 0) return out;
  const int64_t per_group = std::max<int64_t>(1, num_values / groups);
  if (is_cpu_float64(xx)) {  // simple double kernel (validated above)
    const cpu::BitmapSddmmArgs<double> args{group_offsets.data_ptr<int64_t>(),
                                            reinterpret_cast<const uint64_t*>(bitmaps.data_ptr<int64_t>()),
                                            data_as<const double>(xx),
                                            data_as<const double>(yy),
                                            data_as<double>(out),
                                            m,
                                            k,
                                            d,
                                            xx.stride(0),
                                            yy.stride(0)};
    at::parallel_for(0, groups, sddmm_grain(per_group, d),
                     [&](int64_t begin, int64_t end) { SK_CPU_CALL(bitmap_sddmm_f64, args, begin, end); });
    return out;
  }
  dispatch_value_type(xx.scalar_type(), op, [&](auto vtag) {
    using T = decltype(vtag);
    const cpu::BitmapSddmmArgs<T> args{group_offsets.data_ptr<int64_t>(),
                                       reinterpret_cast<const uint64_t*>(bitmaps.data_ptr<int64_t>()),
                                       data_as<const T>(xx),
                                       data_as<const T>(yy),
                                       data_as<T>(out),
                                       m,
                                       k,
                                       d,
                                       xx.stride(0),
                                       yy.stride(0)};
    at::parallel_for(0, groups, sddmm_grain(per_group, d),
                     [&](int64_t begin, int64_t end) { SK_CPU_CALL_BF16DOT(CpuIsa::avx512bf16, bitmap_sddmm, args, begin, end); });
  });
  return out;
}

// out [m, kp / 2] (the 2:4 values shape, kp = roundup(k, 16)): dot(x[i], y[col])
// for each slot whose column is < k, 0 for the others.
at::Tensor sparse24_sddmm_cpu(const at::Tensor& meta, const at::Tensor& x, const at::Tensor& y) {
  constexpr const char* op = "sparse::sparse24_sddmm";
  const auto operands = check_sddmm_operands(op, x, y);
  const at::Tensor &xx = operands.first, &yy = operands.second;
  SK_CHECK_SAME_DEVICE(op, meta, x);
  SK_CHECK_DIM(op, meta, 2);
  const int64_t m = xx.size(0), k = yy.size(0), d = xx.size(1);
  const int64_t kp = (k + 15) / 16 * 16;
  TORCH_CHECK_VALUE(meta.size(0) == m && meta.size(1) == kp / 16, op,
                    ": 'meta' must have shape [m, roundup(k, 16) / 16] = [", m, ", ", kp / 16,
                    "] for x [m, d] and y [k, d] with m = ", m, ", k = ", k, ", got ", meta.sizes());
  at::Tensor out = empty_output({m, kp / 2}, xx.options());
  validate_sparse24(op, out, meta, k);
  if (m == 0 || kp == 0) return out;
  if (is_cpu_float64(xx)) {  // simple double kernel (validated above)
    const cpu::Sparse24SddmmArgs<double> args{reinterpret_cast<const uint16_t*>(meta.data_ptr()),
                                              data_as<const double>(xx),
                                              data_as<const double>(yy),
                                              data_as<double>(out),
                                              m,
                                              k,
                                              d,
                                              xx.stride(0),
                                              yy.stride(0)};
    at::parallel_for(0, m, sddmm_grain(k / 2, d),
                     [&](int64_t begin, int64_t end) { SK_CPU_CALL(sparse24_sddmm_f64, args, begin, end); });
    return out;
  }
  dispatch_value_type(xx.scalar_type(), op, [&](auto vtag) {
    using T = decltype(vtag);
    const cpu::Sparse24SddmmArgs<T> args{reinterpret_cast<const uint16_t*>(meta.data_ptr()),
                                         data_as<const T>(xx),
                                         data_as<const T>(yy),
                                         data_as<T>(out),
                                         m,
                                         k,
                                         d,
                                         xx.stride(0),
                                         yy.stride(0)};
    at::parallel_for(0, m, sddmm_grain(k / 2, d),
                     [&](int64_t begin, int64_t end) { SK_CPU_CALL_BF16DOT(CpuIsa::avx512bf16, sparse24_sddmm, args, begin, end); });
  });
  return out;
}

TORCH_LIBRARY_IMPL(sparse, CPU, m) {
  m.impl("bsr_sddmm", &bsr_sddmm_cpu);
  m.impl("bitmap_sddmm", &bitmap_sddmm_cpu);
  m.impl("sparse24_sddmm", &sparse24_sddmm_cpu);
}

}  // namespace sk
