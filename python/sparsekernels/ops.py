"""Fake (meta) implementations of every sparsekernels op.

The real implementations are C++ (csrc/ops/cpu, csrc/ops/cuda); the schemas are in
csrc/torch_bindings.cpp and the layouts in docs/formats.md. A fake computes the
output's shape and dtype without data, so torch.compile can trace the ops.
"""

from __future__ import annotations

import torch

from sparsekernels import _lib  # noqa: F401  (loads the library first)

INT32_MAX = 2**31 - 1
BITMAP_GROUP = 64  # bitmap groups are 64 x 64 elements (8 x 8 tiles of 8 x 8)
SPARSE24_K_ALIGN = 16  # 2:4 rows are padded to a multiple of 16 columns (one int16 of metadata)


def _cdiv(a, b):
    return (a + b - 1) // b


def pack_index_dtype(m, k) -> torch.dtype:
    """Index dtype the packers produce: int32 unless m * k needs 64 bits."""
    return torch.int32 if m * k <= INT32_MAX else torch.int64


# ---- SpMM -------------------------------------------------------------------
@torch.library.register_fake("sparse::csr_spmm")
def _csr_spmm_fake(row_ptr, col_idx, values, b, m):
    return b.new_empty((m, b.shape[1]))


@torch.library.register_fake("sparse::bsr_spmm")
def _bsr_spmm_fake(block_row_ptr, block_col_idx, blocks, b, m):
    return b.new_empty((m, b.shape[1]))


@torch.library.register_fake("sparse::bitmap_spmm")
def _bitmap_spmm_fake(group_offsets, bitmaps, values, b, m):
    return b.new_empty((m, b.shape[1]))


@torch.library.register_fake("sparse::sparse24_spmm")
def _sparse24_spmm_fake(values, meta, b):
    return b.new_empty((values.shape[0], b.shape[1]))


# ---- SDDMM / SpGEMM -----------------------------------------------------------
@torch.library.register_fake("sparse::csr_sddmm")
def _csr_sddmm_fake(row_ptr, col_idx, x, y):
    return x.new_empty((col_idx.shape[0],))


@torch.library.register_fake("sparse::csr_spgemm")
def _csr_spgemm_fake(a_row_ptr, a_col_idx, a_values, b_row_ptr, b_col_idx, b_values, n):
    nnz = torch.library.get_ctx().new_dynamic_size()
    index_dtype = torch.int64 if torch.int64 in (a_row_ptr.dtype, b_row_ptr.dtype) else torch.int32
    return (
        a_row_ptr.new_empty((a_row_ptr.shape[0],), dtype=index_dtype),
        a_row_ptr.new_empty((nnz,), dtype=index_dtype),
        a_values.new_empty((nnz,)),
    )


# ---- pack / unpack ------------------------------------------------------------
@torch.library.register_fake("sparse::dense_to_csr")
def _dense_to_csr_fake(dense):
    m, k = dense.shape
    nnz = torch.library.get_ctx().new_dynamic_size()
    index_dtype = pack_index_dtype(m, k)
    return (
        dense.new_empty((m + 1,), dtype=index_dtype),
        dense.new_empty((nnz,), dtype=index_dtype),
        dense.new_empty((nnz,)),
    )


@torch.library.register_fake("sparse::csr_to_dense")
def _csr_to_dense_fake(row_ptr, col_idx, values, m, k):
    return values.new_empty((m, k))


@torch.library.register_fake("sparse::dense_to_bsr")
def _dense_to_bsr_fake(dense, r, c):
    m, k = dense.shape
    nnzb = torch.library.get_ctx().new_dynamic_size()
    index_dtype = pack_index_dtype(m, k)
    return (
        dense.new_empty((_cdiv(m, r) + 1,), dtype=index_dtype),
        dense.new_empty((nnzb,), dtype=index_dtype),
        dense.new_empty((nnzb, r, c)),
    )


@torch.library.register_fake("sparse::bsr_to_dense")
def _bsr_to_dense_fake(block_row_ptr, block_col_idx, blocks, m, k):
    return blocks.new_empty((m, k))


@torch.library.register_fake("sparse::dense_to_bitmap")
def _dense_to_bitmap_fake(dense):
    m, k = dense.shape
    groups = _cdiv(m, BITMAP_GROUP) * _cdiv(k, BITMAP_GROUP)
    total = torch.library.get_ctx().new_dynamic_size()
    return (
        dense.new_empty((groups + 1,), dtype=torch.int64),
        dense.new_empty((groups * 64,), dtype=torch.int64),
        dense.new_empty((total,)),
    )


@torch.library.register_fake("sparse::bitmap_to_dense")
def _bitmap_to_dense_fake(group_offsets, bitmaps, values, m, k):
    return values.new_empty((m, k))


@torch.library.register_fake("sparse::dense_to_sparse24")
def _dense_to_sparse24_fake(dense):
    m, k = dense.shape
    kp = _cdiv(k, SPARSE24_K_ALIGN) * SPARSE24_K_ALIGN
    return dense.new_empty((m, kp // 2)), dense.new_empty((m, kp // 16), dtype=torch.int16)


@torch.library.register_fake("sparse::sparse24_to_dense")
def _sparse24_to_dense_fake(values, meta, k):
    return values.new_empty((values.shape[0], k))
