#include "core/output.h"

#include <cstdlib>
#include <cstring>

namespace sk {

bool poison_outputs() {
  static const bool poison = [] {
    const char* env = std::getenv("SPARSEKERNELS_POISON");
    return env != nullptr && std::strcmp(env, "1") == 0;
  }();
  return poison;
}

}  // namespace sk
