#pragma once

// The COPY path of the store's group commit (runtime/pg/pg_store.cpp): the
// checkpoints, attempts and events of jobs created in a batch.

#include <vector>

#define PQXX_HAVE_OPTIONAL
#include <pqxx/pqxx>

#include "messages/job.hpp"

namespace troupe {

/// Checkpoints, attempts and events of jobs this transaction created, by
/// COPY (no conflict is possible: their job rows are new in `w`).
void copy_children(pqxx::work& w, const std::vector<const job_write*>& jobs);

} // namespace troupe
