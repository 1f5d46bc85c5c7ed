// CPU sparse::dense_to_bsr and sparse::bsr_to_dense.
#include <algorithm>
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

namespace {

// Whether the block of `rows` x `cols` elements at (row0, col0) of the
// contiguous dense [*, k] has a non-zero (stops at the first).
template <typename scalar_t>
bool block_has_nonzero(const scalar_t* src, int64_t k, int64_t row0, int64_t rows, int64_t col0, int64_t cols) {
  for (int64_t i = 0; i < rows; ++i) {
    const scalar_t* row = src + (row0 + i) * k + col0;
    for (int64_t j = 0; j < cols; ++j)
      if (is_nonzero(row[j])) return true;
  }
  return false;
}

}  // namespace

// Two passes over the block rows: count the blocks with a non-zero (into
// block_row_ptr[I+1]), prefix-sum, then find them again and copy them out,
// block columns ascending, padding past m x k written as 0.
std::tuple<at::Tensor, at::Tensor, at::Tensor> dense_to_bsr_cpu(const at::Tensor& dense, int64_t r, int64_t c) {
  constexpr const char* op = "sparse::dense_to_bsr";
  TORCH_CHECK_VALUE(r >= 1 && c >= 1, op, ": the block size 'r' x 'c' must be at least 1 x 1, got ", r, " x ", c);
  const at::Tensor d = check_pack_dense_input(op, dense);
  const int64_t m = d.size(0), k = d.size(1);
  const int64_t row_blocks = (m + r - 1) / r, col_blocks = (k + c - 1) / c;
  const at::TensorOptions index_opts = d.options().dtype(pack_index_dtype(m, k));
  at::Tensor block_row_ptr = empty_output({row_blocks + 1}, index_opts);
  at::Tensor block_col_idx, blocks;
  const int64_t grain = std::max<int64_t>(1, pack_row_grain(k) / r);
  dispatch_pack_type(d.scalar_type(), op, [&](auto vtag) {
    using scalar_t = decltype(vtag);
    const scalar_t* src = d.data_ptr<scalar_t>();
    dispatch_index_type(block_row_ptr.scalar_type(), op, [&](auto itag) {
      using I = decltype(itag);
      I* rp = block_row_ptr.data_ptr<I>();
      rp[0] = 0;
      at::parallel_for(0, row_blocks, grain, [&](int64_t begin, int64_t end) {
        for (int64_t bi = begin; bi < end; ++bi) {
          const int64_t rows = std::min(r, m - bi * r);
          I count = 0;
          for (int64_t bj = 0; bj < col_blocks; ++bj)
            count += block_has_nonzero(src, k, bi * r, rows, bj * c, std::min(c, k - bj * c)) ? 1 : 0;
          rp[bi + 1] = count;
        }
      });
      for (int64_t bi = 0; bi < row_blocks; ++bi) rp[bi + 1] += rp[bi];
      const int64_t nnzb = int64_t(rp[row_blocks]);
      block_col_idx = empty_output({nnzb}, index_opts);
      blocks = empty_output({nnzb, r, c}, d.options());
      I* ci = block_col_idx.data_ptr<I>();
      scalar_t* out = blocks.data_ptr<scalar_t>();
      at::parallel_for(0, row_blocks, grain, [&](int64_t begin, int64_t end) {
        for (int64_t bi = begin; bi < end; ++bi) {
          const int64_t rows = std::min(r, m - bi * r);
          int64_t p = int64_t(rp[bi]);
          for (int64_t bj = 0; bj < col_blocks; ++bj) {
            const int64_t cols = std::min(c, k - bj * c);
            if (!block_has_nonzero(src, k, bi * r, rows, bj * c, cols)) continue;
            ci[p] = I(bj);
            scalar_t* blk = out + p * r * c;
            for (int64_t i = 0; i < rows; ++i) {
              const scalar_t* srow = src + (bi * r + i) * k + bj * c;
              std::copy(srow, srow + cols, blk + i * c);
              std::fill(blk + i * c + cols, blk + (i + 1) * c, scalar_t(0));
            }
            std::fill(blk + rows * c, blk + r * c, scalar_t(0));
            ++p;
          }
        }
      });
    });
  });
  return {block_row_ptr, block_col_idx, blocks};
}

// Each row is summed in an fp32 buffer (double for float64; duplicate blocks
// add up), then rounded once to the values dtype; padding elements of edge
// blocks are ignored.
at::Tensor bsr_to_dense_cpu(const at::Tensor& block_row_ptr, const at::Tensor& block_col_idx,
                            const at::Tensor& blocks, int64_t m, int64_t k) {
  constexpr const char* op = "sparse::bsr_to_dense";
  check_unpack_values_dtype(op, blocks, "blocks");
  validate_bsr(op, block_row_ptr, block_col_idx, blocks, m, k);
  at::Tensor out = empty_output({m, k}, blocks.options());
  if (m == 0 || k == 0) return out;
  const int64_t r = blocks.size(1), c = blocks.size(2);
  const int64_t row_blocks = (m + r - 1) / r;
  dispatch_pack_type(blocks.scalar_type(), op, [&](auto vtag) {
    using scalar_t = decltype(vtag);
    const scalar_t* blk = blocks.data_ptr<scalar_t>();
    scalar_t* dst = out.data_ptr<scalar_t>();
    dispatch_index_type(block_row_ptr.scalar_type(), op, [&](auto itag) {
      using I = decltype(itag);
      const I* rp = block_row_ptr.data_ptr<I>();
      const I* ci = block_col_idx.data_ptr<I>();
      at::parallel_for(0, row_blocks, std::max<int64_t>(1, pack_row_grain(k) / r), [&](int64_t begin, int64_t end) {
        std::vector<pack_acc_t<scalar_t>> buf(k);
        for (int64_t bi = begin; bi < end; ++bi) {
          const int64_t rows = std::min(r, m - bi * r);
          for (int64_t i = 0; i < rows; ++i) {
            std::fill(buf.begin(), buf.end(), pack_acc_t<scalar_t>(0));
            for (int64_t p = rp[bi]; p < int64_t(rp[bi + 1]); ++p) {
              const int64_t col0 = int64_t(ci[p]) * c, cols = std::min(c, k - col0);
              const scalar_t* src = blk + (p * r + i) * c;
              for (int64_t j = 0; j < cols; ++j) buf[col0 + j] += static_cast<pack_acc_t<scalar_t>>(src[j]);
            }
            scalar_t* row = dst + (bi * r + i) * k;
            for (int64_t j = 0; j < k; ++j) row[j] = scalar_t(buf[j]);
          }
        }
      });
    });
  });
  return out;
}

TORCH_LIBRARY_IMPL(sparse, CPU, m) {
  m.impl("dense_to_bsr", &dense_to_bsr_cpu);
  m.impl("bsr_to_dense", &bsr_to_dense_cpu);
}

}  // namespace sk
