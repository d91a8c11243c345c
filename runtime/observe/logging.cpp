#include "runtime/observe/logging.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <memory>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "messages/json_text.hpp"

namespace troupe {

std::string json_escape(const std::string& s) {
  // The one JSON string writer of the project, without its quotes (it also
  // keeps log lines valid when a message carries invalid UTF-8).
  auto quoted = json_string(s);
  return quoted.substr(1, quoted.size() - 2);
}

namespace {

// The fields of the line being logged on this thread (the logger is
// synchronous: format() runs on the calling thread, inside log_with).
thread_local const log_fields* current_fields = nullptr;
bool json_mode = false;

/// One JSON object per record: ts (UTC, ms), level, logger, msg.
class json_formatter final : public spdlog::formatter {
public:
  void format(const spdlog::details::log_msg& msg,
              spdlog::memory_buf_t& dest) override {
    using namespace std::chrono;
    auto ms = duration_cast<milliseconds>(msg.time.time_since_epoch()).count();
    std::time_t secs = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char ts[64];
    std::snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                  tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                  tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
    std::string line = "{\"ts\":\"";
    line += ts;
    line += "\",\"level\":\"";
    auto lvl = spdlog::level::to_string_view(msg.level);
    line.append(lvl.data(), lvl.size());
    line += "\",\"logger\":\"";
    line += json_escape(
        std::string(msg.logger_name.data(), msg.logger_name.size()));
    line += "\",\"msg\":\"";
    line += json_escape(std::string(msg.payload.data(), msg.payload.size()));
    line += "\"";
    if (current_fields)
      for (auto& [k, v] : *current_fields) {
        line += ",\"";
        line += json_escape(k);
        line += "\":\"";
        line += json_escape(v);
        line += "\"";
      }
    line += "}\n";
    dest.append(line.data(), line.data() + line.size());
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<json_formatter>();
  }
};

} // namespace

bool setup_logging(const std::string& format, const std::string& level,
                   std::string* error) {
  auto lvl = spdlog::level::info;
  if (!level.empty()) {
    lvl = spdlog::level::from_str(level);
    // from_str maps unknown names to "off"; only accept "off" if asked for.
    if (lvl == spdlog::level::off && level != "off") {
      if (error)
        *error = "unknown log level '" + level +
                 "' (expected trace, debug, info, warn, error, critical, off)";
      return false;
    }
  }
  if (!format.empty() && format != "text" && format != "json") {
    if (error)
      *error = "unknown log format '" + format + "' (expected text or json)";
    return false;
  }
  // Logs go to stderr so that command output on stdout stays parseable.
  spdlog::drop("troupe");
  auto logger = spdlog::stderr_color_mt("troupe");
  json_mode = format == "json";
  if (format == "json")
    logger->set_formatter(std::make_unique<json_formatter>());
  else
    logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%-5l%$ %v");
  logger->set_level(lvl);
  spdlog::set_default_logger(logger);
  return true;
}

void log_with(spdlog::level::level_enum level, const std::string& msg,
              const log_fields& fields) {
  if (!spdlog::should_log(level))
    return;
  if (json_mode) {
    current_fields = &fields;
    spdlog::log(level, "{}", msg);
    current_fields = nullptr;
    return;
  }
  std::string line = msg;
  for (auto& [k, v] : fields)
    if (!v.empty())
      line += " " + k + "=" + v;
  spdlog::log(level, "{}", line);
}

} // namespace troupe
