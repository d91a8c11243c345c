#pragma once

// The report descriptor of an exec stage (descriptor 3, docs/stages.md):
// the lines a program writes there, cut into reports and handed on at a
// bounded rate. Used by the attempt's read loop (exec_attempt.cpp).

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>

namespace troupe {

/// Lines a program writes on descriptor 3, handed on at most one per
/// `every` (the latest wins; docs/stages.md): a program that reports in a
/// tight loop costs its job actor nothing more.
class report_lines {
public:
  using clock = std::chrono::steady_clock;
  static constexpr std::size_t max_line = 128 * 1024;
  static constexpr std::chrono::milliseconds every{50};

  explicit report_lines(const std::function<void(std::string)>& fn) : fn_(fn) {}

  void feed(const char* data, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      if (data[i] != '\n') {
        if (line_.size() < max_line)
          line_ += data[i];
        else
          overlong_ = true; // dropped whole, never cut into bad JSON
        continue;
      }
      if (!overlong_ && line_.find_first_not_of(" \t\r") != std::string::npos)
        pending_ = std::move(line_);
      line_.clear();
      overlong_ = false;
    }
    send(false);
  }

  /// Hands on the pending line if its turn came (or `force`).
  void send(bool force) {
    if (pending_.empty() || !fn_)
      return;
    auto now = clock::now();
    if (!force && now - last_ < every)
      return;
    fn_(std::move(pending_));
    pending_.clear();
    last_ = now;
  }

  bool pending() const { return !pending_.empty(); }

private:
  const std::function<void(std::string)>& fn_;
  std::string line_;
  std::string pending_;
  bool overlong_ = false;
  clock::time_point last_{};
};

} // namespace troupe
