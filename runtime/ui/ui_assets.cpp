#include "runtime/ui/ui_assets.hpp"

namespace troupe {

namespace {

bool ends_with(std::string_view s, std::string_view tail) {
  return s.size() >= tail.size() &&
         s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

std::string content_type_of(std::string_view name) {
  if (ends_with(name, ".js"))
    return "text/javascript; charset=utf-8";
  if (ends_with(name, ".css"))
    return "text/css; charset=utf-8";
  if (ends_with(name, ".html"))
    return "text/html; charset=utf-8";
  if (ends_with(name, ".svg"))
    return "image/svg+xml";
  return "application/octet-stream";
}

std::optional<ui_file> asset(std::string_view name) {
  for (const auto& a : ui_assets())
    if (a.name == name)
      return ui_file{a.bytes, content_type_of(a.name)};
  return std::nullopt;
}

} // namespace

std::optional<ui_file> find_ui_file(const std::string& path) {
  const std::string_view p{path};
  if (p != "/ui" && p.rfind("/ui/", 0) != 0)
    return std::nullopt;
  const std::string_view assets = "/ui/assets/";
  if (p.rfind(assets, 0) == 0) {
    auto name = p.substr(assets.size());
    // Names are looked up, never opened: ".." cannot reach a file.
    if (name == "index.html")
      return std::nullopt;
    return asset(name);
  }
  return asset("index.html");
}

} // namespace troupe
