#include "core/checks.h"
#include "core/dispatch.h"
#include "core/parallel_find.h"
#include "core/validate.h"

namespace sk {

void validate_bsr(const char* op, const at::Tensor& block_row_ptr, const at::Tensor& block_col_idx,
                  const at::Tensor& blocks, int64_t m, int64_t k) {
  TORCH_CHECK_VALUE(m >= 0 && k >= 0, op, ": the sparse shape must be non-negative, got (", m, ", ", k, ")");
  SK_CHECK_DIM(op, block_row_ptr, 1);
  SK_CHECK_DIM(op, block_col_idx, 1);
  SK_CHECK_DIM(op, blocks, 3);
  SK_CHECK_SAME_DTYPE(op, block_row_ptr, block_col_idx);
  SK_CHECK_CONTIGUOUS(op, block_row_ptr);
  SK_CHECK_CONTIGUOUS(op, block_col_idx);
  SK_CHECK_CONTIGUOUS(op, blocks);
  SK_CHECK_SAME_DEVICE(op, block_row_ptr, block_col_idx);
  SK_CHECK_SAME_DEVICE(op, block_row_ptr, blocks);
  const int64_t r = blocks.size(1), c = blocks.size(2);
  TORCH_CHECK_VALUE(r >= 1 && c >= 1, op, ": 'blocks' must have shape [nnzb, r, c] with r, c >= 1, got ",
                    blocks.sizes());
  const int64_t row_blocks = (m + r - 1) / r, col_blocks = (k + c - 1) / c;
  TORCH_CHECK_VALUE(block_row_ptr.numel() == row_blocks + 1, op, ": 'block_row_ptr' must have ceil(m / r) + 1 = ",
                    row_blocks + 1, " entries for m = ", m, " and r = ", r, ", got ", block_row_ptr.numel());
  TORCH_CHECK_VALUE(blocks.size(0) == block_col_idx.numel(), op, ": 'blocks' (", blocks.size(0),
                    " blocks) and 'block_col_idx' (", block_col_idx.numel(), " entries) must have the same length");
  const int64_t nnzb = block_col_idx.numel();
  dispatch_index_type(block_row_ptr.scalar_type(), op, [&](auto tag) {
    using I = decltype(tag);
    const I* rp = block_row_ptr.data_ptr<I>();
    const I* ci = block_col_idx.data_ptr<I>();
    TORCH_CHECK_VALUE(rp[0] == 0, op, ": 'block_row_ptr[0]' must be 0, got ", int64_t(rp[0]));
    TORCH_CHECK_VALUE(int64_t(rp[row_blocks]) == nnzb, op, ": 'block_row_ptr[-1]' must equal nnzb = ", nnzb,
                      " (the length of block_col_idx), got ", int64_t(rp[row_blocks]));
    const int64_t bad_row = parallel_find_first_pure(row_blocks, 2048, [&](int64_t i) { return rp[i + 1] < rp[i]; });
    TORCH_CHECK_VALUE(bad_row == row_blocks, op, ": 'block_row_ptr' must be non-decreasing, but block_row_ptr[",
                      bad_row, "] = ", int64_t(rp[bad_row]), " > block_row_ptr[", bad_row + 1,
                      "] = ", int64_t(rp[bad_row + 1]));
    const int64_t bad_col = parallel_find_first_pure(
        nnzb, 32768, [&](int64_t p) { return ci[p] < 0 || int64_t(ci[p]) >= col_blocks; });
    TORCH_CHECK_VALUE(bad_col == nnzb, op, ": 'block_col_idx[", bad_col, "]' = ", int64_t(ci[bad_col]),
                      " is out of range for ceil(k / c) = ", col_blocks, " block columns (k = ", k, ", c = ", c,
                      ")");
  });
}

}  // namespace sk
