// Failure counting and names shared by the host runs of the CUDA kernels
// (*_kernels_on_host.cpp): each prints the first failures and a summary line
// that tests/test_cuda_emulation.py reads ("N cases, 0 failures").
#pragma once

#include <cstdio>
#include <string>
#include <type_traits>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace sk_test {

inline int g_failures = 0, g_cases = 0;

inline void fail(const std::string& what) {
  if (g_failures < 25) std::printf("FAIL %s\n", what.c_str());
  ++g_failures;
}

template <typename T>
const char* dtype_name() {
  if (std::is_same<T, float>::value) return "float32";
  if (std::is_same<T, __half>::value) return "float16";
  return "bfloat16";
}

inline int summary(const char* what) {
  std::printf("%s: %d cases, %d failures\n", what, g_cases, g_failures);
  return g_failures == 0 ? 0 : 1;
}

}  // namespace sk_test
