#include "core/cpu_isa.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

#include <c10/util/Exception.h>

namespace sk {
namespace {

bool detect(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::scalar:
      return true;
    case CpuIsa::avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
             __builtin_cpu_supports("f16c") && __builtin_cpu_supports("bmi2") &&
             __builtin_cpu_supports("popcnt");
    case CpuIsa::avx512:
      return detect(CpuIsa::avx2) && __builtin_cpu_supports("avx512f") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512dq");
    case CpuIsa::avx512bf16:
      return detect(CpuIsa::avx512) && __builtin_cpu_supports("avx512bf16");
  }
  return false;
}

CpuIsa parse(const std::string& name) {
  if (name == "scalar") return CpuIsa::scalar;
  if (name == "avx2") return CpuIsa::avx2;
  if (name == "avx512") return CpuIsa::avx512;
  if (name == "avx512bf16") return CpuIsa::avx512bf16;
  TORCH_CHECK_VALUE(false, "sparsekernels: unknown CPU ISA '", name,
                    "'; expected one of scalar, avx2, avx512, avx512bf16");
}

CpuIsa initial_isa() {
  // An invalid SPARSEKERNELS_CPU_ISA is reported by sparsekernels/__init__.py
  // (it calls set_cpu_isa with the variable), so here it just falls back.
  const char* env = std::getenv("SPARSEKERNELS_CPU_ISA");
  if (env && *env) {
    for (CpuIsa isa : {CpuIsa::scalar, CpuIsa::avx2, CpuIsa::avx512, CpuIsa::avx512bf16})
      if (std::strcmp(env, cpu_isa_name(isa)) == 0 && cpu_supports(isa)) return isa;
  }
  return best_cpu_isa();
}

std::atomic<int>& active() {
  static std::atomic<int> isa{static_cast<int>(initial_isa())};
  return isa;
}

}  // namespace

const char* cpu_isa_name(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::scalar:
      return "scalar";
    case CpuIsa::avx2:
      return "avx2";
    case CpuIsa::avx512:
      return "avx512";
    case CpuIsa::avx512bf16:
      return "avx512bf16";
  }
  return "?";
}

bool cpu_supports(CpuIsa isa) { return detect(isa); }

CpuIsa best_cpu_isa() {
  if (detect(CpuIsa::avx512bf16)) return CpuIsa::avx512bf16;
  if (detect(CpuIsa::avx512)) return CpuIsa::avx512;
  if (detect(CpuIsa::avx2)) return CpuIsa::avx2;
  return CpuIsa::scalar;
}

CpuIsa active_cpu_isa() { return static_cast<CpuIsa>(active().load(std::memory_order_relaxed)); }

void set_cpu_isa(const std::string& name) {
  const CpuIsa isa = parse(name);
  TORCH_CHECK_VALUE(cpu_supports(isa), "sparsekernels: CPU ISA '", name,
                    "' is not supported by this CPU (best available: ", cpu_isa_name(best_cpu_isa()), ")");
  active().store(static_cast<int>(isa), std::memory_order_relaxed);
}

}  // namespace sk
