#include "core/checks.h"
#include "core/parallel_find.h"
#include "core/validate.h"
#include "kernels/cpu/kernels.h"

namespace sk {

namespace {

constexpr uint32_t kValidGroupMeta = cpu::kSparse24ValidGroupMeta;

inline bool word_is_valid(uint16_t w) {
  return ((kValidGroupMeta >> (w & 0xf)) & 1u) && ((kValidGroupMeta >> ((w >> 4) & 0xf)) & 1u) &&
         ((kValidGroupMeta >> ((w >> 8) & 0xf)) & 1u) && ((kValidGroupMeta >> (w >> 12)) & 1u);
}

}  // namespace

void check_sparse24_header(const char* op, const at::Tensor& values, const at::Tensor& meta, int64_t k) {
  TORCH_CHECK_VALUE(k >= 0, op, ": the number of columns k must be non-negative, got ", k);
  SK_CHECK_DIM(op, values, 2);
  SK_CHECK_DIM(op, meta, 2);
  SK_CHECK_DTYPE(op, meta, at::kShort);
  SK_CHECK_CONTIGUOUS(op, values);
  SK_CHECK_CONTIGUOUS(op, meta);
  SK_CHECK_SAME_DEVICE(op, values, meta);
  const int64_t m = values.size(0), kp = (k + 15) / 16 * 16;
  TORCH_CHECK_VALUE(values.size(1) == kp / 2, op, ": 'values' must have shape [m, roundup(k, 16) / 2] = [", m,
                    ", ", kp / 2, "] for k = ", k, ", got ", values.sizes());
  TORCH_CHECK_VALUE(meta.size(0) == m && meta.size(1) == kp / 16, op,
                    ": 'meta' must have shape [m, roundup(k, 16) / 16] = [", m, ", ", kp / 16, "] for k = ", k,
                    ", got ", meta.sizes());
}

void validate_sparse24(const char* op, const at::Tensor& values, const at::Tensor& meta, int64_t k) {
  check_sparse24_header(op, values, meta, k);
  const int64_t m = values.size(0), kp = (k + 15) / 16 * 16;
  const int64_t words = m * (kp / 16);
  const uint16_t* w = reinterpret_cast<const uint16_t*>(meta.data_ptr());
  const int64_t bad = parallel_find_first_pure(words, 65536, [&](int64_t i) { return !word_is_valid(w[i]); });
  if (bad == words) return;
  int g = 0;
  while ((kValidGroupMeta >> ((w[bad] >> (4 * g)) & 0xf)) & 1u) ++g;
  const int nib = (w[bad] >> (4 * g)) & 0xf;
  const int64_t row = bad / (kp / 16), group = (bad % (kp / 16)) * 4 + g;
  TORCH_CHECK_VALUE(false, op, ": 'meta' of row ", row, ", group ", group, " (columns ", 4 * group, "..",
                    4 * group + 3, ") has positions (", nib & 3, ", ", nib >> 2,
                    "); the two positions of a group must be strictly increasing");
}

}  // namespace sk
