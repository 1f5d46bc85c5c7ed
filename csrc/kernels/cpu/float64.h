// Torch-free float64 CPU kernels: every SpMM, transposed SpMM and SDDMM of the
// four formats, and the numeric pass of CSR SpGEMM, in plain C++ loops with
// double accumulation (docs/design.md, float64).
//
// float64 is for verification (torch.autograd.gradcheck with its default
// tolerances, references), not speed: these loops are simple and untuned; the
// compiler vectorises what it can per ISA. They reuse the argument structs of
// kernels.h, grad_kernels.h and sddmm_spgemm.h with T = double and read exactly
// the layouts of docs/formats.md.
//
// Unlike the fused-validation SpMM kernels, none of these checks metadata: the
// glue runs the format's full validator (core/validate.h) before any call.
// Ranges and ownership are those of the fast kernels, so every range writes
// only its own rows (or slots) and no two threads touch one output element.
#pragma once

#include <cstdint>

#include "kernels/cpu/grad_kernels.h"
#include "kernels/cpu/kernels.h"
#include "kernels/cpu/sddmm_spgemm.h"

namespace sk {
namespace cpu {

// Scratch of csr_spgemm_numeric_f64 for one thread: room for the products of
// the longest row handed to it (flops(i), csr_spgemm_row_flops).
struct SpgemmF64Workspace {
  int64_t* cols;  // [capacity]
  double* vals;   // [capacity]
  int64_t capacity;
};

}  // namespace cpu
}  // namespace sk

#define SK_DECLARE_CPU_F64_KERNELS(ISA)                                                              \
  namespace sk {                                                                                     \
  namespace cpu {                                                                                    \
  namespace ISA {                                                                                    \
  /* SpMM, out[m, n] = A @ b. Ranges as the fast kernels: rows / block rows / group rows / rows */   \
  template <typename I>                                                                              \
  void csr_spmm_f64(const CsrSpmmArgs<double, I>& a, int64_t begin, int64_t end);                   \
  template <typename I>                                                                              \
  void bsr_spmm_f64(const BsrSpmmArgs<double, I>& a, int64_t begin, int64_t end);                   \
  void bitmap_spmm_f64(const BitmapSpmmArgs<double>& a, int64_t begin, int64_t end);                \
  void sparse24_spmm_f64(const Sparse24SpmmArgs<double>& a, int64_t begin, int64_t end);            \
  /* transposed SpMM, out[k, n] = A^T @ b: rows of out / block columns / group columns / */         \
  /* 64-column chunks of A (CSR and BSR through the transposed index, csr_transpose) */              \
  template <typename I>                                                                              \
  void csr_spmm_t_f64(const CsrSpmmTArgs<double, I>& a, int64_t begin, int64_t end);                \
  template <typename I>                                                                              \
  void bsr_spmm_t_f64(const BsrSpmmTArgs<double, I>& a, int64_t begin, int64_t end);                \
  void bitmap_spmm_t_f64(const BitmapSpmmTArgs<double>& a, int64_t begin, int64_t end);             \
  void sparse24_spmm_t_f64(const Sparse24SpmmTArgs<double>& a, int64_t begin, int64_t end);         \
  /* SDDMM at the stored slots: rows / block rows / groups / rows */                                 \
  template <typename I>                                                                              \
  void csr_sddmm_f64(const CsrSddmmArgs<double, I>& a, int64_t begin, int64_t end);                 \
  template <typename I>                                                                              \
  void bsr_sddmm_f64(const BsrSddmmArgs<double, I>& a, int64_t begin, int64_t end);                 \
  void bitmap_sddmm_f64(const BitmapSddmmArgs<double>& a, int64_t begin, int64_t end);              \
  void sparse24_sddmm_f64(const Sparse24SddmmArgs<double>& a, int64_t begin, int64_t end);          \
  /* SpGEMM numeric pass, rows [begin, end) of C: the products of a row sorted by column, */        \
  /* equal columns summed (c_row_ptr from the type-independent symbolic pass) */                     \
  template <typename IA, typename IB, typename IC>                                                   \
  void csr_spgemm_numeric_f64(const CsrSpgemmArgs<double, IA, IB, IC>& a, const SpgemmF64Workspace& ws, \
                              int64_t begin, int64_t end);                                           \
  }                                                                                                  \
  }                                                                                                  \
  }

SK_DECLARE_CPU_F64_KERNELS(scalar)
SK_DECLARE_CPU_F64_KERNELS(avx2)
SK_DECLARE_CPU_F64_KERNELS(avx512)
