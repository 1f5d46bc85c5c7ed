"""CSR format tensor (docs/formats.md#csr)."""

from __future__ import annotations

import torch

from sparsekernels.formats.base import SparseFormatTensor


class CSRTensor(SparseFormatTensor):
    """Compressed sparse rows: ``row_ptr [m+1]``, ``col_idx [nnz]`` (int32 or int64), ``values [nnz]``."""

    FORMAT = "csr"
    INNER = ("row_ptr", "col_idx", "values")
    row_ptr: torch.Tensor
    col_idx: torch.Tensor
    values: torch.Tensor

    @property
    def nnz(self) -> int:
        return self.values.numel()

    def _spmm(self, b, bias=None):
        return torch.ops.sparse.csr_spmm(self.row_ptr, self.col_idx, self.values, b, self._mk[0], bias)

    def _spmm_t(self, b):
        return torch.ops.sparse.csr_spmm_t(self.row_ptr, self.col_idx, self.values, b, self._mk[1])

    def _to_dense_stored(self):
        return torch.ops.sparse.csr_to_dense(self.row_ptr, self.col_idx, self.values, *self._mk)

    def to_torch(self) -> torch.Tensor:
        """A torch.sparse_csr_tensor sharing this tensor's arrays; for a transposed tensor (``a.t()``) its transpose,
        a torch.sparse_csc tensor sharing the same arrays."""
        # validated here (O(nnz)): a CSRTensor built directly from arrays was never checked, and torch would not
        self._validate()
        t = torch.sparse_csr_tensor(self.row_ptr, self.col_idx, self.values, self._mk, check_invariants=False)
        return t.t() if self.transposed else t

    def to_scipy(self):
        """A scipy.sparse.csr_array sharing the arrays where numpy can (CPU; bfloat16 is copied to float32); for a
        transposed tensor its transpose (a csc_array over the same arrays)."""
        import scipy.sparse

        self._validate()  # scipy's toarray() etc. trust the indices
        values = self.values.detach()
        if values.dtype == torch.bfloat16:
            values = values.float()
        s = scipy.sparse.csr_array(
            (values.cpu().numpy(), self.col_idx.cpu().numpy(), self.row_ptr.cpu().numpy()), shape=self._mk
        )
        return s.T if self.transposed else s
