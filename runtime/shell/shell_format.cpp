#include "runtime/shell/shell_format.hpp"

#include <cctype>

#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace troupe {

namespace {

/// Display width: UTF-8 code points, ANSI escape sequences excluded.
std::size_t visible_width(const std::string& s) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c == 0x1b) {
      while (i < s.size() && s[i] != 'm')
        ++i;
      continue;
    }
    if ((c & 0xC0) != 0x80)
      ++n;
  }
  return n;
}

std::string paint(const std::string& text, const char* code,
                  const text_style& style) {
  if (!style.color)
    return text;
  return std::string{"\x1b["} + code + "m" + text + "\x1b[0m";
}

} // namespace

std::string format_duration_ms(std::int64_t ms) {
  if (ms < 0)
    return "-";
  char buf[32];
  if (ms < 1000) {
    std::snprintf(buf, sizeof(buf), "%lldms", static_cast<long long>(ms));
  } else if (ms < 60'000) {
    std::snprintf(buf, sizeof(buf), "%.1fs", ms / 1000.0);
  } else if (ms < 3'600'000) {
    std::snprintf(buf, sizeof(buf), "%lldm%02llds",
                  static_cast<long long>(ms / 60'000),
                  static_cast<long long>(ms % 60'000 / 1000));
  } else if (ms < 86'400'000) {
    std::snprintf(buf, sizeof(buf), "%lldh%02lldm",
                  static_cast<long long>(ms / 3'600'000),
                  static_cast<long long>(ms % 3'600'000 / 60'000));
  } else {
    std::snprintf(buf, sizeof(buf), "%lldd%02lldh",
                  static_cast<long long>(ms / 86'400'000),
                  static_cast<long long>(ms % 86'400'000 / 3'600'000));
  }
  return buf;
}

std::string format_ago(std::int64_t at_ms, std::int64_t now_ms) {
  if (at_ms <= 0)
    return "-";
  auto d = now_ms - at_ms;
  if (d < 0)
    return "in " + format_duration_ms(-d);
  return format_duration_ms(d) + " ago";
}

std::int64_t wall_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::int64_t parse_duration_ms(const std::string& text) {
  char* end = nullptr;
  auto v = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || v < 0)
    return -1;
  std::string unit{end};
  double f = unit == "ms"                  ? 1
             : unit == "s" || unit.empty() ? 1000
             : unit == "m"                 ? 60'000
             : unit == "h"                 ? 3'600'000
             : unit == "d"                 ? 86'400'000
                                           : -1;
  if (f < 0)
    return -1;
  return static_cast<std::int64_t>(v * f);
}

std::string ellipsize(const std::string& s, std::size_t n) {
  std::size_t points = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) {
      if (points == n)
        return s.substr(0, i) + "…";
      ++points;
    }
  }
  return s;
}

std::string paint_state(const std::string& text, const text_style& style) {
  if (text == "succeeded" || text == "up" || text == "healthy" ||
      text == "fetching")
    return paint(text, "32", style);
  if (text == "dead_lettered" || text == "down" || text == "unhealthy" ||
      text == "failed")
    return paint(text, "31", style);
  if (text == "retrying" || text == "degraded" || text == "draining" ||
      text == "paused" || text == "hibernating" || text == "waiting_for_slot")
    return paint(text, "33", style);
  if (text == "running")
    return paint(text, "36", style);
  if (text == "cancelled")
    return paint(text, "35", style);
  return text;
}

std::string paint_header(const std::string& text, const text_style& style) {
  return paint(text, "1", style);
}

namespace {

/// Length of a colour sequence `ESC [ digits/; m` at `i`, or 0.
std::size_t sgr_length(const std::string& s, std::size_t i) {
  if (i + 2 >= s.size() || s[i + 1] != '[')
    return 0;
  auto j = i + 2;
  while (j < s.size() &&
         (std::isdigit(static_cast<unsigned char>(s[j])) || s[j] == ';'))
    ++j;
  return j < s.size() && s[j] == 'm' ? j - i + 1 : 0;
}

} // namespace

std::string printable(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c == 0x1b) {
      if (auto n = sgr_length(text, i)) {
        out.append(text, i, n);
        i += n - 1;
      } else {
        out += '?';
      }
    } else if (c == 0xc2 && i + 1 < text.size() &&
               static_cast<unsigned char>(text[i + 1]) >= 0x80 &&
               static_cast<unsigned char>(text[i + 1]) <= 0x9f) {
      out += '?'; // a C1 control (U+0080..U+009F), e.g. CSI
      ++i;
    } else if ((c < 0x20 && c != '\n') || c == 0x7f) {
      out += c == '\t' ? ' ' : '?';
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

text_table::text_table(std::vector<std::string> header)
    : header_(std::move(header)) {}

void text_table::add(std::vector<std::string> row) {
  row.resize(header_.size());
  for (auto& cell : row)
    cell = printable(cell);
  rows_.push_back(std::move(row));
}

std::string text_table::str(const text_style& style) const {
  std::vector<std::size_t> width(header_.size(), 0);
  for (std::size_t c = 0; c < header_.size(); ++c) {
    width[c] = visible_width(header_[c]);
    for (auto& r : rows_)
      width[c] = std::max(width[c], visible_width(r[c]));
  }
  auto line = [&](const std::vector<std::string>& cells, bool head) {
    std::string out;
    for (std::size_t c = 0; c < cells.size(); ++c) {
      auto cell = head ? paint_header(cells[c], style) : cells[c];
      out += cell;
      if (c + 1 < cells.size())
        out.append(width[c] - visible_width(cells[c]) + 2, ' ');
    }
    while (!out.empty() && out.back() == ' ')
      out.pop_back();
    return out + "\n";
  };
  std::string out = line(header_, true);
  for (auto& r : rows_)
    out += line(r, false);
  return out;
}

} // namespace troupe
