// Output allocation for every op. With SPARSEKERNELS_POISON=1 (the test suite
// sets it) outputs start as NaN (floating) or -1 (integer), so an element a
// kernel forgets to write shows up in the comparison instead of passing by luck.
#pragma once

#include <ATen/ATen.h>

namespace sk {

bool poison_outputs();

inline at::Tensor empty_output(at::IntArrayRef sizes, const at::TensorOptions& options) {
  at::Tensor t = at::empty(sizes, options);
  if (poison_outputs() && t.numel() > 0) {
    if (at::isFloatingType(t.scalar_type()))
      t.fill_(std::numeric_limits<double>::quiet_NaN());
    else
      t.fill_(-1);
  }
  return t;
}

}  // namespace sk
