"""Fake (meta) implementations of every sparsekernels op.

The real implementations are C++ (csrc/ops/cpu, csrc/ops/cuda); the schemas are in
csrc/torch_bindings.cpp and the layouts in docs/formats.md. A fake computes the
output's shape and dtype without data, so torch.compile can trace the ops.
"""

from __future__ import annotations

import functools
import inspect

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


def _register_fake(name):
    """register_fake for sparse::<name>, checking first that every tensor argument is on one device: with one
    on the meta device and the others on the CPU, the dispatcher runs the fake on real tensors, which would return
    an uninitialised CPU tensor (the real kernels check devices in C++)."""

    def decorator(fn):
        params = list(inspect.signature(fn).parameters)

        @functools.wraps(fn)
        def checked(*args, **kwargs):
            named = [*zip(params, args), *kwargs.items()]
            tensors = [(n, a) for n, a in named if isinstance(a, torch.Tensor)]
            if len({a.device for _, a in tensors}) > 1:
                where = ", ".join(f"'{n}' on {a.device}" for n, a in tensors)
                raise RuntimeError(f"sparse::{name}: all tensor arguments must be on the same device, got {where}")
            return fn(*args, **kwargs)

        torch.library.register_fake(f"sparse::{name}")(checked)
        return fn

    return decorator


# ---- SpMM -------------------------------------------------------------------
# The optional bias [m] (out = A @ b + bias[:, None], rounded once) is checked as the kernels check it.
def _check_bias_fake(op, values, bias, m, values_name="values"):
    if bias is None:
        return
    if bias.dim() != 1 or bias.shape[0] != m:
        raise ValueError(f"sparse::{op}: 'bias' must be a 1-D tensor of length m = {m} (one entry per output row), "
                         f"got shape {list(bias.shape)}")
    if bias.dtype != values.dtype:
        raise TypeError(f"sparse::{op}: '{values_name}' and 'bias' must have the same dtype, got {values.dtype} and "
                        f"{bias.dtype}")


@_register_fake("csr_spmm")
def _csr_spmm_fake(row_ptr, col_idx, values, b, m, bias=None):
    _check_bias_fake("csr_spmm", values, bias, m)
    return b.new_empty((m, b.shape[1]))


@_register_fake("bsr_spmm")
def _bsr_spmm_fake(block_row_ptr, block_col_idx, blocks, b, m, bias=None):
    _check_bias_fake("bsr_spmm", blocks, bias, m, "blocks")
    return b.new_empty((m, b.shape[1]))


@_register_fake("bitmap_spmm")
def _bitmap_spmm_fake(group_offsets, bitmaps, values, b, m, bias=None):
    _check_bias_fake("bitmap_spmm", values, bias, m)
    return b.new_empty((m, b.shape[1]))


@_register_fake("sparse24_spmm")
def _sparse24_spmm_fake(values, meta, b, bias=None):
    _check_bias_fake("sparse24_spmm", values, bias, values.shape[0])
    return b.new_empty((values.shape[0], b.shape[1]))


# ---- backward ops: transposed SpMM and SDDMM at a format's slots ------------
# Transposed SpMM: out [k, n] = A^T @ b, b [m, n].
@_register_fake("csr_spmm_t")
def _csr_spmm_t_fake(row_ptr, col_idx, values, b, k):
    return b.new_empty((k, b.shape[1]))


@_register_fake("bsr_spmm_t")
def _bsr_spmm_t_fake(block_row_ptr, block_col_idx, blocks, b, k):
    return b.new_empty((k, b.shape[1]))


@_register_fake("bitmap_spmm_t")
def _bitmap_spmm_t_fake(group_offsets, bitmaps, values, b, k):
    return b.new_empty((k, b.shape[1]))


@_register_fake("sparse24_spmm_t")
def _sparse24_spmm_t_fake(values, meta, b, k):
    return b.new_empty((k, b.shape[1]))


# SDDMM: x [m, d], y [k, d] -> the shape of the format's values tensor.
@_register_fake("bsr_sddmm")
def _bsr_sddmm_fake(block_row_ptr, block_col_idx, x, y, r, c):
    return x.new_empty((block_col_idx.shape[0], r, c))


@_register_fake("bitmap_sddmm")
def _bitmap_sddmm_fake(group_offsets, bitmaps, x, y, num_values):
    return x.new_empty((num_values,))


@_register_fake("sparse24_sddmm")
def _sparse24_sddmm_fake(meta, x, y):
    return x.new_empty((meta.shape[0], meta.shape[1] * 8))


# ---- SDDMM / SpGEMM -----------------------------------------------------------
@_register_fake("csr_sddmm")
def _csr_sddmm_fake(row_ptr, col_idx, x, y):
    return x.new_empty((col_idx.shape[0],))


@_register_fake("csr_spgemm")
def _csr_spgemm_fake(a_row_ptr, a_col_idx, a_values, b_row_ptr, b_col_idx, b_values, n):
    nnz = torch.library.get_ctx().new_dynamic_size()
    index_dtype = torch.int64 if torch.int64 in (a_row_ptr.dtype, b_row_ptr.dtype) else torch.int32
    return (
        a_row_ptr.new_empty((a_row_ptr.shape[0],), dtype=index_dtype),
        a_row_ptr.new_empty((nnz,), dtype=index_dtype),
        a_values.new_empty((nnz,)),
    )


# ---- pack / unpack ------------------------------------------------------------
@_register_fake("dense_to_csr")
def _dense_to_csr_fake(dense):
    m, k = dense.shape
    nnz = torch.library.get_ctx().new_dynamic_size()
    index_dtype = pack_index_dtype(m, k)
    return (
        dense.new_empty((m + 1,), dtype=index_dtype),
        dense.new_empty((nnz,), dtype=index_dtype),
        dense.new_empty((nnz,)),
    )


@_register_fake("csr_to_dense")
def _csr_to_dense_fake(row_ptr, col_idx, values, m, k):
    return values.new_empty((m, k))


@_register_fake("dense_to_bsr")
def _dense_to_bsr_fake(dense, r, c):
    m, k = dense.shape
    nnzb = torch.library.get_ctx().new_dynamic_size()
    index_dtype = pack_index_dtype(m, k)
    return (
        dense.new_empty((_cdiv(m, r) + 1,), dtype=index_dtype),
        dense.new_empty((nnzb,), dtype=index_dtype),
        dense.new_empty((nnzb, r, c)),
    )


@_register_fake("bsr_to_dense")
def _bsr_to_dense_fake(block_row_ptr, block_col_idx, blocks, m, k):
    return blocks.new_empty((m, k))


@_register_fake("dense_to_bitmap")
def _dense_to_bitmap_fake(dense):
    m, k = dense.shape
    groups = _cdiv(m, BITMAP_GROUP) * _cdiv(k, BITMAP_GROUP)
    total = torch.library.get_ctx().new_dynamic_size()
    return (
        dense.new_empty((groups + 1,), dtype=torch.int64),
        dense.new_empty((groups * 64,), dtype=torch.int64),
        dense.new_empty((total,)),
    )


@_register_fake("bitmap_to_dense")
def _bitmap_to_dense_fake(group_offsets, bitmaps, values, m, k):
    return values.new_empty((m, k))


@_register_fake("dense_to_sparse24")
def _dense_to_sparse24_fake(dense):
    m, k = dense.shape
    kp = _cdiv(k, SPARSE24_K_ALIGN) * SPARSE24_K_ALIGN
    return dense.new_empty((m, kp // 2)), dense.new_empty((m, kp // 16), dtype=torch.int16)


@_register_fake("sparse24_to_dense")
def _sparse24_to_dense_fake(values, meta, k):
    return values.new_empty((values.shape[0], k))


# ---- autograd of the SpMM kernel ops --------------------------------------------
# y = A @ b with A's values tensor trainable (the index tensors are not):
#   grad_b      = A^T @ grad_y                       (<fmt>_spmm_t)
#   grad_values = (grad_y @ b^T) at A's stored slots (<fmt>_sddmm), the shape of
#                 the values tensor, 0 for slots outside the matrix.
# Both are kernel ops with fakes, so the backward traces (torch.compile). Only
# what a needed gradient uses is saved: values for grad_b, b for grad_values.
# ctx.needs_input_grad has one entry per op input (plus a trailing one that
# torch.library adds in setup_context, not indexed here).
def _save(ctx, index, values, b):
    needs_values, needs_b = ctx.needs_input_grad[len(index)], ctx.needs_input_grad[len(index) + 1]
    ctx.save_for_backward(*index, values if needs_b else None, b if needs_values else None)
    ctx.k = b.shape[0]


# grad_bias = grad_y summed over its columns (the bias is the trailing input of each SpMM op).
def _bias_grad(ctx, grad, index):
    return grad.sum(1) if len(ctx.needs_input_grad) > index and ctx.needs_input_grad[index] else None


def _csr_spmm_setup_context(ctx, inputs, output):
    row_ptr, col_idx, values, b = inputs[:4]
    _save(ctx, (row_ptr, col_idx), values, b)


def _csr_spmm_backward(ctx, grad):
    row_ptr, col_idx, values, b = ctx.saved_tensors
    grad_values = grad_b = None
    if ctx.needs_input_grad[2]:
        grad_values = torch.ops.sparse.csr_sddmm(row_ptr, col_idx, grad, b)
    if ctx.needs_input_grad[3]:
        grad_b = torch.ops.sparse.csr_spmm_t(row_ptr, col_idx, values, grad, ctx.k)
    return None, None, grad_values, grad_b, None, _bias_grad(ctx, grad, 5)


def _bsr_spmm_setup_context(ctx, inputs, output):
    block_row_ptr, block_col_idx, blocks, b = inputs[:4]
    _save(ctx, (block_row_ptr, block_col_idx), blocks, b)
    ctx.block_size = (blocks.shape[1], blocks.shape[2])


def _bsr_spmm_backward(ctx, grad):
    block_row_ptr, block_col_idx, blocks, b = ctx.saved_tensors
    grad_blocks = grad_b = None
    if ctx.needs_input_grad[2]:
        r, c = ctx.block_size
        grad_blocks = torch.ops.sparse.bsr_sddmm(block_row_ptr, block_col_idx, grad, b, r, c)
    if ctx.needs_input_grad[3]:
        grad_b = torch.ops.sparse.bsr_spmm_t(block_row_ptr, block_col_idx, blocks, grad, ctx.k)
    return None, None, grad_blocks, grad_b, None, _bias_grad(ctx, grad, 5)


def _bitmap_spmm_setup_context(ctx, inputs, output):
    group_offsets, bitmaps, values, b = inputs[:4]
    _save(ctx, (group_offsets, bitmaps), values, b)
    ctx.num_values = values.shape[0]


def _bitmap_spmm_backward(ctx, grad):
    group_offsets, bitmaps, values, b = ctx.saved_tensors
    grad_values = grad_b = None
    if ctx.needs_input_grad[2]:
        grad_values = torch.ops.sparse.bitmap_sddmm(group_offsets, bitmaps, grad, b, ctx.num_values)
    if ctx.needs_input_grad[3]:
        grad_b = torch.ops.sparse.bitmap_spmm_t(group_offsets, bitmaps, values, grad, ctx.k)
    return None, None, grad_values, grad_b, None, _bias_grad(ctx, grad, 5)


def _sparse24_spmm_setup_context(ctx, inputs, output):
    values, meta, b = inputs[:3]
    needs_values, needs_b = ctx.needs_input_grad[0], ctx.needs_input_grad[2]
    ctx.save_for_backward(meta, values if needs_b else None, b if needs_values else None)
    ctx.k = b.shape[0]


def _sparse24_spmm_backward(ctx, grad):
    meta, values, b = ctx.saved_tensors
    grad_values = grad_b = None
    if ctx.needs_input_grad[0]:
        grad_values = torch.ops.sparse.sparse24_sddmm(meta, grad, b)
    if ctx.needs_input_grad[2]:
        grad_b = torch.ops.sparse.sparse24_spmm_t(values, meta, grad, ctx.k)
    return grad_values, None, grad_b, _bias_grad(ctx, grad, 3)


# sparse.spmm(a, b), the model-facing op: differentiable in the dense operand b
# (grad_b = A^T @ grad_y by the transposed SpMM op of a's format). Its sparse
# operand (a format tensor or a torch CSR/BSR tensor) has no gradient here: the
# format tensors dispatch below autograd, so trainable values go through the
# kernel ops (sk.nn.SparseLinear); asking for one raises instead of returning
# a wrong (zero) gradient.
def _spmm_setup_context(ctx, inputs, output):
    a, b = inputs
    ctx.a_needs_grad = ctx.needs_input_grad[0]
    ctx.save_for_backward(a if ctx.needs_input_grad[1] else None)


def _spmm_backward(ctx, grad):
    if ctx.a_needs_grad:
        raise NotImplementedError(
            "sparse::spmm: no gradient for the sparse operand 'a'; train the values through "
            "sparsekernels.nn.SparseLinear or the kernel ops (torch.ops.sparse.csr_spmm, ...), which are "
            "differentiable in their values tensor"
        )
    (a,) = ctx.saved_tensors
    grad_b = None
    if a is not None:
        from sparsekernels.formats.base import SparseFormatTensor

        grad = grad.contiguous()
        if isinstance(a, SparseFormatTensor):
            grad_b = a._t_matmul_dense(grad)
        elif a.layout == torch.sparse_csr:
            grad_b = torch.ops.sparse.csr_spmm_t(a.crow_indices(), a.col_indices(), a.values(), grad, a.shape[1])
        elif a.layout == torch.sparse_bsr:
            grad_b = torch.ops.sparse.bsr_spmm_t(a.crow_indices(), a.col_indices(), a.values(), grad, a.shape[1])
        else:
            raise NotImplementedError(f"sparse::spmm: no gradient for 'b' with a sparse operand of layout {a.layout}")
    return None, grad_b


# csr_sddmm: out[p] = dot(x[row(p)], y[col(p)]). With G the CSR matrix of A's pattern holding grad as values:
#   grad_x = G @ y (csr_spmm), grad_y = G^T @ x (csr_spmm_t).
def _csr_sddmm_setup_context(ctx, inputs, output):
    row_ptr, col_idx, x, y = inputs
    ctx.save_for_backward(row_ptr, col_idx, y if ctx.needs_input_grad[2] else None,
                          x if ctx.needs_input_grad[3] else None)
    ctx.m, ctx.n = x.shape[0], y.shape[0]


def _csr_sddmm_backward(ctx, grad):
    row_ptr, col_idx, y, x = ctx.saved_tensors
    grad = grad.contiguous()
    grad_x = grad_y = None
    if ctx.needs_input_grad[2]:
        grad_x = torch.ops.sparse.csr_spmm(row_ptr, col_idx, grad, y, ctx.m)
    if ctx.needs_input_grad[3]:
        grad_y = torch.ops.sparse.csr_spmm_t(row_ptr, col_idx, grad, x, ctx.n)
    return None, None, grad_x, grad_y


# The other backward ops are linear in each input too, so they get formulas (second derivatives through the
# SpMM ops: a gradient penalty, a Hessian-vector product). With A the matrix of `values` at the format's slots:
#   out = <fmt>_spmm_t(A, b, k) = A^T @ b:  grad_b = A @ grad (<fmt>_spmm),
#                                         grad_values = (b @ grad^T) at A's slots (<fmt>_sddmm(b, grad));
#   out = <fmt>_sddmm(x, y) = (x @ y^T) at the slots, G the matrix of grad at those slots:
#                                         grad_x = G @ y (<fmt>_spmm), grad_y = G^T @ x (<fmt>_spmm_t).
# Padding slots (outside the matrix) are never read by the SpMM ops, and the SDDMM ops write 0 there.
# csr/bsr/bitmap: inputs (index0, index1, values | x, b | y, extra...); the extra arguments take no gradient.
def _spmm_t_setup_context(ctx, inputs, output):
    row_ptr, col_idx, values, b, _k = inputs
    ctx.save_for_backward(row_ptr, col_idx, values if ctx.needs_input_grad[3] else None,
                          b if ctx.needs_input_grad[2] else None)
    ctx.m, ctx.values_shape = b.shape[0], tuple(values.shape)


def _make_spmm_t_backward(spmm, sddmm):
    def backward(ctx, grad):
        index0, index1, values, b = ctx.saved_tensors
        grad = grad.contiguous()
        grad_values = grad_b = None
        if ctx.needs_input_grad[2]:
            grad_values = sddmm(index0, index1, b, grad, ctx.values_shape)
        if ctx.needs_input_grad[3]:
            grad_b = spmm(index0, index1, values, grad, ctx.m)
        return None, None, grad_values, grad_b, None

    return backward


def _sddmm_setup_context(ctx, inputs, output):
    index0, index1, x, y = inputs[:4]
    ctx.save_for_backward(index0, index1, y if ctx.needs_input_grad[2] else None,
                          x if ctx.needs_input_grad[3] else None)
    ctx.m, ctx.k, ctx.n_extra = x.shape[0], y.shape[0], len(inputs) - 4


def _make_sddmm_backward(spmm, spmm_t):
    def backward(ctx, grad):
        index0, index1, y, x = ctx.saved_tensors
        grad = grad.contiguous()
        grad_x = grad_y = None
        if ctx.needs_input_grad[2]:
            grad_x = spmm(index0, index1, grad, y, ctx.m)
        if ctx.needs_input_grad[3]:
            grad_y = spmm_t(index0, index1, grad, x, ctx.k)
        return (None, None, grad_x, grad_y) + (None,) * ctx.n_extra

    return backward


_SDDMM_AT_SLOTS = {  # (index0, index1, x, y, values shape) -> values-shaped (x @ y^T) at the slots
    "csr": lambda i0, i1, x, y, shape: torch.ops.sparse.csr_sddmm(i0, i1, x, y),
    "bsr": lambda i0, i1, x, y, shape: torch.ops.sparse.bsr_sddmm(i0, i1, x, y, shape[1], shape[2]),
    "bitmap": lambda i0, i1, x, y, shape: torch.ops.sparse.bitmap_sddmm(i0, i1, x, y, shape[0]),
}
for _fmt, _sddmm in _SDDMM_AT_SLOTS.items():
    _spmm, _spmm_t = getattr(torch.ops.sparse, f"{_fmt}_spmm"), getattr(torch.ops.sparse, f"{_fmt}_spmm_t")
    torch.library.register_autograd(f"sparse::{_fmt}_spmm_t", _make_spmm_t_backward(_spmm, _sddmm),
                                    setup_context=_spmm_t_setup_context)
    if _fmt != "csr":  # csr_sddmm's formula is above
        torch.library.register_autograd(f"sparse::{_fmt}_sddmm", _make_sddmm_backward(_spmm, _spmm_t),
                                        setup_context=_sddmm_setup_context)


# 2:4: sparse24_spmm_t(values, meta, b, k), sparse24_sddmm(meta, x, y)
def _sparse24_spmm_t_setup_context(ctx, inputs, output):
    values, meta, b, _k = inputs
    ctx.save_for_backward(meta, values if ctx.needs_input_grad[2] else None, b if ctx.needs_input_grad[0] else None)


def _sparse24_spmm_t_backward(ctx, grad):
    meta, values, b = ctx.saved_tensors
    grad = grad.contiguous()
    grad_values = grad_b = None
    if ctx.needs_input_grad[0]:
        grad_values = torch.ops.sparse.sparse24_sddmm(meta, b, grad)
    if ctx.needs_input_grad[2]:
        grad_b = torch.ops.sparse.sparse24_spmm(values, meta, grad)
    return grad_values, None, grad_b, None


def _sparse24_sddmm_setup_context(ctx, inputs, output):
    meta, x, y = inputs
    ctx.save_for_backward(meta, y if ctx.needs_input_grad[1] else None, x if ctx.needs_input_grad[2] else None)
    ctx.k = y.shape[0]


def _sparse24_sddmm_backward(ctx, grad):
    meta, y, x = ctx.saved_tensors
    grad = grad.contiguous()
    grad_x = grad_y = None
    if ctx.needs_input_grad[1]:
        grad_x = torch.ops.sparse.sparse24_spmm(grad, meta, y)
    if ctx.needs_input_grad[2]:
        grad_y = torch.ops.sparse.sparse24_spmm_t(grad, meta, x, ctx.k)
    return None, grad_x, grad_y


torch.library.register_autograd("sparse::sparse24_spmm_t", _sparse24_spmm_t_backward,
                                setup_context=_sparse24_spmm_t_setup_context)
torch.library.register_autograd("sparse::sparse24_sddmm", _sparse24_sddmm_backward,
                                setup_context=_sparse24_sddmm_setup_context)


# csr_to_dense: out[row(p), col(p)] += values[p], so grad_values[p] = grad[row(p), col(p)] (a gather).
def _csr_to_dense_setup_context(ctx, inputs, output):
    row_ptr, col_idx, _values, _m, _k = inputs
    ctx.save_for_backward(row_ptr, col_idx)


def _csr_to_dense_backward(ctx, grad):
    row_ptr, col_idx = ctx.saved_tensors
    grad_values = None
    if ctx.needs_input_grad[2]:
        counts = (row_ptr[1:] - row_ptr[:-1]).long()
        rows = torch.repeat_interleave(torch.arange(counts.shape[0], device=grad.device), counts,
                                       output_size=col_idx.shape[0])
        grad_values = grad[rows, col_idx.long()]
    return None, None, grad_values, None, None


torch.library.register_autograd("sparse::csr_to_dense", _csr_to_dense_backward,
                                setup_context=_csr_to_dense_setup_context)


# bsr_to_dense: grad_blocks[b] = the r x c block of grad at block b's place (0 in the padding of edge blocks).
def _bsr_to_dense_setup_context(ctx, inputs, output):
    block_row_ptr, block_col_idx, blocks, _m, _k = inputs
    ctx.save_for_backward(block_row_ptr, block_col_idx)
    ctx.block = tuple(blocks.shape[1:])


def _bsr_to_dense_backward(ctx, grad):
    block_row_ptr, block_col_idx = ctx.saved_tensors
    grad_blocks = None
    if ctx.needs_input_grad[2]:
        (r, c), (m, k) = ctx.block, grad.shape
        gm, gk = block_row_ptr.shape[0] - 1, (k + c - 1) // c
        tiles = torch.nn.functional.pad(grad, (0, gk * c - k, 0, gm * r - m))
        tiles = tiles.reshape(gm, r, gk, c).permute(0, 2, 1, 3)  # [gm, gk, r, c]
        counts = (block_row_ptr[1:] - block_row_ptr[:-1]).long()
        rows = torch.repeat_interleave(torch.arange(gm, device=grad.device), counts,
                                       output_size=block_col_idx.shape[0])
        grad_blocks = tiles[rows, block_col_idx.long()].contiguous()
    return None, None, grad_blocks, None, None


# sparse24_to_dense: grad_values[i, 2g + s] = grad[i, 4g + position s of group g] (0 at positions >= k). Each int16
# meta word holds 4 groups, a nibble each: bits 0-1 the first position, bits 2-3 the second (docs/formats.md).
def _sparse24_to_dense_setup_context(ctx, inputs, output):
    _values, meta, _k = inputs
    ctx.save_for_backward(meta)


def _sparse24_to_dense_backward(ctx, grad):
    (meta,) = ctx.saved_tensors
    grad_values = None
    if ctx.needs_input_grad[0]:
        m, k = grad.shape
        kp = meta.shape[1] * 16
        words = meta.to(torch.int32) & 0xFFFF
        shifts = torch.arange(0, 16, 4, device=meta.device, dtype=torch.int32)
        nibbles = (words.unsqueeze(-1) >> shifts) & 0xF  # [m, kp / 16, 4 groups]
        pos = torch.stack((nibbles & 3, nibbles >> 2), dim=-1).reshape(m, kp // 4, 2)
        cols = pos + 4 * torch.arange(kp // 4, device=meta.device, dtype=torch.int32).reshape(1, -1, 1)
        padded = torch.nn.functional.pad(grad, (0, kp - k))  # positions >= k read the zero padding
        grad_values = padded.gather(1, cols.reshape(m, kp // 2).long())
    return grad_values, None, None


torch.library.register_autograd("sparse::bsr_to_dense", _bsr_to_dense_backward,
                                setup_context=_bsr_to_dense_setup_context)
torch.library.register_autograd("sparse::sparse24_to_dense", _sparse24_to_dense_backward,
                                setup_context=_sparse24_to_dense_setup_context)


def _no_gradient(op):
    def backward(ctx, *grads):
        raise NotImplementedError(f"sparse::{op} has no gradient; for a trainable sparse weight use "
                                  "sparsekernels.nn.SparseLinear (or the SpMM kernel ops), which are differentiable "
                                  "in their values")

    return backward


# Without a formula torch only warns and leaves .grad None; these raise instead.
for _op in ("bitmap_to_dense", "dense_to_csr", "dense_to_bsr", "dense_to_bitmap", "dense_to_sparse24"):
    torch.library.register_autograd(f"sparse::{_op}", _no_gradient(_op))


def _csr_spgemm_backward(ctx, *grads):
    raise NotImplementedError("sparse::csr_spgemm (sparsekernels.spgemm) has no gradient; multiply dense tensors "
                              "(a.to_dense() @ b.to_dense()) where one is needed")


torch.library.register_autograd("sparse::spmm", _spmm_backward, setup_context=_spmm_setup_context)
torch.library.register_autograd(
    "sparse::csr_sddmm", _csr_sddmm_backward, setup_context=_csr_sddmm_setup_context)
torch.library.register_autograd("sparse::csr_spgemm", _csr_spgemm_backward)
torch.library.register_autograd(
    "sparse::csr_spmm", _csr_spmm_backward, setup_context=_csr_spmm_setup_context)
torch.library.register_autograd(
    "sparse::bsr_spmm", _bsr_spmm_backward, setup_context=_bsr_spmm_setup_context)
torch.library.register_autograd(
    "sparse::bitmap_spmm", _bitmap_spmm_backward, setup_context=_bitmap_spmm_setup_context)
torch.library.register_autograd(
    "sparse::sparse24_spmm", _sparse24_spmm_backward, setup_context=_sparse24_spmm_setup_context)
