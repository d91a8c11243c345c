#include "messages/trace_context.hpp"

namespace troupe {

namespace {

bool lower_hex(std::string_view s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
      return false;
  return true;
}

bool all_zeros(std::string_view s) {
  return s.find_first_not_of('0') == std::string_view::npos;
}

} // namespace

bool valid_traceparent(std::string_view tp) {
  if (tp.size() != 55 || tp[2] != '-' || tp[35] != '-' || tp[52] != '-')
    return false;
  auto version = tp.substr(0, 2);
  auto trace = tp.substr(3, 32);
  auto parent = tp.substr(36, 16);
  auto flags = tp.substr(53, 2);
  return lower_hex(version) && version != "ff" && lower_hex(trace) &&
         !all_zeros(trace) && lower_hex(parent) && !all_zeros(parent) &&
         lower_hex(flags);
}

bool valid_tracestate(std::string_view ts) {
  if (ts.size() > 512)
    return false;
  for (unsigned char c : ts)
    if (c < 0x20 || c > 0x7e)
      return false;
  return true;
}

std::string trace_id_of(std::string_view traceparent) {
  if (!valid_traceparent(traceparent))
    return {};
  return std::string{traceparent.substr(3, 32)};
}

std::string derived_span_id(std::string_view what) {
  // FNV-1a, 64 bits: stable across builds and nodes (std::hash is not
  // promised to be).
  std::uint64_t h = 14695981039346656037ull;
  for (unsigned char c : what) {
    h ^= c;
    h *= 1099511628211ull;
  }
  if (h == 0)
    h = 1;
  static const char* const hex = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, h >>= 4)
    out[static_cast<std::size_t>(i)] = hex[h & 0xf];
  return out;
}

std::string child_traceparent(std::string_view traceparent,
                              std::string_view span_id) {
  if (!valid_traceparent(traceparent))
    return {};
  return "00-" + std::string{traceparent.substr(3, 32)} + "-" +
         std::string{span_id} + "-" + std::string{traceparent.substr(53, 2)};
}

} // namespace troupe
