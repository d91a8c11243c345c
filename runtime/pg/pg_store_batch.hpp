#pragma once

// The store's group commit, one batch at a time
// (runtime/pg/pg_store_batch.cpp); runtime/pg/pg_store.cpp gathers the batches
// and runs them on writer threads.

#include <cstdint>
#include <string>
#include <vector>

#define PQXX_HAVE_OPTIONAL
#include <caf/meta/type_name.hpp>
#include <pqxx/pqxx>

#include "messages/job.hpp"
#include "runtime/pg/pg_store.hpp"

namespace troupe {

/// One request waiting for its batch.
struct store_request {
  bool is_claim = false;
  job_spec spec;
  job_write write;
};

/// The outcome of one request, computed by a writer thread.
struct store_result {
  std::uint8_t code = 0; ///< errc
  std::string message;
  job_snapshot snapshot;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, store_result& x) {
  return f(caf::meta::type_name("store_result"), x.code, x.message, x.snapshot);
}

/// Prepares the statements run_batch uses, on a new connection.
void prepare_store_statements(pqxx::connection& c);

/// How long from now a write's next attempt (or run) is due (ms, ≥ 0):
/// the wait it was given less the steady time since (`now_ns` on the same
/// clock as job_write::decided_ns), or, for an absolute time from outside,
/// next_attempt_at_ms less the node's wall clock (`wall_now_ms`).
/// PostgreSQL adds it to its own now().
std::int64_t write_wait_ms(const job_write& x, std::int64_t now_ns,
                           std::int64_t wall_now_ms);

/// Runs the claims and writes of one batch in one transaction. Fills one
/// result per request. Throws on database errors.
void run_batch(pqxx::work& w, const std::vector<store_request>& reqs,
               std::vector<store_result>& out, const pg_store_options& opts);

} // namespace troupe
