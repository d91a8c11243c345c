#pragma once

// Why a claim took nothing (runtime/pg/pg_store_batch.cpp): the job ended,
// waits in the store, was published again, runs on a live node, or the
// delivery does not match it. Read from the `states` statement's row.

#define PQXX_HAVE_OPTIONAL
#include <pqxx/pqxx>

#include "runtime/pg/pg_store_batch.hpp"

namespace troupe {

/// A claim that took nothing: report the terminal state, or why the
/// delivery is not taken (the store holds the job for later or published
/// it again, another process runs it under a live lease, another
/// pipeline's id, a replay of a life the job is not in). `row` is the
/// `states` statement's.
void report_not_taken(const pqxx::row& row, const store_request& req,
                      store_result& res);

} // namespace troupe
