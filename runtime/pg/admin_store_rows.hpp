#pragma once

// Internal to the admin store (runtime/pg/admin_store*.cpp): how rows become
// the JSON the admin verbs answer with.

#include <cstdint>
#include <string>

#define PQXX_HAVE_OPTIONAL
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

namespace troupe {

/// A jsonb column as JSON, cut to a preview when larger than `max` bytes
/// (unless max is 0). Sets `*cut` when it cut.
inline nlohmann::json value_of(const pqxx::field& f, std::size_t max,
                               bool* cut) {
  if (f.is_null())
    return nullptr;
  std::string text = f.c_str();
  if (max > 0 && text.size() > max) {
    *cut = true;
    return nlohmann::json{{"truncated", true},
                          {"bytes", text.size()},
                          {"preview", text.substr(0, max)}};
  }
  auto j = nlohmann::json::parse(text, nullptr, false);
  return j.is_discarded() ? nlohmann::json(text) : j;
}

inline std::int64_t ms_or(const pqxx::field& f, std::int64_t dflt = 0) {
  return f.is_null() ? dflt : f.as<std::int64_t>();
}

/// Everything about one job for the `job` verb: its row, its stages with
/// their attempts and checkpoints, its last 500 events and its dead letter.
/// Values over `max` bytes are cut to previews (0: never).
nlohmann::json read_job(pqxx::read_transaction& t, const std::string& job_id,
                        std::size_t max);

} // namespace troupe
