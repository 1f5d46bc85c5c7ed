"""Drop-in sparse linear layers: sparsekernels.nn.SparseLinear and sparsekernels.sparsify.

    lin = sk.nn.SparseLinear.from_dense(nn.Linear(512, 256), format="bitmap", sparsity=0.5)
    report = sk.sparsify(model, format="sparse24")   # swaps every eligible nn.Linear in place
    print(report)                                    # which layers were swapped, and why others were not

A SparseLinear holds the arrays of one format (docs/formats.md) as its own tensors:
the values as an ``nn.Parameter`` (the trainable tensor), the index arrays as
buffers, and the bias. Its forward calls the kernel op of the format directly
(``torch.ops.sparse.<format>_spmm``), not the format tensor subclass, so autograd
registered on the kernel ops reaches the values and the input, and
``torch.compile(fullgraph=True)`` sees plain tensors.

state_dict holds exactly the format's arrays (and the bias), never a dense copy.
Loading one whose index arrays have another size (another nnz) into a SparseLinear
of the same format and shape replaces this layer's tensors by tensors of the loaded
sizes (see ``SparseLinear._load_from_state_dict``): build the model, sparsify it with
the same format, then ``load_state_dict``.
"""

from __future__ import annotations

from typing import Callable, Iterable, NamedTuple

import torch
from torch import nn
from torch._subclasses.fake_tensor import is_fake

from sparsekernels.formats import (
    BitmapTensor,
    BSRTensor,
    CSRTensor,
    Sparse24Tensor,
    SparseFormatTensor,
    to_bitmap,
    to_bsr,
    to_csr,
    to_sparse24,
)
from sparsekernels.formats.base import check_blocksize
from sparsekernels.pruning import prune_blocks, prune_magnitude, prune_n_m

__all__ = ["SparseLinear", "sparsify", "SparsifyEntry", "SparsifyReport", "FORMATS"]

FORMATS = ("csr", "bsr", "bitmap", "sparse24")
VALUE_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
_TENSOR_CLASSES = {"csr": CSRTensor, "bsr": BSRTensor, "bitmap": BitmapTensor, "sparse24": Sparse24Tensor}


class SparseLinear(nn.Module):
    """y = x @ W.T + bias with W (out_features x in_features) stored in a sparse format.

    Tensors (named as the format tensor's inner tensors, docs/formats.md):
      csr:      buffers ``row_ptr``, ``col_idx``;            parameter ``values``
      bsr:      buffers ``block_row_ptr``, ``block_col_idx``; parameter ``blocks`` [nnzb, r, c]
      bitmap:   buffers ``group_offsets``, ``bitmaps``;       parameter ``values``
      sparse24: buffer ``meta``;                              parameter ``values`` [m, kp/2]
    plus the parameter ``bias`` (or None). Build one with ``from_dense`` or from a format tensor."""

    def __init__(self, weight: SparseFormatTensor, bias: torch.Tensor | None = None, *, requires_grad: bool = True):
        super().__init__()
        if not isinstance(weight, SparseFormatTensor) or type(weight) not in _TENSOR_CLASSES.values():
            raise TypeError(
                f"SparseLinear: weight must be a sparsekernels format tensor (CSRTensor, BSRTensor, BitmapTensor, "
                f"Sparse24Tensor), got {type(weight).__name__}; use SparseLinear.from_dense for a dense layer"
            )
        if weight.transposed:
            raise ValueError("SparseLinear: weight must be the (out_features x in_features) matrix, not a transposed "
                             "format tensor")
        weight._check_shape()
        self.format: str = weight.FORMAT
        self.out_features, self.in_features = (int(s) for s in weight._mk)
        self.blocksize: tuple[int, int] | None = tuple(weight.blocksize) if self.format == "bsr" else None
        *index_names, values_name = weight.INNER
        self._index_names: tuple[str, ...] = tuple(index_names)
        self._values_name: str = values_name
        for name in index_names:
            self.register_buffer(name, getattr(weight, name).detach().clone())
        self.register_parameter(
            values_name, nn.Parameter(getattr(weight, values_name).detach().clone(), requires_grad=requires_grad)
        )
        if bias is None:
            self.register_parameter("bias", None)
        else:
            if bias.shape != (self.out_features,):
                raise ValueError(f"SparseLinear: bias must have shape ({self.out_features},), got {tuple(bias.shape)}")
            if bias.dtype != weight.dtype:
                raise TypeError(f"SparseLinear: bias dtype {bias.dtype} differs from the weight's {weight.dtype} (the "
                                f"output would be promoted silently); convert it, e.g. bias.to({weight.dtype})")
            self.bias = bias if isinstance(bias, nn.Parameter) else nn.Parameter(bias.detach().clone())

    # ---- construction ------------------------------------------------------------------------------------------
    @classmethod
    def from_dense(
        cls,
        linear: nn.Linear,
        format: str,  # noqa: A002  (the public name)
        sparsity: float | None = None,
        blocksize: tuple[int, int] = (32, 32),
    ) -> "SparseLinear":
        """A SparseLinear computing what ``linear`` computes after pruning its weight.

        Pruning: csr and bitmap zero the ``sparsity`` fraction of smallest-magnitude weights
        (sparsekernels.prune_magnitude); bsr zeros that fraction of ``blocksize`` blocks with the smallest norm
        (prune_blocks); sparse24 keeps the 2 largest of every 4 consecutive weights along in_features
        (prune_n_m(w, 2, 4); ``sparsity`` must be None or 0.5). ``sparsity=None`` keeps the weight's own zeros
        (packs it as it is; for sparse24 a weight that already is 2:4 is unchanged).
        The bias (if any) is shared with ``linear``. Raises TypeError / ValueError for a layer the format cannot
        hold (see ``ineligibility``)."""
        reason = ineligibility(linear, format, sparsity, blocksize)
        if reason is not None:
            exc = TypeError if reason.startswith(("dtype", "type")) else ValueError
            raise exc(f"SparseLinear.from_dense: cannot convert this layer: {reason}")
        w = linear.weight.detach()
        device = w.device
        w = w.cpu()  # the pack ops run on the CPU for now; the packed arrays are moved back below
        if format == "sparse24":
            w = prune_n_m(w, 2, 4)
        elif sparsity is not None:
            w = prune_blocks(w, tuple(blocksize), sparsity) if format == "bsr" else prune_magnitude(w, sparsity)
        packed = {"csr": to_csr, "bitmap": to_bitmap, "sparse24": to_sparse24,
                  "bsr": lambda x: to_bsr(x, tuple(blocksize))}[format](w)
        if device.type != "cpu":
            packed = packed.to(device)
        return cls(packed, linear.bias, requires_grad=linear.weight.requires_grad)

    # ---- the product ------------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 0 or x.shape[-1] != self.in_features:
            raise ValueError(f"SparseLinear: the input's last dimension must be in_features = {self.in_features}, "
                             f"got an input of shape {tuple(x.shape)}")
        values = getattr(self, self._values_name)
        if isinstance(x, torch.Tensor) and x.dtype != values.dtype:
            raise TypeError(f"SparseLinear: the input has dtype {x.dtype} but the layer's weight is {values.dtype}; "
                            f"convert one of them (x.to({values.dtype}) or layer.to({x.dtype}))")
        lead = x.shape[:-1]
        b = x.reshape(-1, self.in_features).t().contiguous()  # [in, N]: the kernels' dense operand
        bias = self.bias  # added inside the kernel, to the fp32 sums (one rounding, as torch's F.linear)
        if bias is not None and bias.dtype != values.dtype:
            raise TypeError(f"SparseLinear: the bias has dtype {bias.dtype} but the layer's weight is {values.dtype}; "
                            f"convert the layer with layer.to({values.dtype})")
        if self.format == "csr":
            y = torch.ops.sparse.csr_spmm(self.row_ptr, self.col_idx, self.values, b, self.out_features, bias)
        elif self.format == "bsr":
            y = torch.ops.sparse.bsr_spmm(self.block_row_ptr, self.block_col_idx, self.blocks, b, self.out_features,
                                          bias)
        elif self.format == "bitmap":
            y = torch.ops.sparse.bitmap_spmm(self.group_offsets, self.bitmaps, self.values, b, self.out_features,
                                             bias)
        else:
            y = torch.ops.sparse.sparse24_spmm(self.values, self.meta, b, bias)
        return y.t().reshape(*lead, self.out_features)

    # ---- inspection -------------------------------------------------------------------------------------------
    def _tensors(self) -> tuple[torch.Tensor, ...]:
        return tuple(getattr(self, n) for n in (*self._index_names, self._values_name))

    @property
    def weight(self) -> SparseFormatTensor:
        """The weight as a format tensor (sk.CSRTensor, ...) sharing this layer's arrays (values detached)."""
        *index, values = self._tensors()
        return _TENSOR_CLASSES[self.format]((self.out_features, self.in_features), (*index, values.detach()))

    def to_dense(self) -> torch.Tensor:
        """The dense (out_features x in_features) weight, in the values' dtype."""
        return self.weight.to_dense()

    @property
    def nnz(self) -> int:
        return self.weight.nnz

    @property
    def sparsity(self) -> float:
        """Fraction of the weight the format does not store (sk.CSRTensor.sparsity etc.)."""
        return self.weight.sparsity

    @property
    def format_nbytes(self) -> int:
        """Bytes of the weight's arrays (index arrays and values; bias not included)."""
        return sum(t.numel() * t.element_size() for t in self._tensors())

    @property
    def dense_nbytes(self) -> int:
        """Bytes the same weight takes as a dense tensor of the values' dtype."""
        return self.out_features * self.in_features * getattr(self, self._values_name).element_size()

    def extra_repr(self) -> str:
        s = (f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, "
             f"format={self.format}")
        if self.blocksize is not None:
            s += f", blocksize={self.blocksize}"
        values = getattr(self, self._values_name)
        s += f", dtype={values.dtype}"
        if not is_fake(values) and values.device.type != "meta":
            fmt, dense = self.format_nbytes, self.dense_nbytes
            saved = f"{1 - fmt / dense:.1%}" if dense else "n/a"
            s += f", sparsity={self.sparsity:.3f}, bytes={fmt} (dense {dense}, saves {dense - fmt} = {saved})"
        return s

    # ---- state_dict ---------------------------------------------------------------------------------------------
    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        """Adopts the sizes of the loaded arrays (another nnz, or int64 instead of int32 indices) before the usual
        copy, then validates the loaded format. The values keep this layer's dtype and device, as in any
        load_state_dict; a Parameter whose size changes is a new Parameter object (build optimizers after
        loading)."""
        if prefix + "weight" in state_dict and prefix + self._values_name not in state_dict:
            error_msgs.append(
                f"{prefix}: SparseLinear({self.format}) expects the format's arrays "
                f"({', '.join(prefix + n for n in (*self._index_names, self._values_name))}), found a dense "
                f"'{prefix}weight': load the dense state dict into the dense model, then sparsify it"
            )
            return
        for name in (*self._index_names, self._values_name):
            key = prefix + name
            if key not in state_dict:
                continue
            loaded, own = state_dict[key], getattr(self, name)
            if not isinstance(loaded, torch.Tensor):
                continue  # the base class reports it
            if name == "blocks" and loaded.dim() == 3 and tuple(loaded.shape[1:]) != tuple(own.shape[1:]):
                error_msgs.append(f"{key}: block size {tuple(loaded.shape[1:])} in the state dict, this layer "
                                  f"uses {tuple(own.shape[1:])}")
                return
            if name in self._index_names:
                if loaded.shape != own.shape or loaded.dtype != own.dtype:
                    self._buffers[name] = torch.empty(loaded.shape, dtype=loaded.dtype, device=own.device)
            elif loaded.shape != own.shape:
                self._parameters[name] = nn.Parameter(
                    torch.empty(loaded.shape, dtype=own.dtype, device=own.device), requires_grad=own.requires_grad
                )
        n_errors = len(error_msgs)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)
        if len(error_msgs) == n_errors and all(prefix + n in state_dict for n in (*self._index_names,
                                                                                   self._values_name)):
            try:
                self.weight._validate()
            except (ValueError, TypeError, RuntimeError) as e:
                error_msgs.append(f"{prefix}: the loaded {self.format} arrays are not a valid "
                                  f"{self.out_features}x{self.in_features} matrix: {e}")


def ineligibility(module: nn.Module, format: str, sparsity: float | None = None,  # noqa: A002
                  blocksize: tuple[int, int] = (32, 32)) -> str | None:
    """Why ``module`` cannot become a SparseLinear of ``format`` (None when it can). Checks the arguments too."""
    if format not in FORMATS:
        raise ValueError(f"unknown format {format!r}; expected one of {', '.join(FORMATS)}")
    if sparsity is not None and not 0.0 <= float(sparsity) <= 1.0:
        raise ValueError(f"sparsity must be in [0, 1] or None, got {sparsity}")
    if format == "sparse24" and sparsity is not None and float(sparsity) != 0.5:
        raise ValueError(f"format 'sparse24' is 50% sparse (2 of every 4 weights); sparsity must be None or 0.5, "
                         f"got {sparsity}")
    if format == "bsr":
        check_blocksize("SparseLinear", blocksize)
    if not isinstance(module, nn.Linear):
        return f"type {type(module).__name__} is not an nn.Linear"
    w = module.weight
    if isinstance(w, SparseFormatTensor):
        return f"type: its weight is already a sparsekernels {type(w).__name__}"
    if not isinstance(w, torch.Tensor) or w.layout != torch.strided:
        return f"type: its weight is not a dense tensor ({getattr(w, 'layout', type(w).__name__)})"
    if w.device.type == "meta":
        return "the weight is on the meta device (no values to prune); materialise the model first"
    if w.dtype == torch.float64:
        return (f"dtype {w.dtype} is left dense: the float64 kernels are for verification (CPU, simple loops), not "
                f"speed; convert the model first (e.g. model.float()), or, to verify in float64, build "
                f"SparseLinear(sk.to_csr(weight)) or call .double() on a SparseLinear")
    if w.dtype not in VALUE_DTYPES:
        return (f"dtype {w.dtype} is not supported by the sparse formats (float32, float16, bfloat16); "
                f"convert the model first (e.g. model.float())")
    if w.dim() != 2 or w.shape != (module.out_features, module.in_features):
        return f"shape: weight of shape {tuple(w.shape)} is not (out_features, in_features)"
    if w.numel() == 0:
        return f"shape: the weight {tuple(w.shape)} is empty, there is nothing to store sparsely"
    return None


class SparsifyEntry(NamedTuple):
    name: str  # the layer's qualified name in the model
    swapped: bool
    reason: str  # what it became, or why it was left alone


class SparsifyReport(list):
    """The outcome of sparsify: one SparsifyEntry per nn.Linear found (a list of (name, swapped, reason))."""

    @property
    def swapped(self) -> list[str]:
        return [e.name for e in self if e.swapped]

    @property
    def skipped(self) -> dict[str, str]:
        return {e.name: e.reason for e in self if not e.swapped}

    def __str__(self) -> str:
        width = max((len(e.name) for e in self), default=4)
        lines = [f"sparsify: {len(self.swapped)} of {len(self)} nn.Linear layers swapped"]
        lines += [f"  {e.name:<{width}}  {'swapped' if e.swapped else 'skipped'}: {e.reason}" for e in self]
        return "\n".join(lines)


def sparsify(
    model: nn.Module,
    format: str,  # noqa: A002
    sparsity: float | None = None,
    blocksize: tuple[int, int] = (32, 32),
    filter: Callable[[str, nn.Module], bool] | Iterable[str] | None = None,  # noqa: A002
) -> SparsifyReport:
    """Replaces every eligible nn.Linear of ``model`` by ``SparseLinear.from_dense(layer, format, sparsity,
    blocksize)``, in place, and returns a report with one (name, swapped, reason) entry per nn.Linear.

    Eligible: an nn.Linear (not a subclass: a subclass such as MultiheadAttention's out_proj may be used through
    its ``.weight`` by its owner) with a float32/float16/bfloat16 dense, non-empty weight that no other module
    holds (a weight tied to an embedding or shared by two layers stays dense: a SparseLinear would untie it).
    Others are skipped, with the reason in the report.
    ``filter``: a function ``(name, module) -> bool`` choosing among the eligible layers, or a collection of layer
    names. Layers asked for by name are converted even when they are subclasses of nn.Linear; a named layer that
    does not exist or that the format cannot hold raises (KeyError / TypeError / ValueError). A module used at
    several places in the model is converted once and replaced everywhere."""
    by_name = filter is not None and not callable(filter)
    names = set([filter] if isinstance(filter, str) else filter) if by_name else set()
    # every place (parent, attribute) each Linear occupies; the first name seen is its name in the report
    places: dict[int, list[tuple[nn.Module, str]]] = {}
    first_name: dict[int, str] = {}
    modules: dict[int, nn.Linear] = {}
    for parent_name, parent in model.named_modules(remove_duplicate=False):
        # parent._modules, not named_children(), which lists a module held twice by one parent only once
        for attr, child in parent._modules.items():
            if not isinstance(child, nn.Linear):
                continue
            name = f"{parent_name}.{attr}" if parent_name else attr
            places.setdefault(id(child), []).append((parent, attr))
            first_name.setdefault(id(child), name)
            modules[id(child)] = child
    if isinstance(model, nn.Linear):
        raise TypeError("sparsify: the model itself is an nn.Linear; use SparseLinear.from_dense(model, ...) instead")
    # every module (by identity) that holds each Parameter: a Linear's weight held by another module too is tied
    # (an embedding tied to the output projection, two layers sharing one weight); a SparseLinear would get its own
    # copy and untie them
    owners: dict[int, dict[int, str]] = {}
    for mod_name, mod in model.named_modules(remove_duplicate=False):
        for p_name, p in mod._parameters.items():
            if p is not None:
                owners.setdefault(id(p), {}).setdefault(id(mod), f"{mod_name}.{p_name}" if mod_name else p_name)
    if by_name:
        all_names = {n for n in first_name.values()}
        missing = names - all_names
        if missing:
            raise KeyError(f"sparsify: no nn.Linear named {sorted(missing)} in the model "
                           f"(its nn.Linear layers: {sorted(all_names)})")
    report = SparsifyReport()
    ineligibility(nn.Module(), format, sparsity, blocksize)  # argument errors first, before anything is swapped
    todo = []
    for key, module in modules.items():
        name = first_name[key]
        asked = name in names
        reason = ineligibility(module, format, sparsity, blocksize)
        tied = [n for mid, n in owners.get(id(module.weight), {}).items() if mid != key]
        if reason is None and tied:
            reason = (f"its weight is tied to {', '.join(sorted(tied))} (one shared Parameter); a SparseLinear would "
                      f"hold its own copy and untie them (untie it first, e.g. with a cloned Parameter, to convert it)")
        if reason is None and type(module) is not nn.Linear and not asked:
            reason = (f"type {type(module).__name__} is a subclass of nn.Linear, which its owner may use through "
                      f".weight; name it in filter to convert it anyway")
        if reason is not None:
            if asked:
                exc = TypeError if reason.startswith(("dtype", "type")) else ValueError
                raise exc(f"sparsify: layer {name!r} cannot be converted to {format}: {reason}")
            report.append(SparsifyEntry(name, False, reason))
            continue
        if by_name and not asked:
            report.append(SparsifyEntry(name, False, "not named in filter"))
            continue
        if not by_name and filter is not None and not filter(name, module):
            report.append(SparsifyEntry(name, False, "excluded by filter"))
            continue
        todo.append((key, name, module))
        report.append(SparsifyEntry(name, True, ""))
    for key, name, module in todo:
        sparse = SparseLinear.from_dense(module, format, sparsity, blocksize)
        for parent, attr in places[key]:
            setattr(parent, attr, sparse)
        i = next(i for i, e in enumerate(report) if e.name == name)
        report[i] = SparsifyEntry(name, True, f"{format}, sparsity {sparse.sparsity:.3f}, "
                                              f"{sparse.format_nbytes} B (dense {sparse.dense_nbytes} B)")
    return report
