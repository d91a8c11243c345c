#pragma once

// Publishes committed job events on `<prefix>.events.<pipeline>.<job_id>`
// and dead-letter notices on `<prefix>.dlq.<pipeline>`. Best effort by
// design: job events are in PostgreSQL's event log, stage events in the
// attempt history; NATS carries the live view (nats.c buffers while
// reconnecting).
//
// Also the one place where job metrics are counted, job lines logged
// (with job_id, pipeline, stage, attempt, node, correlation_id fields) and
// the spans of traced jobs handed to the OTLP exporter.
//
// Accepts: job_event, or std::vector<job_event> (published in order)

#include <memory>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include "runtime/nats/nats_client.hpp"
#include "runtime/observe/metrics.hpp"
#include "runtime/observe/span_exporter.hpp"

namespace troupe {

/// Spawns the publisher.
caf::actor spawn_event_publisher(caf::actor_system& sys,
                                 std::shared_ptr<nats_client> nats,
                                 subjects subj,
                                 std::shared_ptr<job_metrics> metrics = {},
                                 std::shared_ptr<span_exporter> spans = {});

} // namespace troupe
