// Shared checks and work splitting for the CPU SpMM glue of every format.
#pragma once

#include <algorithm>
#include <atomic>

#include <ATen/Parallel.h>

#include <ATen/ATen.h>

#include "core/checks.h"

namespace sk {

// Checks the dense operand b of an SpMM against the sparse values and returns
// it with contiguous rows (copying only if its rows are strided).
inline at::Tensor check_spmm_dense_operand(const char* op, const at::Tensor& values, const at::Tensor& b) {
  SK_CHECK_STRIDED(op, b);
  SK_CHECK_DIM(op, b, 2);
  SK_CHECK_SAME_DTYPE(op, values, b);
  SK_CHECK_SAME_DEVICE(op, values, b);
  if (b.size(1) <= 1 || b.stride(1) == 1) return b;
  return b.contiguous();
}

// Rows per parallel chunk so that a chunk carries roughly 64k multiply-adds.
inline int64_t spmm_row_grain(int64_t rows, int64_t nnz, int64_t n) {
  const int64_t per_row = std::max<int64_t>(1, (nnz / std::max<int64_t>(rows, 1)) * std::max<int64_t>(n, 1));
  return std::max<int64_t>(1, 65536 / per_row);
}

// Runs kernel(begin, end, &first_bad) over [0, n) in parallel chunks of at
// least `grain` and returns the smallest position any chunk reported (each
// chunk reports its first bad one, or -1), or -1 when none did.
//
// The chunks are taken dynamically, about kChunksPerThread per thread, so a
// thread whose core is shared with another process (or whose rows are
// heavier) does fewer of them; a static split makes every call wait for the
// slowest thread. Every chunk is run (each stops at its own first bad row),
// so the minimum is the first bad position overall.
template <typename Kernel>
int64_t parallel_first_bad(int64_t n, int64_t grain, const Kernel& kernel) {
  constexpr int64_t kChunksPerThread = 4;
  grain = std::max<int64_t>(grain, 1);
  const int64_t max_chunks = (n + grain - 1) / grain;
  const int64_t workers = std::min<int64_t>(max_chunks, at::get_num_threads());
  if (workers <= 1 || at::in_parallel_region()) {
    int64_t bad = -1;
    if (n > 0) kernel(0, n, &bad);
    return bad;
  }
  const int64_t chunks = std::min<int64_t>(max_chunks, kChunksPerThread * workers);
  const int64_t size = (n + chunks - 1) / chunks;
  std::atomic<int64_t> next{0}, first{n};
  at::parallel_for(0, workers, 1, [&](int64_t, int64_t) {
    for (int64_t c = next++; c * size < n; c = next++) {
      const int64_t begin = c * size, end = std::min<int64_t>(n, begin + size);
      int64_t bad = -1;
      kernel(begin, end, &bad);
      if (bad < 0) continue;
      int64_t cur = first.load();
      while (bad < cur && !first.compare_exchange_weak(cur, bad)) {
      }
    }
  });
  const int64_t f = first.load();
  return f == n ? -1 : f;
}

// A kernel's fused checks found bad metadata: the full validator, run now,
// raises the exact message the op gives for that input.
template <typename Validate>
[[noreturn]] void raise_from_validator(const char* op, const Validate& validate) {
  validate();
  TORCH_CHECK(false, op, ": internal error: the kernel flagged the sparse metadata but the validator accepted it");
}

}  // namespace sk
