#pragma once

// One PostgreSQL connection owned by one thread, made when first needed and
// dropped on any failure (made again on the next call): the pattern of the
// store's background workers (scheduler, cron).

#include <functional>
#include <memory>
#include <string>
#include <utility>

#define PQXX_HAVE_OPTIONAL
#include <caf/expected.hpp>
#include <pqxx/pqxx>

#include "messages/errc.hpp"
#include "runtime/common/redact.hpp"
#include "runtime/pg/pg_url.hpp"

namespace troupe {

class lazy_connection {
public:
  /// `on_open` prepares statements (and listens) on each new connection;
  /// `on_drop` runs before a connection goes.
  lazy_connection(std::string url,
                  std::function<void(pqxx::connection&)> on_open,
                  std::function<void()> on_drop = {})
      : url_(std::move(url)), on_open_(std::move(on_open)),
        on_drop_(std::move(on_drop)) {}

  ~lazy_connection() { drop(); }

  /// Whether a connection is made (it may still be one the server dropped).
  bool open() const { return conn_ != nullptr; }

  void drop() {
    if (conn_ && on_drop_)
      on_drop_();
    conn_.reset();
  }

  /// Runs `f` on the connection; a failure drops it and comes back as
  /// errc::unavailable (connection lost) or errc::internal, saying `what`.
  template <class F>
  auto run(const char* what, F f)
      -> caf::expected<decltype(f(std::declval<pqxx::connection&>()))> {
    try {
      if (!conn_) {
        conn_ = std::make_unique<pqxx::connection>(with_connect_timeout(url_));
        // A statement never holds its thread (and the node's shutdown) for
        // long, even against a database that stopped answering.
        pqxx::nontransaction{*conn_}.exec("set statement_timeout = 10000");
        on_open_(*conn_);
      }
      return f(*conn_);
    } catch (const pqxx::broken_connection& e) {
      drop();
      return make_error(errc::unavailable,
                        std::string{what} + ": " + redact_text(e.what(), url_));
    } catch (const pqxx::in_doubt_error& e) {
      // The connection went during a commit: whether it took is unknown,
      // and the caller decides as for an outage (chaos seed 302: a node
      // whose first lease renewal met a PostgreSQL restart gave up
      // starting with "internal").
      drop();
      return make_error(errc::unavailable, std::string{what} +
                                               " (its commit's outcome is "
                                               "unknown): " +
                                               redact_text(e.what(), url_));
    } catch (const std::exception& e) {
      // A statement that failed may leave the connection in any state.
      drop();
      return make_error(errc::internal,
                        std::string{what} + ": " + redact_text(e.what(), url_));
    }
  }

private:
  std::string url_;
  std::function<void(pqxx::connection&)> on_open_;
  std::function<void()> on_drop_;
  std::unique_ptr<pqxx::connection> conn_;
};

} // namespace troupe
