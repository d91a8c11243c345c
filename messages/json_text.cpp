#include "messages/json_text.hpp"

#include <charconv>

namespace troupe {

namespace {

/// Length of the valid UTF-8 sequence starting at s[i], or 0 if invalid.
std::size_t utf8_length(std::string_view s, std::size_t i) {
  auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  auto cont = [&](std::size_t k) {
    return i + k < s.size() && (b(k) & 0xC0) == 0x80;
  };
  auto c = b(0);
  if (c >= 0xC2 && c <= 0xDF)
    return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2))
      return 0;
    if (c == 0xE0 && b(1) < 0xA0)
      return 0; // overlong
    if (c == 0xED && b(1) > 0x9F)
      return 0; // surrogate
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3))
      return 0;
    if (c == 0xF0 && b(1) < 0x90)
      return 0; // overlong
    if (c == 0xF4 && b(1) > 0x8F)
      return 0; // beyond U+10FFFF
    return 4;
  }
  return 0;
}

/// Printable ASCII that JSON takes as it is.
constexpr bool is_plain(unsigned char c) {
  return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

} // namespace

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  out.reserve(out.size() + s.size() + 2);
  out += '"';
  std::size_t i = 0;
  while (i < s.size()) {
    // Most text needs no escaping: copy each run of it at once.
    auto run = i;
    while (run < s.size() && is_plain(static_cast<unsigned char>(s[run])))
      ++run;
    if (run > i) {
      out.append(s.data() + i, run - i);
      i = run;
      if (i == s.size())
        break;
    }
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      auto n = utf8_length(s, i);
      if (n == 0) {
        out += "\xEF\xBF\xBD"; // U+FFFD
        ++i;
      } else {
        out.append(s.data() + i, n);
        i += n;
      }
      continue;
    }
    switch (c) {
    case '"':
      out += "\\\"";
      break;
    case '\\':
      out += "\\\\";
      break;
    case '\b':
      out += "\\b";
      break;
    case '\f':
      out += "\\f";
      break;
    case '\n':
      out += "\\n";
      break;
    case '\r':
      out += "\\r";
      break;
    case '\t':
      out += "\\t";
      break;
    default:
      if (c < 0x20) {
        out += "\\u00";
        out += hex[c >> 4];
        out += hex[c & 0xF];
      } else {
        out += static_cast<char>(c);
      }
    }
    ++i;
  }
  out += '"';
}

std::string json_string(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

std::string valid_text(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else if (c < 0x80) {
      out += static_cast<char>(c);
      ++i;
    } else if (auto n = utf8_length(s, i); n > 0) {
      out.append(s.data() + i, n);
      i += n;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

void json_object_writer::key(std::string_view k) {
  if (!first_)
    out_ += ',';
  first_ = false;
  append_json_string(out_, k);
  out_ += ':';
}

json_object_writer& json_object_writer::str(std::string_view k,
                                            std::string_view value) {
  key(k);
  append_json_string(out_, value);
  return *this;
}

json_object_writer& json_object_writer::num(std::string_view k,
                                            std::int64_t value) {
  key(k);
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, value);
  out_.append(buf, r.ptr);
  return *this;
}

json_object_writer& json_object_writer::boolean(std::string_view k,
                                                bool value) {
  key(k);
  out_ += value ? "true" : "false";
  return *this;
}

json_object_writer& json_object_writer::raw(std::string_view k,
                                            std::string_view json) {
  key(k);
  out_ += json;
  return *this;
}

json_object_writer json_object_writer::object(std::string_view k) {
  key(k);
  return json_object_writer{out_};
}

} // namespace troupe
