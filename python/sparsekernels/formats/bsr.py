"""BSR (block CSR) format tensor (docs/formats.md#bsr-block-csr)."""

from __future__ import annotations

import torch

from sparsekernels.formats.base import SparseFormatTensor


class BSRTensor(SparseFormatTensor):
    """Block CSR with r x c blocks: ``block_row_ptr``, ``block_col_idx``, ``blocks [nnzb, r, c]``.
    Shapes that are not multiples of the block size are padded inside."""

    FORMAT = "bsr"
    INNER = ("block_row_ptr", "block_col_idx", "blocks")
    block_row_ptr: torch.Tensor
    block_col_idx: torch.Tensor
    blocks: torch.Tensor

    @property
    def blocksize(self) -> tuple[int, int]:
        return tuple(self.blocks.shape[1:])

    @property
    def nnz(self) -> int:
        """Stored slots inside the matrix: the elements of the kept blocks (their explicit zeros included), without
        the padding of partial edge blocks (a shape that is not a multiple of the block size)."""
        nnzb = self.blocks.shape[0]
        (r, c), (m, k) = self.blocksize, self._mk
        total = nnzb * r * c
        pad_r, pad_c = (-m) % r, (-k) % c
        if nnzb == 0 or (pad_r == 0 and pad_c == 0):
            return total
        # inclusion-exclusion over the blocks of the last block row (pad_r rows of padding each) and of the last
        # block column (pad_c columns each); indices clamped, so an unvalidated tensor still gives a number
        ptr = self.block_row_ptr
        last_row = slice(int(ptr[-2].clamp(0, nnzb)), int(ptr[-1].clamp(0, nnzb))) if ptr.numel() >= 2 else slice(0, 0)
        in_last_col = self.block_col_idx == (k + c - 1) // c - 1
        n_last_row = max(0, last_row.stop - last_row.start)
        n_corner = int(in_last_col[last_row].sum())
        return (total - pad_r * c * n_last_row - pad_c * r * int(in_last_col.sum())
                + pad_r * pad_c * n_corner)

    def _repr_meta(self):
        return {"blocksize": self.blocksize}

    def _spmm(self, b, bias=None):
        return torch.ops.sparse.bsr_spmm(self.block_row_ptr, self.block_col_idx, self.blocks, b, self._mk[0], bias)

    def _spmm_t(self, b):
        return torch.ops.sparse.bsr_spmm_t(self.block_row_ptr, self.block_col_idx, self.blocks, b, self._mk[1])

    def _to_dense_stored(self):
        return torch.ops.sparse.bsr_to_dense(self.block_row_ptr, self.block_col_idx, self.blocks, *self._mk)

    def to_torch(self) -> torch.Tensor:
        """A torch.sparse_bsr_tensor sharing the arrays (needs m, k multiples of the block size); for a transposed
        tensor (``a.t()``) its transpose, a torch.sparse_bsc tensor over the same arrays."""
        r, c = self.blocksize
        m, k = self._mk
        if m % r or k % c:
            raise ValueError(f"torch BSR needs the shape {self._mk} to be a multiple of the block size {(r, c)}")
        # O(nnzb): a BSRTensor built directly from arrays was never checked, and torch would not (on the CPU: the
        # BSR ops have no CUDA kernel yet)
        (self if self.device.type == "cpu" else self.cpu())._validate()
        t = torch.sparse_bsr_tensor(self.block_row_ptr, self.block_col_idx, self.blocks, self._mk,
                                    check_invariants=False)
        return t.t() if self.transposed else t

    def to_scipy(self):
        """A scipy.sparse.bsr_array (needs m, k multiples of the block size; bfloat16 copied to float32); for a
        transposed tensor its transpose."""
        import scipy.sparse

        self.to_torch()  # shape check
        blocks = self.blocks.detach()
        if blocks.dtype == torch.bfloat16:
            blocks = blocks.float()
        s = scipy.sparse.bsr_array(
            (blocks.cpu().numpy(), self.block_col_idx.cpu().numpy(), self.block_row_ptr.cpu().numpy()),
            shape=self._mk,
        )
        return s.T if self.transposed else s
