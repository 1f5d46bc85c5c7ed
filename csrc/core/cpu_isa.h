// Run-time choice of the CPU kernel variant (baseline / AVX2 / AVX-512 /
// AVX-512 with AVX512-BF16 dot products for bf16 bitmap and 2:4 SpMM).
//
// The active ISA is the best one the CPU supports, unless overridden by
// SPARSEKERNELS_CPU_ISA=scalar|avx2|avx512|avx512bf16 at load time or by set_cpu_isa()
// (exposed to Python as sparsekernels.set_cpu_isa / the cpu_isa() context).
#pragma once

#include <cstdint>
#include <string>

namespace sk {

// avx512bf16 runs every kernel's avx512 copy except bitmap and 2:4 SpMM and the
// BSR / bitmap / 2:4 SDDMM, which have a fourth copy compiled with
// -mavx512bf16 (SK_CPU_CALL_BF16DOT) that differs in bf16 only.
enum class CpuIsa { scalar = 0, avx2 = 1, avx512 = 2, avx512bf16 = 3 };

const char* cpu_isa_name(CpuIsa isa);
bool cpu_supports(CpuIsa isa);
CpuIsa best_cpu_isa();
CpuIsa active_cpu_isa();
// Throws c10::Error (ValueError in Python) for an unknown name or an ISA this CPU lacks.
void set_cpu_isa(const std::string& name);

}  // namespace sk

// Calls sk::cpu::<active isa>::FN(args...). Template arguments of FN are deduced
// from the argument struct, so FN is a plain name.
#define SK_CPU_CALL(FN, ...) SK_CPU_CALL_AT_MOST(::sk::CpuIsa::avx512, FN, __VA_ARGS__)

// SK_CPU_CALL, but never above `cap` (a CpuIsa): for the shapes where a
// narrower variant was measured faster on an AVX-512 CPU (docs/performance.md,
// issue 5 targets of the seventh session). The active ISA still caps it.
// avx512bf16 runs the avx512 copy (only the files of SK_CPU_CALL_BF16DOT have
// an avx512bf16 one).
#define SK_CPU_CALL_AT_MOST(CAP, FN, ...) SK_CPU_DISPATCH_(CAP, avx512, FN, __VA_ARGS__)

// SK_CPU_CALL_AT_MOST for the kernels that also have an avx512bf16 copy
// (CMakeLists.txt, SK_CPU_BF16DOT_SRCS).
#define SK_CPU_CALL_BF16DOT(CAP, FN, ...) SK_CPU_DISPATCH_(CAP, avx512bf16, FN, __VA_ARGS__)

// min(active ISA, CAP) -> sk::cpu::<isa>::FN(args...), avx512bf16 to namespace BF16NS.
#define SK_CPU_DISPATCH_(CAP, BF16NS, FN, ...)                                                     \
  do {                                                                                             \
    const ::sk::CpuIsa sk_isa_ = ::sk::active_cpu_isa();                                           \
    switch (static_cast<int>(sk_isa_) < static_cast<int>(CAP) ? sk_isa_ : (CAP)) {                 \
      case ::sk::CpuIsa::avx512bf16:                                                               \
        ::sk::cpu::BF16NS::FN(__VA_ARGS__);                                                        \
        break;                                                                                     \
      case ::sk::CpuIsa::avx512:                                                                   \
        ::sk::cpu::avx512::FN(__VA_ARGS__);                                                        \
        break;                                                                                     \
      case ::sk::CpuIsa::avx2:                                                                     \
        ::sk::cpu::avx2::FN(__VA_ARGS__);                                                          \
        break;                                                                                     \
      default:                                                                                     \
        ::sk::cpu::scalar::FN(__VA_ARGS__);                                                        \
        break;                                                                                     \
    }                                                                                              \
  } while (0)

namespace sk {
// CSR SpMM with 2 <= n <= 8 columns of b: a partial 512-bit vector
// per product costs a Zen 4 (512-bit operations issued as two 256-bit halves)
// twice what the AVX2 kernel's 256-bit one does; measured 1.15-1.66x slower
// than AVX2 there, so these run the AVX2 kernel. (2:4 had the same cap until
// its 256-bit expansion took those n.)
inline CpuIsa spmm_narrow_n_isa_cap(int64_t n) { return n >= 2 && n <= 8 ? CpuIsa::avx2 : CpuIsa::avx512; }
}  // namespace sk

