"""2:4 semi-structured format tensor (docs/formats.md#24-semi-structured)."""

from __future__ import annotations

import torch

from sparsekernels.formats.base import SparseFormatTensor


class Sparse24Tensor(SparseFormatTensor):
    """At most 2 non-zeros per 4 consecutive columns: ``values [m, kp/2]`` and 2-bit positions in
    ``meta [m, kp/16]`` (int16), kp = k rounded up to 16."""

    FORMAT = "sparse24"
    INNER = ("meta", "values")
    meta: torch.Tensor
    values: torch.Tensor

    @property
    def nnz(self) -> int:
        """Stored slots inside the matrix: 2 per group of 4 columns (zeros in them included)."""
        m, k = self._mk
        return m * (2 * (k // 4) + min(2, k % 4))

    def _spmm(self, b):
        return torch.ops.sparse.sparse24_spmm(self.values, self.meta, b)

    def _spmm_t(self, b):
        return torch.ops.sparse.sparse24_spmm_t(self.values, self.meta, b, self._mk[1])

    def _to_dense_stored(self):
        return torch.ops.sparse.sparse24_to_dense(self.values, self.meta, self._mk[1])
