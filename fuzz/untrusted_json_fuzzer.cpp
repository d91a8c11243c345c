// Fuzzes parse_untrusted_json, the reader of admin request bodies and of
// stage output, with json_nesting's byte count checked against the parsed
// tree: whatever it accepts nests no deeper than the limit (measured
// without recursion), so nothing recursive that runs later can overflow.

#include <vector>

#include "fuzz/fuzz_check.hpp"
#include "messages/json_guard.hpp"

namespace {

/// Depth of `j`, with an explicit stack.
int depth_of(const nlohmann::json& j) {
  std::vector<std::pair<const nlohmann::json*, int>> todo{{&j, 0}};
  int deepest = 0;
  while (!todo.empty()) {
    auto [node, d] = todo.back();
    todo.pop_back();
    if (!node->is_structured())
      continue;
    deepest = std::max(deepest, d + 1);
    for (const auto& child : *node)
      todo.emplace_back(&child, d + 1);
  }
  return deepest;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data,
                                      std::size_t size) {
  using troupe::fuzz::check;
  auto text = troupe::fuzz::as_text(data, size);
  constexpr int limit = 16;
  auto parsed = troupe::parse_untrusted_json(text, limit, "request body");
  if (!parsed)
    return 0;
  check(depth_of(*parsed) <= limit, "accepted JSON deeper than the limit");
  check(depth_of(*parsed) == troupe::json_nesting(text, limit),
        "the byte count and the tree disagree on depth");
  auto again = troupe::parse_json_or_discarded(parsed->dump(), limit);
  check(!again.is_discarded() && again == *parsed,
        "accepted JSON does not survive dump and parse");
  return 0;
}
