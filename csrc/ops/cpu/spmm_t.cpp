// CPU glue for the transposed SpMM ops (the gradient of SpMM's dense operand):
// sparse::{csr,bsr,bitmap,sparse24}_spmm_t, out[k, n] = A^T @ b for A [m, k] in
// the format and b [m, n]. Checks -> validation -> (CSR/BSR: transposed index)
// -> kernel (kernels/cpu/spmm_t.cpp).
#include <algorithm>
#include <limits>
#include <vector>

#include <ATen/Parallel.h>
#include <torch/library.h>

#include "core/checks.h"
#include "core/cpu_isa.h"
#include "core/dispatch.h"
#include "core/output.h"
#include "core/validate.h"
#include "kernels/cpu/float64.h"
#include "kernels/cpu/grad_kernels.h"
#include "ops/cpu/row_split.h"
#include "ops/cpu/spmm_common.h"

namespace sk {

namespace {

// The transposed index of a (block) CSR pattern with `rows` rows and `cols`
// columns, in the index dtype I: (col_ptr [cols + 1], row_of [nnz], perm [nnz]).
struct TransposedIndex {
  at::Tensor col_ptr, row_of, perm;
};

template <typename I>
TransposedIndex transposed_index(const char* op, const at::Tensor& row_ptr,
                                                                const at::Tensor& col_idx, int64_t rows,
                                                                int64_t cols) {
  TORCH_CHECK_VALUE(rows <= int64_t(std::numeric_limits<I>::max()), op, ": ", rows,
                    " (block) rows do not fit the int32 indices of the transposed index; use int64 indices");
  const int64_t nnz = col_idx.numel();
  at::Tensor col_ptr = at::empty({cols + 1}, row_ptr.options());
  at::Tensor row_of = at::empty({nnz}, row_ptr.options());
  at::Tensor perm = at::empty({nnz}, row_ptr.options());
  const cpu::CsrTransposeArgs<I> args{row_ptr.data_ptr<I>(), col_idx.data_ptr<I>(), col_ptr.data_ptr<I>(),
                                      row_of.data_ptr<I>(),  perm.data_ptr<I>(),    rows, cols};
  SK_CPU_CALL(csr_transpose, args);
  return {col_ptr, row_of, perm};
}

// Splits output rows [0, rows) by cost: terms * (n + 4) + a little per row,
// with the terms of rows [0, j) given by term_prefix(j).
template <typename F, typename G>
void parallel_over_out_rows(int64_t rows, int64_t n, F term_prefix, const G& body) {
  const int64_t per_term = n + 4;
  const auto bounds = split_rows_by_cost(rows, 1 << 15, [&](int64_t j) { return term_prefix(j) * per_term + j; });
  parallel_for_row_parts(bounds, body);
}

// The scatter form (kernels/cpu/spmm_t.cpp): each part of A's rows (bounds)
// adds its terms to its own fp32 buffer of `rows` x csr_scatter_width(n)
// floats (scatter(row_begin, row_end, buffer, &first_bad)), then the buffers
// are summed into out by rows. The buffers are one allocation per call, a
// part each: thread-local ones could be shared by two parts that one thread
// runs, or reused by another call between the two phases. kScatterOk, or
// kScatterBadIndex when a part reported a bad row (first_bad starts at -1),
// or kScatterNoBuffer when a part could not run (scatter returned false: the
// bitmap kernel's scratch).
enum ScatterResult { kScatterOk, kScatterBadIndex, kScatterNoBuffer };
constexpr int64_t kCsrScatterMaxPanelsN = 1024;
template <typename T, typename Scatter>
ScatterResult scatter_and_reduce(const std::vector<int64_t>& bounds, int64_t rows, const Scatter& scatter,
                                 int64_t n, at::Tensor& out) {
  const int64_t parts = int64_t(bounds.size()) - 1, size = rows * cpu::csr_scatter_width(n);
  const at::Tensor buffers = at::empty({parts * size}, out.options().dtype(at::kFloat));
  float* const base = buffers.data_ptr<float>();
  std::vector<int64_t> bad(size_t(parts), -1);
  std::vector<char> ran(size_t(parts), 0);
  at::parallel_for(0, parts, 1, [&](int64_t pb, int64_t pe) {
    for (int64_t q = pb; q < pe; ++q)
      ran[size_t(q)] = scatter(bounds[size_t(q)], bounds[size_t(q) + 1], base + q * size, &bad[size_t(q)]);
  });
  std::vector<const float*> used;
  for (int64_t q = 0; q < parts; ++q) {
    if (bad[size_t(q)] >= 0) return kScatterBadIndex;
    if (!ran[size_t(q)]) return kScatterNoBuffer;
    used.push_back(base + q * size);
  }
  T* o = data_as<T>(out);
  const int64_t k = out.size(0), ldo = out.stride(0), np = int64_t(used.size());
  at::parallel_for(0, k, std::max<int64_t>(1, (1 << 14) / (n * np)), [&](int64_t begin, int64_t end) {
    SK_CPU_CALL(csr_spmm_t_reduce, used.data(), np, n, o, ldo, begin, end);
  });
  return kScatterOk;
}

// Whether the scatter form pays for `terms` stored elements and buffers of
// `rows` rows: n <= kCsrScatterMaxN, a buffer of at most kCsrScatterMaxFloats
// and all parts' buffers (zeroed, then summed) at most 32 floats per term.
bool scatter_pays(int64_t parts, int64_t rows, int64_t n, int64_t terms) {
  const int64_t width = cpu::csr_scatter_width(n);
  return n <= cpu::kCsrScatterMaxN && rows * width <= cpu::kCsrScatterMaxFloats && parts * rows * width <= 32 * terms;
}

// CSR: the kernel checks every row pointer and column as it reads it; on a
// bad one the full validator raises its message. n > kCsrScatterMaxN goes in
// panels of kCsrScatterMaxN columns, A read once per panel, up to
// kCsrScatterMaxPanelsN columns (against the transposed index: 4096^2, fp32,
// 2 threads, 70 % n = 65 91 -> 11.4 ms, 128 84 -> 19.8, 512 255 -> 85; 90 %
// n = 128 19.4 -> 8.1, 512 58 -> 30). False when the form does not apply:
// the caller then validates and builds the transposed index.
template <typename T, typename I>
bool csr_spmm_t_scatter(const char* op, const at::Tensor& row_ptr, const at::Tensor& col_idx,
                        const at::Tensor& values, const at::Tensor& b, at::Tensor& out, int64_t k) {
  const int64_t m = b.size(0), n = b.size(1), nnz = col_idx.numel();
  if (m == 0 || n > kCsrScatterMaxPanelsN) return false;
  const int64_t w = std::min(n, cpu::kCsrScatterMaxN);  // columns per panel
  // row_ptr is not validated yet: the split only needs its values to be
  // numbers (bounds stay within [0, m] and increasing whatever they are)
  const I* rp = row_ptr.data_ptr<I>();
  const std::vector<int64_t> bounds =
      split_rows_by_cost(m, 1 << 15, [&](int64_t i) { return int64_t(rp[i]) * (w + 4) + i; });
  if (!scatter_pays(int64_t(bounds.size()) - 1, k, w, nnz)) return false;
  for (int64_t j0 = 0; j0 < n; j0 += w) {
    const int64_t nc = std::min(w, n - j0);
    const cpu::CsrSpmmTScatterArgs<T, I> args{rp, col_idx.data_ptr<I>(), data_as<const T>(values),
                                             data_as<const T>(b) + j0, m, k, nc, b.stride(0), nnz};
    at::Tensor panel = out.narrow(1, j0, nc);
    const ScatterResult r = scatter_and_reduce<T>(
        bounds, k,
        [&](int64_t begin, int64_t end, float* acc, int64_t* first_bad) {
          SK_CPU_CALL(csr_spmm_t_scatter, args, begin, end, acc, first_bad);
          return true;
        },
        nc, panel);
    // (the CSR scatter always runs: the result is kScatterOk or this)
    if (r == kScatterBadIndex) raise_from_validator(op, [&] { validate_csr(op, row_ptr, col_idx, values, m, k); });
  }
  return true;
}

}  // namespace

at::Tensor csr_spmm_t_cpu(const at::Tensor& row_ptr, const at::Tensor& col_idx, const at::Tensor& values,
                          const at::Tensor& b, int64_t k) {
  constexpr const char* op = "sparse::csr_spmm_t";
  const at::Tensor bb = check_spmm_dense_operand(op, values, b);
  const int64_t m = bb.size(0), n = bb.size(1);
  check_csr_header(op, row_ptr, col_idx, values, m, k);
  at::Tensor out = empty_output({k, n}, bb.options());
  const auto validate = [&] { validate_csr(op, row_ptr, col_idx, values, m, k); };
  if (k == 0 || n == 0) {
    validate();
    return out;
  }
  if (!is_cpu_float64(values)) {
    bool done = false;
    dispatch_value_type(values.scalar_type(), op, [&](auto vtag) {
      dispatch_index_type(row_ptr.scalar_type(), op, [&](auto itag) {
        done = csr_spmm_t_scatter<decltype(vtag), decltype(itag)>(op, row_ptr, col_idx, values, bb, out, k);
      });
    });
    if (done) return out;
  }
  validate();
  if (is_cpu_float64(values)) {  // simple double kernel (validated above)
    dispatch_index_type(row_ptr.scalar_type(), op, [&](auto itag) {
      using I = decltype(itag);
      const TransposedIndex t = transposed_index<I>(op, row_ptr, col_idx, m, k);
      const I* cp = t.col_ptr.data_ptr<I>();
      const cpu::CsrSpmmTArgs<double, I> args{cp, t.row_of.data_ptr<I>(), t.perm.data_ptr<I>(),
                                              data_as<const double>(values), data_as<const double>(bb),
                                              data_as<double>(out), m, k, n, bb.stride(0), out.stride(0)};
      parallel_over_out_rows(
          k, n, [&](int64_t j) { return int64_t(cp[j]); },
          [&](int64_t begin, int64_t end) { SK_CPU_CALL(csr_spmm_t_f64, args, begin, end); });
    });
    return out;
  }
  dispatch_value_type(values.scalar_type(), op, [&](auto vtag) {
    using T = decltype(vtag);
    dispatch_index_type(row_ptr.scalar_type(), op, [&](auto itag) {
      using I = decltype(itag);
      const TransposedIndex t = transposed_index<I>(op, row_ptr, col_idx, m, k);
      const I* cp = t.col_ptr.data_ptr<I>();
      const cpu::CsrSpmmTArgs<T, I> args{cp, t.row_of.data_ptr<I>(), t.perm.data_ptr<I>(), data_as<const T>(values),
                                         data_as<const T>(bb), data_as<T>(out), m, k, n, bb.stride(0),
                                         out.stride(0)};
      parallel_over_out_rows(
          k, n, [&](int64_t j) { return int64_t(cp[j]); },
          [&](int64_t begin, int64_t end) { SK_CPU_CALL(csr_spmm_t, args, begin, end); });
    });
  });
  return out;
}

at::Tensor bsr_spmm_t_cpu(const at::Tensor& block_row_ptr, const at::Tensor& block_col_idx, const at::Tensor& blocks,
                          const at::Tensor& b, int64_t k) {
  constexpr const char* op = "sparse::bsr_spmm_t";
  const at::Tensor bb = check_spmm_dense_operand(op, blocks, b);
  const int64_t m = bb.size(0), n = bb.size(1);
  validate_bsr(op, block_row_ptr, block_col_idx, blocks, m, k);
  at::Tensor out = empty_output({k, n}, bb.options());
  if (k == 0 || n == 0) return out;
  const int64_t r = blocks.size(1), c = blocks.size(2);
  const int64_t row_blocks = (m + r - 1) / r, col_blocks = (k + c - 1) / c;
  if (is_cpu_float64(blocks)) {  // simple double kernel (validated above)
    dispatch_index_type(block_row_ptr.scalar_type(), op, [&](auto itag) {
      using I = decltype(itag);
      const TransposedIndex t = transposed_index<I>(op, block_row_ptr, block_col_idx, row_blocks, col_blocks);
      const I* cp = t.col_ptr.data_ptr<I>();
      const cpu::BsrSpmmTArgs<double, I> args{cp, t.row_of.data_ptr<I>(), t.perm.data_ptr<I>(),
                                              data_as<const double>(blocks), data_as<const double>(bb),
                                              data_as<double>(out), m, k, n, r, c, bb.stride(0), out.stride(0)};
      parallel_over_out_rows(
          col_blocks, n, [&](int64_t j) { return int64_t(cp[j]) * r * c; },
          [&](int64_t begin, int64_t end) { SK_CPU_CALL(bsr_spmm_t_f64, args, begin, end); });
    });
    return out;
  }
  dispatch_value_type(blocks.scalar_type(), op, [&](auto vtag) {
    using T = decltype(vtag);
    dispatch_index_type(block_row_ptr.scalar_type(), op, [&](auto itag) {
      using I = decltype(itag);
      const TransposedIndex t = transposed_index<I>(op, block_row_ptr, block_col_idx, row_blocks, col_blocks);
      const I* cp = t.col_ptr.data_ptr<I>();
      const cpu::BsrSpmmTArgs<T, I> args{cp, t.row_of.data_ptr<I>(), t.perm.data_ptr<I>(), data_as<const T>(blocks),
                                         data_as<const T>(bb), data_as<T>(out), m, k, n, r, c, bb.stride(0),
                                         out.stride(0)};
      parallel_over_out_rows(
          col_blocks, n, [&](int64_t j) { return int64_t(cp[j]) * r * c; },
          [&](int64_t begin, int64_t end) { SK_CPU_CALL(bsr_spmm_t, args, begin, end); });
    });
  });
  return out;
}

at::Tensor bitmap_spmm_t_cpu(const at::Tensor& group_offsets, const at::Tensor& bitmaps, const at::Tensor& values,
                             const at::Tensor& b, int64_t k) {
  constexpr const char* op = "sparse::bitmap_spmm_t";
  const at::Tensor bb = check_spmm_dense_operand(op, values, b);
  const int64_t m = bb.size(0), n = bb.size(1);
  validate_bitmap(op, group_offsets, bitmaps, values, m, k);
  at::Tensor out = empty_output({k, n}, bb.options());
  if (k == 0 || n == 0) return out;
  const int64_t group_cols = (k + 63) / 64;
  if (is_cpu_float64(values)) {  // simple double kernel (validated above)
    const cpu::BitmapSpmmTArgs<double> args{group_offsets.data_ptr<int64_t>(),
                                            reinterpret_cast<const uint64_t*>(bitmaps.data_ptr<int64_t>()),
                                            data_as<const double>(values),
                                            data_as<const double>(bb),
                                            data_as<double>(out),
                                            m,
                                            k,
                                            n,
                                            bb.stride(0),
                                            out.stride(0)};
    at::parallel_for(0, group_cols, spmm_row_grain(group_cols, values.numel(), n),
                     [&](int64_t begin, int64_t end) { SK_CPU_CALL(bitmap_spmm_t_f64, args, begin, end); });
    return out;
  }
  dispatch_value_type(values.scalar_type(), op, [&](auto vtag) {
    using T = decltype(vtag);
    const cpu::BitmapSpmmTArgs<T> args{group_offsets.data_ptr<int64_t>(),
                                       reinterpret_cast<const uint64_t*>(bitmaps.data_ptr<int64_t>()),
                                       data_as<const T>(values),
                                       data_as<const T>(bb),
                                       data_as<T>(out),
                                       m,
                                       k,
                                       n,
                                       bb.stride(0),
                                       out.stride(0)};
    // the scatter form (see csr_spmm_t_scatter) by group rows, values.numel()
    // terms at most, for n <= 16: its decode per (row, tile) is a fixed cost,
    // and from n = 32 the strip kernel was as fast or faster (4096^2, fp32,
    // 2 threads, strip -> scatter: 70 % n = 1 11.4 -> 5.3 ms, n = 16 13.1 ->
    // 6.5, n = 32 11.9 -> 12.1, n = 64 15.2 -> 20.4; 90 % n = 16 6.3 -> 5.7)
    const int64_t group_rows = (m + 63) / 64;
    if (group_rows > 0 && n <= 16) {
      const int64_t* go = group_offsets.data_ptr<int64_t>();
      const std::vector<int64_t> bounds = split_rows_by_cost(
          group_rows, 1 << 15, [&](int64_t gi) { return go[gi * group_cols] * (n + 4) + gi * 64 * group_cols; });
      if (scatter_pays(int64_t(bounds.size()) - 1, k, n, values.numel()) &&
          scatter_and_reduce<T>(
              bounds, k,
              [&](int64_t begin, int64_t end, float* acc, int64_t*) {
                bool ok = false;
                SK_CPU_CALL(bitmap_spmm_t_scatter, args, begin, end, acc, &ok);
                return ok;
              },
              n, out) == kScatterOk)
        return;
    }
    at::parallel_for(0, group_cols, spmm_row_grain(group_cols, values.numel(), n),
                     [&](int64_t begin, int64_t end) { SK_CPU_CALL(bitmap_spmm_t, args, begin, end); });
  });
  return out;
}

at::Tensor sparse24_spmm_t_cpu(const at::Tensor& values, const at::Tensor& meta, const at::Tensor& b, int64_t k) {
  constexpr const char* op = "sparse::sparse24_spmm_t";
  const at::Tensor bb = check_spmm_dense_operand(op, values, b);
  validate_sparse24(op, values, meta, k);
  const int64_t m = values.size(0), n = bb.size(1);
  TORCH_CHECK_VALUE(bb.size(0) == m, op, ": 'b' must have m = ", m, " rows (the rows of 'values'), got shape ",
                    b.sizes());
  at::Tensor out = empty_output({k, n}, bb.options());
  if (k == 0 || n == 0) return out;
  const int64_t chunks = (k + 63) / 64;  // 64 columns of A = 64 rows of out each
  if (is_cpu_float64(values)) {  // simple double kernel (validated above)
    const cpu::Sparse24SpmmTArgs<double> args{data_as<const double>(values),
                                              reinterpret_cast<const uint16_t*>(meta.data_ptr()),
                                              data_as<const double>(bb),
                                              data_as<double>(out),
                                              m,
                                              k,
                                              n,
                                              bb.stride(0),
                                              out.stride(0)};
    at::parallel_for(0, chunks, spmm_row_grain(chunks, chunks * m * 32, n),
                     [&](int64_t begin, int64_t end) { SK_CPU_CALL(sparse24_spmm_t_f64, args, begin, end); });
    return out;
  }
  dispatch_value_type(values.scalar_type(), op, [&](auto vtag) {
    using T = decltype(vtag);
    const cpu::Sparse24SpmmTArgs<T> args{data_as<const T>(values),
                                         reinterpret_cast<const uint16_t*>(meta.data_ptr()),
                                         data_as<const T>(bb),
                                         data_as<T>(out),
                                         m,
                                         k,
                                         n,
                                         bb.stride(0),
                                         out.stride(0)};
    // the scatter form (see csr_spmm_t_scatter): m * kp / 2 terms, buffers of kp rows
    const int64_t kp = (k + 15) / 16 * 16;
    if (m > 0) {
      const std::vector<int64_t> bounds =
          split_rows_by_cost(m, 1 << 15, [&](int64_t i) { return i * (kp / 2) * (n + 4); });
      if (scatter_pays(int64_t(bounds.size()) - 1, kp, n, m * (kp / 2)) &&
          scatter_and_reduce<T>(
              bounds, kp,
              [&](int64_t begin, int64_t end, float* acc, int64_t*) {  // validated: no bad rows
                SK_CPU_CALL(sparse24_spmm_t_scatter, args, begin, end, acc);
                return true;
              },
              n, out) == kScatterOk)
        return;
    }
    // A chunk holds m * 32 stored elements.
    at::parallel_for(0, chunks, spmm_row_grain(chunks, chunks * m * 32, n),
                     [&](int64_t begin, int64_t end) { SK_CPU_CALL(sparse24_spmm_t, args, begin, end); });
  });
  return out;
}

TORCH_LIBRARY_IMPL(sparse, CPU, m) {
  m.impl("csr_spmm_t", &csr_spmm_t_cpu);
  m.impl("bsr_spmm_t", &bsr_spmm_t_cpu);
  m.impl("bitmap_spmm_t", &bitmap_spmm_t_cpu);
  m.impl("sparse24_spmm_t", &sparse24_spmm_t_cpu);
}

}  // namespace sk
