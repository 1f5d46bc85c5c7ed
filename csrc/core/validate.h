// Format validation on the CPU, run by every op before a kernel reads the format.
// Each check is O(metadata size), parallel, and raises ValueError/TypeError with
// the op name, the argument and the first offending position.
//
// The CUDA glue validates on the device with its own kernels (ops/cuda).
#pragma once

#include <cstdint>

#include <ATen/ATen.h>

namespace sk {

// The array checks of validate_csr that read no data (ranks, dtypes, contiguity,
// devices, lengths): shared by the CPU validator and the CUDA one (ops/cuda).
void check_csr_arrays(const char* op, const at::Tensor& row_ptr, const at::Tensor& col_idx,
                      const at::Tensor& values, int64_t m, int64_t k);

// check_csr_arrays plus the O(1) content checks row_ptr[0] == 0 and
// row_ptr[m] == nnz: what the CPU SpMM glue checks before its kernel, which
// checks the rest as it reads (docs/design.md, Validation).
void check_csr_header(const char* op, const at::Tensor& row_ptr, const at::Tensor& col_idx,
                      const at::Tensor& values, int64_t m, int64_t k);

// row_ptr [m+1] and col_idx [nnz] (same int32/int64 dtype, contiguous, 1-D),
// values [nnz]; row_ptr[0] == 0, non-decreasing, row_ptr[m] == nnz; 0 <= col < k.
void validate_csr(const char* op, const at::Tensor& row_ptr, const at::Tensor& col_idx,
                  const at::Tensor& values, int64_t m, int64_t k);

// block_row_ptr [ceil(m/r)+1], block_col_idx [nnzb], blocks [nnzb, r, c] with
// r, c >= 1; the same pointer rules as CSR with 0 <= block col < ceil(k/c).
void validate_bsr(const char* op, const at::Tensor& block_row_ptr, const at::Tensor& block_col_idx,
                  const at::Tensor& blocks, int64_t m, int64_t k);

// group_offsets int64 [G+1], bitmaps int64 [G*64], values [group_offsets[G]] with
// G = ceil(m/64)*ceil(k/64); offsets start at 0, each group's count equals
// popcount of its 64 bitmaps rounded up to a multiple of 8, no bit set outside m x k.
void validate_bitmap(const char* op, const at::Tensor& group_offsets, const at::Tensor& bitmaps,
                     const at::Tensor& values, int64_t m, int64_t k);
// The array checks of validate_bitmap that read no data (ranks, dtypes,
// contiguity, devices, lengths): shared by the CPU validator and the CUDA one.
void check_bitmap_arrays(const char* op, const at::Tensor& group_offsets, const at::Tensor& bitmaps,
                         const at::Tensor& values, int64_t m, int64_t k);
// The errors validate_bitmap raises, for the CUDA validator to raise the same
// ones from the values it copies back: group_offsets[0] != 0;
// group_offsets[G] != the values length; bitmaps[index] (= mask) has a bit
// outside m x k; group g's offsets (begin, end) disagree with its `bits` set bits.
[[noreturn]] void raise_bitmap_first_offset(const char* op, int64_t value);
[[noreturn]] void raise_bitmap_last_offset(const char* op, int64_t groups, int64_t values_len, int64_t value);
[[noreturn]] void raise_bitmap_bad_bit(const char* op, int64_t index, uint64_t mask, int64_t m, int64_t k);
[[noreturn]] void raise_bitmap_bad_count(const char* op, int64_t g, int64_t begin, int64_t end, int64_t bits);
// The part of validate_bitmap that reads no more than O(1) of the content
// (argument checks, sizes, group_offsets[0] and group_offsets[G]); the bitmap
// SpMM kernel checks the rest as it reads.
void check_bitmap_header(const char* op, const at::Tensor& group_offsets, const at::Tensor& bitmaps,
                         const at::Tensor& values, int64_t m, int64_t k);

// values [m, kp/2], meta int16 [m, kp/16] with kp = roundup(k, 16); every 4-bit
// group (padding groups included) holds two strictly increasing 2-bit indices.
// Indices at or past k are allowed (the packer fills with them) and skipped.
void validate_sparse24(const char* op, const at::Tensor& values, const at::Tensor& meta, int64_t k);
// The part of validate_sparse24 that reads no content (arguments and shapes);
// the 2:4 SpMM kernel checks the metadata words as it reads them.
void check_sparse24_header(const char* op, const at::Tensor& values, const at::Tensor& meta, int64_t k);

}  // namespace sk
