#include "config/config.hpp"

namespace troupe {

const char* to_string(jitter_kind x) noexcept {
  switch (x) {
  case jitter_kind::none:
    return "none";
  case jitter_kind::full:
    return "full";
  case jitter_kind::equal:
    return "equal";
  }
  return "none";
}

} // namespace troupe
