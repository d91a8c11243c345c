#pragma once

// The store protocol as a typed actor interface: the job actor's system of
// record, implemented by runtime's PostgreSQL store (runtime/pg/pg_store.hpp)
// and by the in-memory store of the tests (tests/actors/memory_store.hpp).
// The compiler checks both against it.
//
//   (claim_atom, job_spec) -> job_snapshot   take the job: epoch + 1;
//                                            errc::conflict if the job
//                                            belongs to another pipeline,
//                                            errc::unstorable if the spec
//                                            cannot be stored
//   job_write              -> ok_atom        commit, conditional on epoch;
//                                            errc::stale_epoch if fenced out;
//                                            with `create`: insert at epoch 1,
//                                            errc::job_exists if it exists;
//                                            errc::unavailable if the store
//                                            is down (the write is retried)

#include <caf/typed_actor.hpp>

#include "actors/atoms.hpp"
#include "messages/job.hpp"

namespace troupe {

/// Handle of a store actor.
using store_actor =
    caf::typed_actor<caf::replies_to<claim_atom, job_spec>::with<job_snapshot>,
                     caf::replies_to<job_write>::with<ok_atom>>;

} // namespace troupe
