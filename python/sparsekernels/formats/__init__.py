"""Format tensors and the functions that build them (sparsekernels.to_csr, ...).

Every ``to_*`` accepts a dense 2-D tensor (its non-zeros are kept), a torch sparse
tensor, a scipy.sparse matrix or another format tensor. CSR from torch CSR or scipy
CSR, and BSR from torch BSR, share the arrays (zero-copy) when the dtypes allow.
Values must be float32, float16, bfloat16 or float64 (float64: CPU only, for verification such as
gradcheck; its kernels are simple double loops, not tuned): pass ``dtype=`` to convert others.
Packing is not differentiable: the result is detached from the input (``to_csr(layer.weight)`` carries no
gradient back to ``layer.weight``); train sparse values through ``sparsekernels.nn.SparseLinear``.
"""

from __future__ import annotations

import numpy as np
import torch

from sparsekernels.formats.base import SparseFormatTensor, check_blocksize
from sparsekernels.formats.bitmap import BitmapTensor
from sparsekernels.formats.bsr import BSRTensor
from sparsekernels.formats.csr import CSRTensor
from sparsekernels.formats.sparse24 import Sparse24Tensor

__all__ = [
    "SparseFormatTensor", "CSRTensor", "BSRTensor", "BitmapTensor", "Sparse24Tensor",
    "to_csr", "to_bsr", "to_bitmap", "to_sparse24",
]

# torch.load defaults to weights_only=True (torch >= 2.6): allow the format tensors in such a load. Unpickling one
# only rebuilds the wrapper (torch's _rebuild_from_type_v2) and sets its attributes (tensors, ints, tuples, bools).
torch.serialization.add_safe_globals([CSRTensor, BSRTensor, BitmapTensor, Sparse24Tensor])

VALUE_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)


def _is_scipy_sparse(x) -> bool:
    try:
        import scipy.sparse
    except ImportError:
        return False
    return scipy.sparse.issparse(x)


def _values_dtype(fn: str, have: torch.dtype, dtype: torch.dtype | None) -> torch.dtype:
    target = have if dtype is None else dtype
    if target not in VALUE_DTYPES:
        hint = "" if dtype is not None else "; pass dtype=torch.float32 (or float16/bfloat16/float64) to convert"
        raise TypeError(f"{fn}: values must be float32, float16, bfloat16 or float64 (CPU), got {target}{hint}")
    return target


def _dense_2d(fn: str, x, dtype) -> torch.Tensor:
    """x as a dense 2-D tensor of a supported dtype."""
    if isinstance(x, SparseFormatTensor):
        x = x.to_dense()
    elif _is_scipy_sparse(x):
        x = torch.from_numpy(np.asarray(x.toarray()))
    elif isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{fn}: expected a torch.Tensor, scipy.sparse matrix or numpy array, got {type(x).__name__}")
    if x.layout != torch.strided:
        x = x.to_dense()
    if x.dim() != 2:
        raise ValueError(f"{fn}: expected a 2-D matrix, got shape {tuple(x.shape)}")
    x = x.detach().to(_values_dtype(fn, x.dtype, dtype))
    if x.is_cuda:
        raise NotImplementedError(
            f"{fn}: packing on CUDA is not implemented yet; pack on the CPU and move the result, "
            f"e.g. sparsekernels.{fn}(w.cpu()).to('cuda')"
        )
    return x


def _from_arrays(cls, fn, mk, arrays, dtype, meta=()):
    *index, values = (a.contiguous() for a in arrays)  # the ops need contiguous arrays (a copy only if strided)
    values = values.detach()
    target = _values_dtype(fn, values.dtype, dtype)
    if values.dtype != target:
        values = values.to(target)
    t = cls(tuple(int(s) for s in mk), (*index, values), meta=meta)
    t._validate()
    return t


def to_csr(x, *, dtype: torch.dtype | None = None) -> CSRTensor:
    """CSR of a dense matrix (keeps its non-zeros), a torch CSR tensor or scipy sparse matrix (zero-copy), or
    another format tensor."""
    if isinstance(x, CSRTensor):
        return x if dtype in (None, x.dtype) else x.to(dtype)
    if isinstance(x, torch.Tensor) and x.layout == torch.sparse_csr:
        if x.dim() != 2:
            raise ValueError(f"to_csr: expected a 2-D matrix, got shape {tuple(x.shape)}")
        return _from_arrays(CSRTensor, "to_csr", x.shape, (x.crow_indices(), x.col_indices(), x.values()), dtype)
    if _is_scipy_sparse(x):
        s = x.tocsr()
        arrays = tuple(torch.from_numpy(np.asarray(a)) for a in (s.indptr, s.indices, s.data))
        if arrays[0].dtype != arrays[1].dtype:
            arrays = (arrays[0].long(), arrays[1].long(), arrays[2])
        return _from_arrays(CSRTensor, "to_csr", s.shape, arrays, dtype)
    dense = _dense_2d("to_csr", x, dtype)
    return CSRTensor(tuple(dense.shape), torch.ops.sparse.dense_to_csr(dense))


def to_bsr(x, blocksize: tuple[int, int] | None = None, *, dtype: torch.dtype | None = None) -> BSRTensor:
    """BSR with r x c blocks (default: the input's own for torch/scipy BSR, else (32, 32)). Blocks with at least
    one non-zero are kept; shapes that are not multiples of the block size are padded inside."""
    if blocksize is not None:
        blocksize = check_blocksize("to_bsr", blocksize)
    if isinstance(x, BSRTensor) and blocksize in (None, x.blocksize):
        return x if dtype in (None, x.dtype) else x.to(dtype)
    if isinstance(x, torch.Tensor) and x.layout == torch.sparse_bsr and blocksize in (None, tuple(x.values().shape[1:])):
        return _from_arrays(BSRTensor, "to_bsr", x.shape, (x.crow_indices(), x.col_indices(), x.values()), dtype)
    if _is_scipy_sparse(x) and x.format == "bsr" and blocksize in (None, tuple(x.blocksize)):
        arrays = tuple(torch.from_numpy(np.asarray(a)) for a in (x.indptr, x.indices, x.data))
        return _from_arrays(BSRTensor, "to_bsr", x.shape, arrays, dtype)
    r, c = (32, 32) if blocksize is None else blocksize
    dense = _dense_2d("to_bsr", x, dtype)
    return BSRTensor(tuple(dense.shape), torch.ops.sparse.dense_to_bsr(dense, r, c))


def to_bitmap(x, *, dtype: torch.dtype | None = None) -> BitmapTensor:
    """Bitmap format of a matrix (its non-zeros are kept)."""
    if isinstance(x, BitmapTensor):
        return x if dtype in (None, x.dtype) else x.to(dtype)
    dense = _dense_2d("to_bitmap", x, dtype)
    return BitmapTensor(tuple(dense.shape), torch.ops.sparse.dense_to_bitmap(dense))


def to_sparse24(x, *, dtype: torch.dtype | None = None) -> Sparse24Tensor:
    """2:4 format of a matrix with at most 2 non-zeros in every 4 consecutive columns (ValueError otherwise;
    sparsekernels.prune_n_m(w, 2, 4) makes any matrix so)."""
    if isinstance(x, Sparse24Tensor):
        return x if dtype in (None, x.dtype) else x.to(dtype)
    dense = _dense_2d("to_sparse24", x, dtype)
    values, meta = torch.ops.sparse.dense_to_sparse24(dense)
    return Sparse24Tensor(tuple(dense.shape), (meta, values))
