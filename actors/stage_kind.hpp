#pragma once

// The extension point for what a stage does. A stage kind is created once
// per configured stage (so it can validate its parameters up front) and then
// started once per attempt inside a fresh stage actor.

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <caf/event_based_actor.hpp>
#include <caf/expected.hpp>

#include "config/config.hpp"
#include "config/stage_graph.hpp"
#include "config/stage_params.hpp"
#include "messages/job.hpp"

namespace troupe {

/// Everything one attempt of one stage gets.
struct stage_request {
  std::string job_id;
  std::string pipeline;
  std::string stage;
  std::int32_t stage_index = 0;
  std::int32_t attempt = 1;
  /// `job_id:stage`: stable across attempts, resumes and nodes, so external
  /// side effects can be de-duplicated on it.
  std::string idempotency_key;
  /// The JSON document given to the stage: job id, stage, attempt,
  /// idempotency key, payload, the outputs of the previous stages and the
  /// heartbeat details of the stage's previous attempt
  /// (`heartbeat_details`, when it reported some).
  std::string input;
  /// The job's life (1 + replays).
  std::int32_t life = 1;
  /// The job's callback record from the store (JSON text), given to the
  /// first attempt after a claim; empty otherwise (actors/callback_stage).
  std::string callback;
  /// W3C trace context for work done by this attempt: the job's trace, with
  /// the attempt's span as parent (messages/trace_context.hpp); empty when
  /// the job has none. `exec` passes them as TRACEPARENT and TRACESTATE.
  std::string traceparent;
  std::string tracestate;
};

/// One kind of stage work (noop, sleep, exec, a C++ kind, ...).
class stage_kind {
public:
  virtual ~stage_kind() = default;

  /// Starts one attempt in the stage actor `self`. Must not block: deliver a
  /// `stage_outcome` to `self` (at once, delayed, or from another thread for
  /// blocking work), or throw. Progress and heartbeats go to `self` as
  /// `(progress_atom, std::string report)` before the outcome, one JSON
  /// object each (docs/stages.md). Anything to undo when the attempt is
  /// abandoned (timeout, cancel) is registered with `self->attach_functor`.
  /// Thread-safe: attempts of many jobs start concurrently.
  virtual void start(caf::event_based_actor* self,
                     const stage_request& req) const = 0;

  /// True if an attempt may wait after start() for a resource (a thread, a
  /// concurrency slot) before its work begins. Waiting is queueing, not
  /// execution: such a kind sends `started_atom` to `self` when the work
  /// begins, and the attempt's timeout and duration count from then. False:
  /// the attempt begins with start().
  virtual bool queues_attempts() const { return false; }

  /// True if an attempt hands its wait to the store (a callback stage):
  /// the stage's `timeout` is then that wait's deadline, kept by the
  /// store, and no timer runs here (a timer would keep the job actor in
  /// memory for the whole wait).
  virtual bool waits_in_store() const { return false; }
};

/// A flag that turns true once the attempt running in `self` is over for
/// any reason: abandoned (cancel, timeout, heartbeat timeout, the node
/// stopping) or after its outcome. For work a kind hands to another thread,
/// which cannot see its stage actor go: check it between steps and stop.
/// Made on first use; call it from start(), on the actor's thread.
std::shared_ptr<const std::atomic<bool>>
cancellation_flag(caf::event_based_actor* self);

/// Builds a stage kind from a stage's configuration, or says what is wrong.
using stage_kind_factory =
    std::function<caf::expected<std::shared_ptr<const stage_kind>>(
        const stage_config&)>;

/// Maps kind names to factories. Built-in kinds come from
/// builtin_stage_registry(); a node adds `exec` and any C++ kinds.
class stage_registry {
public:
  /// Registers (or replaces) a kind. Its schema says which parameters the
  /// config loader accepts for it; without one (`open`), any, and the
  /// factory judges them when the node starts.
  void add(std::string kind, stage_kind_factory factory,
           stage_kind_schema schema = {{}, {}, true});

  /// What each kind accepts, sorted by kind: the config loader's catalogue.
  std::vector<stage_kind_schema> schemas() const;

  bool contains(const std::string& kind) const;

  /// Names of all registered kinds, sorted.
  std::vector<std::string> kinds() const;

  /// Builds the kind for one configured stage.
  caf::expected<std::shared_ptr<const stage_kind>>
  make(const stage_config& cfg) const;

private:
  std::map<std::string, stage_kind_factory> factories_;
  std::map<std::string, stage_kind_schema> schemas_;
};

/// A registry with `noop`, `sleep` and `fault`.
stage_registry builtin_stage_registry();

/// A pipeline ready to run: its configuration plus one stage kind per stage.
struct pipeline_def {
  pipeline_config config;
  std::vector<std::shared_ptr<const stage_kind>> kinds;
  /// Which stages need which (config/stage_graph.hpp).
  stage_graph graph;
};

/// Builds every stage of a pipeline; the error names the failing stage.
caf::expected<std::shared_ptr<const pipeline_def>>
make_pipeline_def(const pipeline_config& cfg, const stage_registry& reg);

} // namespace troupe
