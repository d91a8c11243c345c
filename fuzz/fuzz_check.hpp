#pragma once

// What the fuzz targets share: a property check that stops the run the way
// a sanitizer does, so that libFuzzer saves the input as a crash.

#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace troupe::fuzz {

/// Aborts with `what` when `ok` is false.
inline void check(bool ok, const char* what) {
  if (ok)
    return;
  std::fprintf(stderr, "fuzz property violated: %s\n", what);
  std::abort();
}

/// The fuzzer's bytes as text.
inline std::string_view as_text(const unsigned char* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

} // namespace troupe::fuzz
