#pragma once

// Text output of `troupe shell` for humans: aligned tables, relative times,
// durations with units, and colour only when writing to a terminal.

#include <cstdint>
#include <string>
#include <vector>

namespace troupe {

struct text_style {
  bool color = false;
};

/// "350ms", "4.2s", "3m10s", "2h5m", "3d4h"; "-" for negative values.
std::string format_duration_ms(std::int64_t ms);

/// "12s ago", "3m ago", "in 4s" relative to `now_ms`; "-" for 0.
std::string format_ago(std::int64_t at_ms, std::int64_t now_ms);

/// Wall clock now in milliseconds since the epoch.
std::int64_t wall_now_ms();

/// Parses "500ms", "30s", "10m", "2h", "7d" into milliseconds; -1 if bad.
std::int64_t parse_duration_ms(const std::string& text);

/// Cuts `s` to `n` characters (counting UTF-8 code points), adding "…".
std::string ellipsize(const std::string& s, std::size_t n);

/// `text` safe to print on a terminal: control characters (C0 but the
/// newline, DEL, C1) become '?', except colour sequences (`ESC [ ... m`).
/// Job ids, tenants and errors are publishers' and stage programs' words:
/// an escape sequence in them must not move the operator's cursor, retitle
/// the window or hide a line.
std::string printable(const std::string& text);

/// Wraps `text` in the ANSI colour for a job state (or a health word)
/// when `style.color`.
std::string paint_state(const std::string& text, const text_style& style);

/// Bold header when colour is on.
std::string paint_header(const std::string& text, const text_style& style);

/// A table whose columns are as wide as their widest cell. Cells may hold
/// ANSI colour codes: they do not count towards the width.
class text_table {
public:
  explicit text_table(std::vector<std::string> header);
  void add(std::vector<std::string> row);
  std::string str(const text_style& style) const;
  bool empty() const { return rows_.empty(); }

private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

} // namespace troupe
