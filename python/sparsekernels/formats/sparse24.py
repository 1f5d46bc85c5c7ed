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

    def _check_shape(self):
        # the 2:4 ops take m from the values' rows: a tensor built with another m would give a product of
        # another shape than its own
        if self.values.dim() >= 1 and self.values.shape[0] != self._mk[0]:
            raise ValueError(f"Sparse24Tensor of shape {self._mk} (stored) has {self._mk[0]} rows, but its 'values' "
                             f"has {self.values.shape[0]} (shape {tuple(self.values.shape)})")

    def _spmm(self, b, bias=None):
        self._check_shape()
        return torch.ops.sparse.sparse24_spmm(self.values, self.meta, b, bias)

    def _spmm_t(self, b):
        self._check_shape()
        return torch.ops.sparse.sparse24_spmm_t(self.values, self.meta, b, self._mk[1])

    def _to_dense_stored(self):
        self._check_shape()
        return torch.ops.sparse.sparse24_to_dense(self.values, self.meta, self._mk[1])
