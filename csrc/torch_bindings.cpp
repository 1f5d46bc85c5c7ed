// Every schema of sparsekernels, and nothing else. Implementations register in
// ops/cpu/*.cpp and ops/cuda/*.cpp (TORCH_LIBRARY_IMPL), fakes and autograd in
// python/sparsekernels/ops.py. Shapes and layouts: docs/formats.md.
//
// ATen already owns the `sparse` namespace (TORCH_LIBRARY(sparse, ...) for its
// quantized sparse linear ops): add to it with a FRAGMENT, never TORCH_LIBRARY,
// and never reuse its qlinear* names.
#include <torch/library.h>

#include "build_info.h"
#include "core/cpu_isa.h"

TORCH_LIBRARY_FRAGMENT(sparse, m) {
  // ---- model-facing op: a is a torch CSR/BSR tensor or a sparsekernels format
  // tensor (whose __torch_dispatch__ routes it), b dense [k, n] -> [m, n].
  m.def("spmm(Tensor a, Tensor b) -> Tensor");

  // ---- SpMM kernel ops: out[m, n] = A[m, k] @ b[k, n], k = b.size(0).
  // Optional bias [m] (the values' dtype): out = A @ b + bias[:, None], added to the fp32 sums and rounded once
  // (torch's F.linear rounds once too; an out + bias afterwards would round twice).
  m.def("csr_spmm(Tensor row_ptr, Tensor col_idx, Tensor values, Tensor b, SymInt m, Tensor? bias=None) -> Tensor");
  m.def("bsr_spmm(Tensor block_row_ptr, Tensor block_col_idx, Tensor blocks, Tensor b, SymInt m, "
        "Tensor? bias=None) -> Tensor");
  m.def("bitmap_spmm(Tensor group_offsets, Tensor bitmaps, Tensor values, Tensor b, SymInt m, "
        "Tensor? bias=None) -> Tensor");
  m.def("sparse24_spmm(Tensor values, Tensor meta, Tensor b, Tensor? bias=None) -> Tensor");

  // ---- SDDMM: out[p] = dot(x[row(p)], y[col_idx[p]]) for each stored entry p;
  // x [m, d], y [n, d] -> values [nnz] (i.e. (x @ y.T) sampled at A's pattern).
  m.def("csr_sddmm(Tensor row_ptr, Tensor col_idx, Tensor x, Tensor y) -> Tensor");

  // ---- Backward of the SpMM ops (autograd: python/sparsekernels/ops.py).
  // Transposed SpMM: out[k, n] = A^T @ b for A [m, k] in the format (the same
  // arrays as its SpMM) and b [m, n] (m = b.size(0)); k is A's column count,
  // which not every format's arrays determine. grad_b of SpMM is
  // <fmt>_spmm_t(A, grad_out, k).
  m.def("csr_spmm_t(Tensor row_ptr, Tensor col_idx, Tensor values, Tensor b, SymInt k) -> Tensor");
  m.def("bsr_spmm_t(Tensor block_row_ptr, Tensor block_col_idx, Tensor blocks, Tensor b, SymInt k) -> Tensor");
  m.def("bitmap_spmm_t(Tensor group_offsets, Tensor bitmaps, Tensor values, Tensor b, SymInt k) -> Tensor");
  m.def("sparse24_spmm_t(Tensor values, Tensor meta, Tensor b, SymInt k) -> Tensor");
  // SDDMM at a format's stored slots: x [m, d], y [k, d] (so A is m x k); the
  // output has the shape of the format's values tensor, out[slot] =
  // dot(x[row(slot)], y[col(slot)]), and 0 for slots outside the matrix (BSR
  // edge-block padding, bitmap round-up padding, 2:4 positions >= k). grad_values
  // of SpMM is the SDDMM of (grad_out, b). CSR uses csr_sddmm above.
  //   bsr_sddmm -> [nnzb, r, c], nnzb = block_col_idx.size(0)
  //   bitmap_sddmm -> [num_values], num_values = the values length (group_offsets[G])
  //   sparse24_sddmm -> [m, kp / 2] = [meta.size(0), 8 * meta.size(1)]
  m.def(
      "bsr_sddmm(Tensor block_row_ptr, Tensor block_col_idx, Tensor x, Tensor y, SymInt r, SymInt c) -> Tensor");
  m.def("bitmap_sddmm(Tensor group_offsets, Tensor bitmaps, Tensor x, Tensor y, SymInt num_values) -> Tensor");
  m.def("sparse24_sddmm(Tensor meta, Tensor x, Tensor y) -> Tensor");

  // ---- SpGEMM: C = A [m, k] @ B [k, n], all CSR; C has sorted columns and no
  // explicit zeros removed (structural product). Returns (row_ptr, col_idx, values).
  m.def(
      "csr_spgemm(Tensor a_row_ptr, Tensor a_col_idx, Tensor a_values, Tensor b_row_ptr, "
      "Tensor b_col_idx, Tensor b_values, SymInt n) -> (Tensor, Tensor, Tensor)");

  // ---- pack / unpack (dense <-> format). Packing keeps the non-zeros of dense.
  m.def("dense_to_csr(Tensor dense) -> (Tensor, Tensor, Tensor)");
  m.def("csr_to_dense(Tensor row_ptr, Tensor col_idx, Tensor values, SymInt m, SymInt k) -> Tensor");
  m.def("dense_to_bsr(Tensor dense, int r, int c) -> (Tensor, Tensor, Tensor)");
  m.def("bsr_to_dense(Tensor block_row_ptr, Tensor block_col_idx, Tensor blocks, SymInt m, SymInt k) -> Tensor");
  m.def("dense_to_bitmap(Tensor dense) -> (Tensor, Tensor, Tensor)");
  m.def("bitmap_to_dense(Tensor group_offsets, Tensor bitmaps, Tensor values, SymInt m, SymInt k) -> Tensor");
  m.def("dense_to_sparse24(Tensor dense) -> (Tensor, Tensor)");
  m.def("sparse24_to_dense(Tensor values, Tensor meta, SymInt k) -> Tensor");
}

// Library configuration, in a namespace of its own (not model-facing).
TORCH_LIBRARY(sparsekernels, m) {
  m.def("build_info() -> str", []() -> std::string { return SK_BUILD_INFO_JSON; });
  m.def("cpu_isa() -> str", []() -> std::string { return sk::cpu_isa_name(sk::active_cpu_isa()); });
  m.def("cpu_isa_supported(str isa) -> bool", [](const std::string& isa) -> bool {
    for (sk::CpuIsa i : {sk::CpuIsa::scalar, sk::CpuIsa::avx2, sk::CpuIsa::avx512, sk::CpuIsa::avx512bf16})
      if (isa == sk::cpu_isa_name(i)) return sk::cpu_supports(i);
    return false;
  });
  m.def("set_cpu_isa(str isa) -> ()", [](const std::string& isa) { sk::set_cpu_isa(isa); });
}
