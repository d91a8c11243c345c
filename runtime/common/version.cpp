#include "runtime/common/version.hpp"

namespace troupe {

const char* version() noexcept {
  return TROUPE_VERSION;
}

} // namespace troupe
