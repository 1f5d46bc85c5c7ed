"""sparsekernels: sparse kernels for PyTorch as torch custom ops (torch.ops.sparse.*).

    import torch, sparsekernels as sk
    a = sk.to_bitmap(sk.prune_magnitude(w, 0.5))
    y = torch.ops.sparse.spmm(a, x)          # or a @ x, or as an nn.Linear weight

Formats: docs/formats.md. Ops: csrc/torch_bindings.cpp.
"""

from sparsekernels._lib import (
    BUILD_INFO,
    build_info,
    cpu_isa,
    cpu_isa_supported,
    set_cpu_isa,
    use_cpu_isa,
)
from sparsekernels import ops  # noqa: F401  (registers the fake implementations)
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
from sparsekernels.functional import sddmm, spgemm
from sparsekernels.pruning import prune_blocks, prune_magnitude, prune_n_m
from sparsekernels import nn  # SparseLinear
from sparsekernels.nn import sparsify

__version__ = "0.1.0"

__all__ = [
    "BUILD_INFO", "build_info", "cpu_isa", "cpu_isa_supported", "set_cpu_isa", "use_cpu_isa",
    "SparseFormatTensor", "CSRTensor", "BSRTensor", "BitmapTensor", "Sparse24Tensor",
    "to_csr", "to_bsr", "to_bitmap", "to_sparse24", "spgemm", "sddmm",
    "prune_magnitude", "prune_n_m", "prune_blocks", "nn", "sparsify",
]
