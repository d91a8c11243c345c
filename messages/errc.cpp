#include "messages/errc.hpp"

#include <caf/make_message.hpp>
#include <caf/message.hpp>

namespace troupe {

const char* to_string(errc x) noexcept {
  switch (x) {
  case errc::none:
    return "none";
  case errc::stale_epoch:
    return "stale_epoch";
  case errc::unknown_job:
    return "unknown_job";
  case errc::unknown_pipeline:
    return "unknown_pipeline";
  case errc::invalid_payload:
    return "invalid_payload";
  case errc::payload_too_large:
    return "payload_too_large";
  case errc::unavailable:
    return "unavailable";
  case errc::already_terminal:
    return "already_terminal";
  case errc::internal:
    return "internal";
  case errc::nesting_too_deep:
    return "nesting_too_deep";
  case errc::key_too_long:
    return "key_too_long";
  case errc::unknown_tenant:
    return "unknown_tenant";
  case errc::rate_limited:
    return "rate_limited";
  case errc::job_exists:
    return "job_exists";
  case errc::conflict:
    return "conflict";
  case errc::unstorable:
    return "unstorable";
  case errc::superseded:
    return "superseded";
  }
  return "internal";
}

caf::error make_error(errc code) {
  return caf::error{static_cast<std::uint8_t>(code), errc_category::value};
}

caf::error make_error(errc code, std::string message) {
  return caf::error{static_cast<std::uint8_t>(code), errc_category::value,
                    caf::make_message(std::move(message))};
}

errc code_of(const caf::error& err) noexcept {
  if (!err)
    return errc::none;
  if (err.category() != errc_category::value)
    return errc::internal;
  return static_cast<errc>(err.code());
}

std::string describe(const caf::error& err) {
  if (!err)
    return "none";
  std::string out;
  if (err.category() == errc_category::value)
    out = to_string(static_cast<errc>(err.code()));
  else
    out = caf::to_string(err.category()) + ":" + std::to_string(err.code());
  const auto& ctx = err.context();
  if (ctx.match_elements<std::string>()) {
    out += ": ";
    out += ctx.get_as<std::string>(0);
  } else if (!ctx.empty()) {
    out += ": ";
    out += caf::to_string(ctx);
  }
  return out;
}

std::string message_of(const caf::error& err) {
  const auto& ctx = err.context();
  if (ctx.match_elements<std::string>())
    return ctx.get_as<std::string>(0);
  return describe(err);
}

} // namespace troupe
