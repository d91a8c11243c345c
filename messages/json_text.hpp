#pragma once

// Writing JSON text directly, for the hot paths (events, store batches,
// stage input) where building an nlohmann::json tree per message showed up
// as the node's largest cost (docs/benchmarks.md). The output is exactly
// what nlohmann::json::dump() prints for the same object when keys are
// written in sorted order, so wire bodies do not change; invalid UTF-8 is
// replaced by U+FFFD instead of throwing.

#include <cstdint>
#include <string>
#include <string_view>

namespace troupe {

/// Appends `s` as a quoted, escaped JSON string.
void append_json_string(std::string& out, std::string_view s);

/// `s` as a quoted, escaped JSON string.
std::string json_string(std::string_view s);

/// `s` with invalid UTF-8 and NUL bytes replaced by U+FFFD: text from the
/// outside (a stage's stderr cut at 2 KiB) that PostgreSQL's text and jsonb
/// columns must accept.
std::string valid_text(std::string_view s);

/// Appends one JSON object, field by field; the caller writes keys in the
/// order they should appear (sorted, to match nlohmann's std::map objects).
class json_object_writer {
public:
  explicit json_object_writer(std::string& out) : out_(out) { out_ += '{'; }
  json_object_writer(const json_object_writer&) = delete;
  json_object_writer& operator=(const json_object_writer&) = delete;

  json_object_writer& str(std::string_view key, std::string_view value);
  json_object_writer& num(std::string_view key, std::int64_t value);
  json_object_writer& boolean(std::string_view key, bool value);
  /// `json` must be valid JSON text already (a payload, a stage output).
  json_object_writer& raw(std::string_view key, std::string_view json);
  /// Starts a nested object under `key`; write its fields on the returned
  /// writer and close() it before going on with this one.
  json_object_writer object(std::string_view key);
  void close() { out_ += '}'; }

private:
  void key(std::string_view k);
  std::string& out_;
  bool first_ = true;
};

/// Appends a JSON array of objects or strings (a record set for a store
/// statement, an id list).
class json_array_writer {
public:
  /// Starts the next element, an object; close() it before the next one.
  json_object_writer object() {
    comma();
    return json_object_writer{text_};
  }
  void str(std::string_view value) {
    comma();
    append_json_string(text_, value);
  }
  bool empty() const { return first_; }
  /// The array's text; the writer is empty again afterwards.
  std::string done() {
    text_ += ']';
    std::string out = std::move(text_);
    text_ = "[";
    first_ = true;
    return out;
  }

private:
  void comma() {
    if (!first_)
      text_ += ',';
    first_ = false;
  }
  std::string text_ = "[";
  bool first_ = true;
};

} // namespace troupe
