// Parallel search for the first offending position, used by the validators and
// packers so that an error message names the same (smallest) index whatever the
// thread count.
#pragma once

#include <atomic>
#include <cstdint>

#include <ATen/Parallel.h>

namespace sk {

// Smallest i in [0, n) with bad(i) true, or n if there is none. Chunks of
// `grain` indices run in parallel; a chunk stops at its first hit or once an
// earlier hit is known.
template <typename Pred>
int64_t parallel_find_first(int64_t n, int64_t grain, const Pred& bad) {
  std::atomic<int64_t> first{n};
  at::parallel_for(0, n, grain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      if (i >= first.load(std::memory_order_relaxed)) return;
      if (bad(i)) {
        int64_t cur = first.load();
        while (i < cur && !first.compare_exchange_weak(cur, i)) {
        }
        return;
      }
    }
  });
  return first.load();
}

}  // namespace sk
