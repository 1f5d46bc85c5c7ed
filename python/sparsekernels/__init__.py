"""sparsekernels: sparse kernels for PyTorch as torch custom ops (torch.ops.sparse.*)."""

from sparsekernels._lib import (
    BUILD_INFO,
    build_info,
    cpu_isa,
    cpu_isa_supported,
    set_cpu_isa,
    use_cpu_isa,
)
from sparsekernels import ops  # noqa: F401  (registers fakes and Python-side impls)

__version__ = "0.1.0"
