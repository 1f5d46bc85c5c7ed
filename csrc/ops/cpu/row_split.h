// Splitting rows into parallel parts of about equal cost, for kernels whose
// rows cost very different amounts (power-law sparsity: SDDMM, SpGEMM).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include <ATen/Parallel.h>

namespace sk {

// Boundaries b[0] = 0 < b[1] < ... < b[P] = m of at most parts_per_thread *
// at::get_num_threads() parts of rows [0, m), each of about equal cost and
// (unless P == 1) at least about min_cost. cost_prefix(i) is the cost of rows
// [0, i): non-decreasing, cost_prefix(0) == 0. Needs m >= 1.
template <typename F>
std::vector<int64_t> split_rows_by_cost(int64_t m, int64_t min_cost, F cost_prefix, int64_t parts_per_thread = 1) {
  const int64_t total = cost_prefix(m);
  const int64_t parts = std::max<int64_t>(
      1, std::min<int64_t>({parts_per_thread * int64_t(at::get_num_threads()),
                            total / std::max<int64_t>(min_cost, 1), m}));
  std::vector<int64_t> bounds{0};
  for (int64_t t = 1; t < parts; ++t) {
    const int64_t target = int64_t(static_cast<long double>(total) * t / parts);
    int64_t lo = bounds.back(), hi = m;  // smallest i with cost_prefix(i) >= target
    while (lo < hi) {
      const int64_t mid = lo + (hi - lo) / 2;
      if (cost_prefix(mid) < target)
        lo = mid + 1;
      else
        hi = mid;
    }
    if (lo > bounds.back() && lo < m) bounds.push_back(lo);
  }
  bounds.push_back(m);
  return bounds;
}

// Runs f(row_begin, row_end) on the parts of `bounds`, one part per thread.
template <typename F>
void parallel_for_row_parts(const std::vector<int64_t>& bounds, const F& f) {
  const int64_t parts = int64_t(bounds.size()) - 1;
  at::parallel_for(0, parts, 1, [&](int64_t pb, int64_t pe) { f(bounds[pb], bounds[pe]); });
}

}  // namespace sk
