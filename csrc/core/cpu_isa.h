// Run-time choice of the CPU kernel variant (baseline / AVX2 / AVX-512).
//
// The active ISA is the best one the CPU supports, unless overridden by
// SPARSEKERNELS_CPU_ISA=scalar|avx2|avx512 at load time or by set_cpu_isa()
// (exposed to Python as sparsekernels.set_cpu_isa / the cpu_isa() context).
#pragma once

#include <string>

namespace sk {

enum class CpuIsa { scalar = 0, avx2 = 1, avx512 = 2 };

const char* cpu_isa_name(CpuIsa isa);
bool cpu_supports(CpuIsa isa);
CpuIsa best_cpu_isa();
CpuIsa active_cpu_isa();
// Throws c10::Error (ValueError in Python) for an unknown name or an ISA this CPU lacks.
void set_cpu_isa(const std::string& name);

}  // namespace sk

// Calls sk::cpu::<active isa>::FN(args...). Template arguments of FN are deduced
// from the argument struct, so FN is a plain name.
#define SK_CPU_CALL(FN, ...)                                   \
  do {                                                         \
    switch (::sk::active_cpu_isa()) {                          \
      case ::sk::CpuIsa::avx512:                               \
        ::sk::cpu::avx512::FN(__VA_ARGS__);                    \
        break;                                                 \
      case ::sk::CpuIsa::avx2:                                 \
        ::sk::cpu::avx2::FN(__VA_ARGS__);                      \
        break;                                                 \
      default:                                                 \
        ::sk::cpu::scalar::FN(__VA_ARGS__);                    \
        break;                                                 \
    }                                                          \
  } while (0)
