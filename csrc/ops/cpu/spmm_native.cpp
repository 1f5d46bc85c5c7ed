// sparse::spmm for torch-native sparse tensors (layouts SparseCsr and SparseBsr,
// dispatch keys SparseCsrCPU / SparseCsrCUDA): routes to the kernel ops through
// the dispatcher, so the CUDA kernel runs for CUDA tensors. The sparsekernels
// format tensors never get here: their __torch_dispatch__ routes them first.
// A dense `a` is refused with an explanation.
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

#include "core/checks.h"

namespace sk {
namespace {

constexpr const char* kOp = "sparse::spmm";

at::Tensor spmm_dense_a(const at::Tensor& a, const at::Tensor& b) {
  TORCH_CHECK_TYPE(false, kOp, ": 'a' must be sparse (a torch CSR/BSR tensor or a sparsekernels format tensor from ",
                   "sparsekernels.to_csr / to_bsr / to_bitmap / to_sparse24), got a dense tensor of shape ",
                   a.sizes(), "; for dense @ dense use torch.matmul");
  return at::Tensor();  // unreachable
}

at::Tensor spmm_native_sparse(const at::Tensor& a, const at::Tensor& b) {
  if (a.layout() == at::kStrided) return spmm_dense_a(a, b);  // b was the sparse one
  TORCH_CHECK_VALUE(a.dim() == 2, kOp, ": 'a' must be a 2-D sparse matrix, got ", a.dim(),
                    "-D (batched sparse tensors are not supported)");
  SK_CHECK_STRIDED(kOp, b);
  SK_CHECK_DIM(kOp, b, 2);
  TORCH_CHECK_VALUE(a.size(1) == b.size(0), kOp, ": 'a' is ", a.size(0), " x ", a.size(1), " but 'b' has ",
                    b.size(0), " rows (shapes ", a.sizes(), " and ", b.sizes(), ")");
  const int64_t m = a.size(0);
  if (a.layout() == at::kSparseCsr) {
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("sparse::csr_spmm", "")
                         .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                           const at::Tensor&, c10::SymInt, const std::optional<at::Tensor>&)>();
    return op.call(a.crow_indices(), a.col_indices(), a.values(), b, c10::SymInt(m), std::nullopt);
  }
  if (a.layout() == at::kSparseBsr) {
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("sparse::bsr_spmm", "")
                         .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                           const at::Tensor&, c10::SymInt, const std::optional<at::Tensor>&)>();
    TORCH_CHECK_VALUE(a.values().dim() == 3, kOp, ": BSR 'a' must have 2-D blocks (values of shape [nnzb, r, c]), got ",
                      a.values().sizes());
    return op.call(a.crow_indices(), a.col_indices(), a.values(), b, c10::SymInt(m), std::nullopt);
  }
  TORCH_CHECK_NOT_IMPLEMENTED(false, kOp, ": torch sparse layout ", a.layout(),
                              " is not supported; use CSR or BSR (a.to_sparse_csr()) or a sparsekernels format "
                              "(sparsekernels.to_csr / to_bsr / to_bitmap / to_sparse24)");
}

}  // namespace

TORCH_LIBRARY_IMPL(sparse, SparseCsrCPU, m) { m.impl("spmm", &spmm_native_sparse); }
TORCH_LIBRARY_IMPL(sparse, SparseCsrCUDA, m) { m.impl("spmm", &spmm_native_sparse); }
// COO (layout Sparse): the not-implemented message naming the supported layouts, not the dispatcher's
TORCH_LIBRARY_IMPL(sparse, SparseCPU, m) { m.impl("spmm", &spmm_native_sparse); }
TORCH_LIBRARY_IMPL(sparse, SparseCUDA, m) { m.impl("spmm", &spmm_native_sparse); }
TORCH_LIBRARY_IMPL(sparse, CPU, m) { m.impl("spmm", &spmm_dense_a); }
TORCH_LIBRARY_IMPL(sparse, CUDA, m) { m.impl("spmm", &spmm_dense_a); }

}  // namespace sk
