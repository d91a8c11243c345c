#pragma once

// Internal to admin_store's sources: its connection and the one way every
// verb uses it (a lost connection is retried once, then reported).

#define PQXX_HAVE_OPTIONAL
#include <pqxx/pqxx>

#include "messages/admin_failure.hpp"
#include "runtime/pg/admin_store.hpp"

namespace troupe {

/// Wraps pqxx::connection (an alias in libpqxx 6, so not forward-declared).
struct admin_store::connection_box {
  explicit connection_box(const std::string& url) : c(url) {}
  pqxx::connection c;
};

template <class F>
inline auto admin_store::with_connection(const char* what, F&& fn) {
  std::lock_guard<std::mutex> guard{mtx_};
  for (int attempt = 1;; ++attempt) {
    try {
      if (!conn_ || !conn_->c.is_open())
        conn_ = std::make_unique<connection_box>(url_);
      return fn(conn_->c);
    } catch (const pqxx::broken_connection& e) {
      conn_.reset();
      if (attempt == 2)
        throw admin_failure("unavailable",
                            std::string{what} +
                                ": PostgreSQL is unreachable: " + e.what());
    } catch (const pqxx::in_doubt_error& e) {
      // Not tried again: the change may have been made.
      conn_.reset();
      throw admin_failure("unavailable",
                          std::string{what} +
                              ": the connection to PostgreSQL was lost while "
                              "committing; whether it took is unknown: " +
                              e.what());
    } catch (const admin_failure&) {
      throw;
    } catch (const std::exception& e) {
      throw admin_failure("store_error", std::string{what} + ": " + e.what());
    }
  }
}

} // namespace troupe
