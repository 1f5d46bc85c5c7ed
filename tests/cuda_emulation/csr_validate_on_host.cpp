// csrc/kernels/cuda/validate_csr.cu on host threads (cuda_host_shim.h), linked
// into csr_kernels_on_host.cpp (its own translation unit: the two .cu files
// each have file-local constants of the same names).
#include "cuda_host_shim.h"

#include "kernels/cuda/validate_csr.cu"
