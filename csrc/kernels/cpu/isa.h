// Every .cpp under csrc/kernels/cpu is compiled three times (CMakeLists.txt):
// with SK_CPU_ISA=scalar (no ISA flags), avx2 (AVX2+FMA+F16C) and avx512
// (AVX-512 F/BW/VL/DQ). Code goes between SK_CPU_NAMESPACE_BEGIN/END, which
// opens sk::cpu::<isa>, so the three copies never share a symbol.
//
// Rule for kernel files: instantiate std templates only with types declared
// inside this namespace (e.g. a local comparator), never e.g. std::sort<int*>
// with a global type: that instantiation would be a COMDAT the linker may take
// from the AVX-512 object for a baseline caller.
#pragma once

#ifndef SK_CPU_ISA
#error "kernels/cpu files must be compiled with -DSK_CPU_ISA=scalar|avx2|avx512|avx512bf16"
#endif

#define SK_CPU_NAMESPACE_BEGIN \
  namespace sk {               \
  namespace cpu {              \
  namespace SK_CPU_ISA {
#define SK_CPU_NAMESPACE_END \
  }                          \
  }                          \
  }
