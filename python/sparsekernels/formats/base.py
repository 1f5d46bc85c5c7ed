"""The common machinery of the format tensors (CSR, BSR, bitmap, 2:4).

A format tensor is a traceable wrapper subclass of torch.Tensor (the pattern of
torch's SparseSemiStructuredTensor): it has the logical shape, dtype and device of
the sparse matrix and holds the format's arrays as plain inner tensors. Its
``__torch_dispatch__`` sends ``sparse.spmm``, ``aten.mm``, ``aten.addmm``,
``aten.linear`` and ``aten.t`` to the kernel ops, so a format tensor can stand
in for an ``nn.Linear`` weight and ``torch.compile(fullgraph=True)`` traces it
(``__tensor_flatten__`` / ``__tensor_unflatten__``).

A transposed format tensor (``w.t()``) keeps the arrays of ``w`` and a flag;
``x @ w.t()`` runs as ``(w @ x.T).T``; ``w.t() @ b`` and ``x @ w`` run the
transposed SpMM ops (``<fmt>_spmm_t``, CPU), which is also what the gradient of
the dense operand needs (``sparse.spmm``'s autograd in ops.py, and aten.mm's).
"""

from __future__ import annotations

import hashlib
import operator
from typing import Any, ClassVar

import torch
from torch._subclasses.fake_tensor import is_fake

aten = torch.ops.aten


class SparseFormatTensor(torch.Tensor):
    """Base of the format tensors. Subclasses set FORMAT and INNER and implement
    ``_spmm(b)`` (stored matrix @ dense b), ``_spmm_t(b)`` (stored matrix transposed @ dense b, the
    transposed SpMM ops; CPU) and ``_to_dense_stored()``."""

    FORMAT: ClassVar[str] = ""
    INNER: ClassVar[tuple[str, ...]] = ()  # names of the inner tensors; the last holds the values
    __torch_function__ = torch._C._disabled_torch_function_impl

    # stored (not transposed) shape, transposed flag, format-specific metadata
    _mk: tuple[int, int]
    transposed: bool
    _meta: tuple

    @staticmethod
    def __new__(cls, mk, tensors, transposed=False, meta=(), requires_grad=False):
        values = tensors[-1]
        mk = tuple(mk)
        if len(mk) != 2 or not all(isinstance(v, (int, torch.SymInt)) and not isinstance(v, bool) for v in mk):
            raise TypeError(f"{cls.__name__}: the shape must be two ints (m, k), got {mk}")
        if any(isinstance(v, int) and v < 0 for v in mk):
            raise ValueError(f"{cls.__name__}: the shape must not be negative, got {mk}")
        m, k = mk
        shape = (k, m) if transposed else (m, k)
        self = torch.Tensor._make_wrapper_subclass(
            cls, shape, dtype=values.dtype, device=values.device, requires_grad=requires_grad
        )
        for name, t in zip(cls.INNER, tensors):
            setattr(self, name, t)
        self._mk = (m, k)
        self.transposed = transposed
        self._meta = tuple(meta)
        return self

    # ---- traceability -----------------------------------------------------------
    def __tensor_flatten__(self):
        return list(self.INNER), (self._mk, self.transposed, self._meta)

    @classmethod
    def __tensor_unflatten__(cls, inner_tensors, ctx, outer_size, outer_stride):
        mk, transposed, meta = ctx
        return cls(mk, tuple(inner_tensors[n] for n in cls.INNER), transposed, meta)

    def _stable_hash_for_caching(self) -> str:
        """A key for torch.compile's AOT autograd cache: the same in every process for format tensors of the same
        structure (class, shapes, dtypes, strides, devices, transposed flag and metadata), never the values."""
        inner = tuple(
            (name, str(t.dtype), tuple(str(d) for d in t.shape), tuple(str(d) for d in t.stride()), t.device.type)
            for name, t in ((n, getattr(self, n)) for n in self.INNER)
        )
        key = (
            type(self).__module__,
            type(self).__qualname__,
            tuple(str(d) for d in self._mk),  # str: symbolic sizes are named, never specialized
            bool(self.transposed),
            repr(self._meta),
            str(self.dtype),
            self.device.type,
            bool(self.requires_grad),
            inner,
        )
        return hashlib.blake2b(repr(key).encode(), digest_size=16).hexdigest()

    # ---- construction helpers -----------------------------------------------------
    def _inner(self) -> tuple[torch.Tensor, ...]:
        return tuple(getattr(self, n) for n in self.INNER)

    def _with(self, tensors, transposed=None, requires_grad=False):
        return type(self)(
            self._mk, tuple(tensors), self.transposed if transposed is None else transposed, self._meta,
            requires_grad=requires_grad,
        )

    def _validate(self) -> None:
        """Runs the ops' format validation (a product with a 0-column operand)."""
        self._spmm(self._values_tensor().new_empty((self._mk[1], 0)))

    def _check_shape(self) -> None:
        """O(1) check that the arrays' sizes agree with the stored shape where no op checks it (2:4: the rows)."""

    def _values_tensor(self) -> torch.Tensor:
        return getattr(self, self.INNER[-1])

    # ---- public API ---------------------------------------------------------------
    @property
    def nnz(self) -> int:
        """Number of stored values (explicit zeros that the format stores included)."""
        raise NotImplementedError

    @property
    def sparsity(self) -> float:
        m, k = self._mk
        return 1.0 - self.nnz / (m * k) if m * k else 0.0

    @property
    def format_nbytes(self) -> int:
        """Bytes the format occupies (all its arrays): what a kernel has to read."""
        return sum(t.numel() * t.element_size() for t in self._inner())

    def to_dense(self, dtype=None, *, masked_grad=None) -> torch.Tensor:  # noqa: ARG002 (torch's signature)
        dense = self._to_dense_stored()
        if dtype is not None:
            dense = dense.to(dtype)
        return dense.t() if self.transposed else dense

    def __repr__(self, *, tensor_contents=None) -> str:  # noqa: ARG002
        m, k = self.shape
        extra = "".join(f", {k_}={v}" for k_, v in self._repr_meta().items())
        if is_fake(self._values_tensor()) or self.device.type == "meta":  # tracing / meta: no data to count
            stats = ""
        else:
            stats = (f", nnz={self.nnz}, sparsity={self.sparsity:.3f}, bytes={self.format_nbytes} "
                     f"(dense {m * k * self.element_size()})")
        return (
            f"{type(self).__name__}(shape=({m}, {k}){extra}{stats}, dtype={self.dtype}, device={self.device}"
            f"{', transposed' if self.transposed else ''})"
        )

    def _repr_meta(self) -> dict:
        return {}

    # ---- the @ operator -----------------------------------------------------------
    # torch.Tensor.__matmul__ / __rmatmul__ turn any TypeError raised inside into NotImplemented, so Python
    # reported a dtype mismatch (or any TypeError of the ops) as a bare "unsupported operand type(s) for @".
    # These call torch.matmul directly, so the op's own message (naming the argument) reaches the user.
    def __matmul__(self, other):
        if not isinstance(other, torch.Tensor):
            return NotImplemented
        if other.dim() > 2 and not isinstance(other, SparseFormatTensor):
            # a batched dense operand [..., k, n]: one product with the batch folded into the columns (torch.matmul
            # itself would expand the sparse operand to the batch, which a format tensor cannot be)
            if other.shape[-2] != self.shape[1]:
                raise ValueError(f"{self.FORMAT} SpMM: shapes {tuple(self.shape)} and {tuple(other.shape)} cannot be "
                                 "multiplied")
            folded = other.movedim(-2, 0).reshape(other.shape[-2], -1)
            out = torch.matmul(self, folded)
            return out.reshape(self.shape[0], *other.shape[:-2], other.shape[-1]).movedim(0, -2)
        return torch.matmul(self, other)

    def __rmatmul__(self, other):
        if not isinstance(other, torch.Tensor):
            return NotImplemented
        return torch.matmul(other, self)

    # ---- SpMM entry --------------------------------------------------------------
    def _matmul_dense(self, b: torch.Tensor) -> torch.Tensor:
        """self @ b for a dense 2-D b."""
        if not isinstance(b, torch.Tensor):
            raise TypeError(f"{self.FORMAT} SpMM: the dense operand must be a torch.Tensor, got {type(b).__name__}")
        if isinstance(b, SparseFormatTensor):
            raise TypeError(
                f"sparse @ sparse with {type(self).__name__} and {type(b).__name__} is not an SpMM; "
                "use sparsekernels.spgemm for CSR @ CSR"
            )
        if b.dim() != 2:
            raise ValueError(f"{self.FORMAT} SpMM: the dense operand must be 2-D, got shape {tuple(b.shape)}")
        if b.shape[0] != self.shape[1]:
            raise ValueError(
                f"{self.FORMAT} SpMM: shapes {tuple(self.shape)} and {tuple(b.shape)} cannot be multiplied"
            )
        if self.transposed:  # A.T @ b: the transposed SpMM of the stored A
            return self._spmm_t(b)
        return self._spmm(b)

    def _dense_matmul(self, x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        """x @ self (+ bias) for a dense 2-D x: (W @ x.T).T for a transposed format tensor W.T (the nn.Linear case;
        a 1-D bias of W's rows is added inside the kernel, rounded once), (A.T @ x.T).T by the transposed SpMM for a
        stored A (the gradient of the input of x @ A.T; a bias is added afterwards)."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{self.FORMAT} SpMM: the dense operand must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() != 2 or x.shape[1] != self.shape[0]:
            raise ValueError(
                f"{self.FORMAT} SpMM: shapes {tuple(x.shape)} and {tuple(self.shape)} cannot be multiplied"
            )
        if not self.transposed:
            out = self._spmm_t(x.t()).t().contiguous()
            return out if bias is None else out + bias
        return self._spmm(x.t(), bias).t().contiguous()

    def _spmm_t(self, b: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _spmm(self, b: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _t_matmul_dense(self, b: torch.Tensor) -> torch.Tensor:
        """self.T @ b for a dense 2-D b (the gradient of b in self @ b)."""
        return self._spmm(b) if self.transposed else self._spmm_t(b)

    def _to_dense_stored(self) -> torch.Tensor:
        raise NotImplementedError

    # ---- dispatch -----------------------------------------------------------------
    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        handler = _HANDLERS.get(func)
        if handler is None:
            raise NotImplementedError(
                f"sparsekernels {cls.__name__} does not support {func}; "
                "supported: sparse.spmm, mm, mv, addmm, linear, t, .T, detach, clone, copy_, to/_to_copy. "
                "Convert with .to_dense() for anything else"
            )
        return handler(func, args, kwargs)


def check_blocksize(fn: str, blocksize) -> tuple[int, int]:
    """blocksize as a tuple of two positive ints, or a ValueError / TypeError naming it."""
    try:
        items = tuple(blocksize)
    except TypeError:
        raise TypeError(f"{fn}: blocksize must be two positive ints (r, c), got {blocksize!r}") from None
    try:  # ints, numpy / torch integer scalars; not bools, floats or strings
        if len(items) != 2 or any(isinstance(v, bool) for v in items):
            raise TypeError
        items = tuple(operator.index(v) for v in items)
    except TypeError:
        items = None
    if items is None or not all(v >= 1 for v in items):
        raise ValueError(f"{fn}: blocksize must be two positive ints (r, c), got {blocksize!r}")
    return items


def _is_fmt(x: Any) -> bool:
    return isinstance(x, SparseFormatTensor)


def _mm(a, b):
    if _is_fmt(a) and not _is_fmt(b):
        return a._matmul_dense(b)
    if _is_fmt(b) and not _is_fmt(a):
        return b._dense_matmul(a)
    raise TypeError(
        f"matmul of {type(a).__name__} and {type(b).__name__} is not supported; use sparsekernels.spgemm for "
        "CSR @ CSR"
    )


def _handle_spmm(func, args, kwargs):
    a, b = args
    if not _is_fmt(a):
        raise TypeError(
            "sparse::spmm: 'a' must be the sparse operand (a sparsekernels format tensor or a torch CSR/BSR tensor), "
            f"got a dense tensor and a {type(b).__name__}"
        )
    return a._matmul_dense(b)


def _handle_mm(func, args, kwargs):
    return _mm(args[0], args[1])


def _check_bias(fn: str, name: str, bias, out: torch.Tensor) -> None:
    # torch raises for a dense product with an input / bias of another dtype; out + bias would promote silently
    if isinstance(bias, torch.Tensor) and bias.dtype != out.dtype:
        raise TypeError(f"{fn}: '{name}' has dtype {bias.dtype} but the product is {out.dtype}; "
                        f"convert one of them to the same dtype")


def _fusable_bias(bias, x, w) -> bool:
    """Whether x @ w + bias can add the bias inside the SpMM kernel (rounded once, as torch's own addmm / linear
    rounds): w a transposed format tensor (an nn.Linear weight W.T, bias one entry per row of W), bias 1-D of W's
    row count in the values' dtype, x dense. Anything else (a 2-D or broadcast bias, another dtype, which raises
    below) takes out + bias."""
    return (_is_fmt(w) and not _is_fmt(x) and w.transposed and isinstance(bias, torch.Tensor)
            and not _is_fmt(bias) and bias.dim() == 1 and bias.shape[0] == w.shape[1] and bias.dtype == w.dtype
            and bias.device == w.device and isinstance(x, torch.Tensor) and x.dim() == 2)


def _handle_addmm(func, args, kwargs):
    bias, a, b = args[:3]
    beta = kwargs.get("beta", args[3] if len(args) > 3 else 1)
    alpha = kwargs.get("alpha", args[4] if len(args) > 4 else 1)
    if alpha == 1 and beta == 1 and _fusable_bias(bias, a, b):
        return b._dense_matmul(a, bias)
    out = _mm(a, b)
    _check_bias("addmm", "input' (linear's 'bias", bias, out)
    if alpha != 1:
        out = out * alpha
    if beta == 0:  # torch.addmm ignores `input` when beta == 0 (NaN / inf in it are not propagated)
        return out.expand(torch.broadcast_shapes(bias.shape, out.shape)).contiguous()
    return out + (bias if beta == 1 else bias * beta)


def _handle_linear(func, args, kwargs):
    x, w = args[:2]
    bias = args[2] if len(args) > 2 else kwargs.get("bias")
    if not _is_fmt(w) or _is_fmt(x):
        raise TypeError("linear: only a sparsekernels format tensor as the weight is supported")
    x2 = x.reshape(-1, x.shape[-1])
    wt = _handle_t(func, (w,), {}) if not w.transposed else None
    if wt is not None and _fusable_bias(bias, x2, wt):
        return wt._dense_matmul(x2, bias).reshape(*x.shape[:-1], w.shape[0])
    out = wt._dense_matmul(x2) if wt is not None else w._matmul_dense(x2.t()).t()
    out = out.reshape(*x.shape[:-1], out.shape[-1])
    _check_bias("linear", "bias", bias, out)
    return out if bias is None else out + bias


def _handle_t(func, args, kwargs):
    a = args[0]
    return a._with(a._inner(), transposed=not a.transposed)


def _handle_transpose(func, args, kwargs):
    a, d0, d1 = args
    if {d0 % 2, d1 % 2} == {0, 1}:
        return _handle_t(func, (a,), {})
    return a  # transpose(i, i) is the identity


def _handle_permute(func, args, kwargs):
    a, dims = args[0], [d % 2 for d in args[1]]
    if dims == [1, 0]:  # a.T
        return _handle_t(func, (a,), {})
    if dims == [0, 1]:
        return a
    raise ValueError(f"{type(a).__name__}.permute: a 2-D tensor takes two dims, got {list(args[1])}")


def _handle_mv(func, args, kwargs):
    a, v = args[:2]
    if v.dim() != 1:
        raise ValueError(f"{a.FORMAT} SpMV: the vector must be 1-D, got shape {tuple(v.shape)}")
    return a._matmul_dense(v.unsqueeze(1)).squeeze(1)


def _handle_expand(func, args, kwargs):
    a = args[0]
    raise NotImplementedError(
        f"sparsekernels {type(a).__name__} cannot be expanded to {list(args[1])} (torch.matmul with a batched dense "
        "operand expands the sparse one); use the @ operator, which folds the batch into the columns, or "
        "F.linear(x, a) for x of shape [..., k]"
    )


def _handle_detach(func, args, kwargs):
    a = args[0]
    return a._with(tuple(t.detach() for t in a._inner()))


def _handle_clone(func, args, kwargs):
    a = args[0]
    return a._with(tuple(t.clone() for t in a._inner()))


def _handle_to_copy(func, args, kwargs):
    a = args[0]
    layout = kwargs.get("layout")
    if layout not in (None, torch.strided):
        raise NotImplementedError(f"{type(a).__name__}.to(layout={layout}) is not supported")
    device, dtype = kwargs.get("device"), kwargs.get("dtype")
    if dtype is not None and dtype not in (torch.float32, torch.float16, torch.bfloat16, torch.float64):
        raise TypeError(f"{type(a).__name__}: values dtype must be float32, float16, bfloat16 or float64 (CPU), "
                        f"got {dtype}")
    if (dtype or a.dtype) == torch.float64 and torch.device(device or a.device).type not in ("cpu", "meta"):
        raise TypeError(f"{type(a).__name__}: float64 values are supported on the CPU only (for verification); "
                        f"convert to float32/float16/bfloat16 before moving to {device or a.device}")
    tensors = list(a._inner())
    tensors = [t.to(device=device) if device is not None else t for t in tensors]
    if dtype is not None:
        tensors[-1] = tensors[-1].to(dtype)
    return a._with(tensors)


def _handle_copy(func, args, kwargs):
    """copy_ (what load_state_dict uses): a dense destination gets the dense matrix; a format destination takes
    the source's arrays (same format, orientation and block size: copied, another nnz allowed) or the source
    repacked into its own format, orientation and block size. The values take the destination's dtype and
    device, as copy_ does."""
    dst, src = args[:2]
    if not _is_fmt(dst):
        return dst.copy_(src.to_dense())
    if not isinstance(src, torch.Tensor) or tuple(src.shape) != tuple(dst.shape):
        raise RuntimeError(
            f"{type(dst).__name__}.copy_: the source must be a tensor of the same shape {tuple(dst.shape)}, got "
            f"{tuple(src.shape) if isinstance(src, torch.Tensor) else type(src).__name__}"
        )
    if (type(src) is type(dst) and src.transposed == dst.transposed and src._mk == dst._mk
            and src._values_tensor().shape[1:] == dst._values_tensor().shape[1:]):
        tensors = [t.detach().to(device=dst.device, copy=True) for t in src._inner()]
    else:  # another format, orientation or block size: repack the dense matrix
        from sparsekernels.formats import to_bitmap, to_bsr, to_csr, to_sparse24

        logical = (src.to_dense() if _is_fmt(src) else src).detach()
        stored = (logical.t() if dst.transposed else logical).to(dtype=dst.dtype, device="cpu")
        pack = {"csr": to_csr, "bitmap": to_bitmap, "sparse24": to_sparse24,
                "bsr": lambda d: to_bsr(d, tuple(dst._values_tensor().shape[1:]))}[dst.FORMAT]
        tensors = [t.to(device=dst.device) for t in pack(stored)._inner()]
    tensors[-1] = tensors[-1].to(dst.dtype)
    for name, t in zip(dst.INNER, tensors):
        setattr(dst, name, t)
    return dst


_HANDLERS = {
    torch.ops.sparse.spmm.default: _handle_spmm,
    aten.mm.default: _handle_mm,
    aten.matmul.default: _handle_mm,
    aten.addmm.default: _handle_addmm,
    aten.linear.default: _handle_linear,
    aten.t.default: _handle_t,
    aten.transpose.int: _handle_transpose,
    aten.permute.default: _handle_permute,
    aten.mv.default: _handle_mv,
    aten.expand.default: _handle_expand,
    aten.detach.default: _handle_detach,
    aten.alias.default: _handle_detach,
    aten.clone.default: _handle_clone,
    aten._to_copy.default: _handle_to_copy,
    aten.copy_.default: _handle_copy,
}
