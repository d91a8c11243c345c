#pragma once

// The web dashboard's files (runtime/ui/assets: HTML, CSS and JavaScript
// modules, no build step), compiled into the binary by embed_assets.cmake,
// and how a path under /ui maps to them. docs/dashboard.md describes the
// pages.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace troupe {

struct ui_asset {
  /// Path under runtime/ui/assets, e.g. "app.js" or "pages/jobs.js".
  std::string_view name;
  std::string_view bytes;
};

/// Every embedded file (generated).
const std::vector<ui_asset>& ui_assets();

struct ui_file {
  std::string_view bytes;
  std::string content_type;
};

/// What GET `path` serves: `/ui/assets/<name>` is that file (nullopt when
/// there is none); any other path under /ui is the page shell
/// (index.html), which routes in the browser, so every page has its own
/// URL. nullopt for paths outside /ui.
std::optional<ui_file> find_ui_file(const std::string& path);

} // namespace troupe
