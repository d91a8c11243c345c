#include "messages/json_guard.hpp"

#include "messages/errc.hpp"

namespace troupe {

int json_nesting(std::string_view text, int limit) {
  int depth = 0;
  int deepest = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i; // the escaped character cannot end the string
      else if (c == '"')
        in_string = false;
      continue;
    }
    switch (c) {
    case '"':
      in_string = true;
      break;
    case '[':
    case '{':
      if (++depth > deepest && (deepest = depth) > limit)
        return deepest;
      break;
    case ']':
    case '}':
      --depth;
      break;
    default:
      break;
    }
  }
  return deepest;
}

bool json_has_nul(std::string_view text) {
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (!in_string) {
      in_string = c == '"';
      continue;
    }
    if (c == '"') {
      in_string = false;
    } else if (c == '\\' && i + 1 < text.size()) {
      if (text.compare(i + 1, 5, "u0000") == 0)
        return true;
      ++i; // skip the escaped character (a quote or a backslash)
    }
  }
  return false;
}

caf::expected<nlohmann::json> parse_untrusted_json(std::string_view text,
                                                   int max_depth,
                                                   std::string_view what) {
  if (json_nesting(text, max_depth) > max_depth)
    return make_error(errc::nesting_too_deep,
                      std::string{what} + " is nested deeper than " +
                          std::to_string(max_depth) + " levels");
  // nlohmann's lexer takes a NUL byte for the end of input and would
  // accept what precedes it, ignoring the rest (found by fuzzing).
  if (auto nul = text.find('\0'); nul != std::string_view::npos)
    return make_error(errc::invalid_payload,
                      std::string{what} + " holds a NUL byte at offset " +
                          std::to_string(nul));
  try {
    return nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::exception& e) {
    // parse_error, and out_of_range for numbers beyond a double (-1e400):
    // found by fuzz/untrusted_json_fuzzer; uncaught it ended the process.
    return make_error(errc::invalid_payload,
                      std::string{what} + " is not valid JSON: " + e.what());
  }
}

nlohmann::json parse_json_or_discarded(std::string_view text, int max_depth) {
  if (json_nesting(text, max_depth) > max_depth ||
      text.find('\0') != std::string_view::npos)
    return nlohmann::json(nlohmann::json::value_t::discarded);
  return nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
}

} // namespace troupe
