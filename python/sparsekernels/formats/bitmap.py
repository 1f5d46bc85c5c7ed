"""Bitmap format tensor (docs/formats.md#bitmap)."""

from __future__ import annotations

import torch

from sparsekernels.formats.base import SparseFormatTensor


class BitmapTensor(SparseFormatTensor):
    """One bit per element in 8x8 tiles grouped 64x64, non-zero values packed per group:
    ``group_offsets`` (int64), ``bitmaps`` (int64 bit patterns), ``values``."""

    FORMAT = "bitmap"
    INNER = ("group_offsets", "bitmaps", "values")
    group_offsets: torch.Tensor
    bitmaps: torch.Tensor
    values: torch.Tensor

    @property
    def nnz(self) -> int:
        """Number of set bits (the padding values of each group are not counted)."""
        if self.bitmaps.numel() == 0:
            return 0
        table = torch.tensor([bin(i).count("1") for i in range(256)], dtype=torch.int64, device=self.bitmaps.device)
        return int(table[self.bitmaps.view(torch.uint8).long()].sum())  # popcount by bytes

    def _spmm(self, b, bias=None):
        return torch.ops.sparse.bitmap_spmm(self.group_offsets, self.bitmaps, self.values, b, self._mk[0], bias)

    def _spmm_t(self, b):
        return torch.ops.sparse.bitmap_spmm_t(self.group_offsets, self.bitmaps, self.values, b, self._mk[1])

    def _to_dense_stored(self):
        return torch.ops.sparse.bitmap_to_dense(self.group_offsets, self.bitmaps, self.values, *self._mk)
