#pragma once

// Publishes committed job events on `<prefix>.events.<pipeline>.<job_id>`
// and dead-letter notices on `<prefix>.dlq.<pipeline>`. Best effort by
// design: job events are in PostgreSQL's event log, stage events in the
// attempt history; NATS carries the live view (nats.c buffers while
// reconnecting).
//
// Also the one place where job metrics are counted and job lines logged
// (with job_id, pipeline, stage, attempt, node, correlation_id fields).
//
// Accepts: job_event, or std::vector<job_event> (published in order)

#include <memory>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include "runtime/nats/nats_client.hpp"
#include "runtime/observe/metrics.hpp"

namespace troupe {

/// Spawns the publisher.
caf::actor spawn_event_publisher(caf::actor_system& sys,
                                 std::shared_ptr<nats_client> nats,
                                 subjects subj,
                                 std::shared_ptr<job_metrics> metrics = {});

} // namespace troupe
