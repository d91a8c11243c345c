#pragma once

// One entry per pipeline a node runs: its definition, the intake that pulls
// its jobs from JetStream, and the supervisor that runs them.

#include <memory>
#include <string>
#include <vector>

#include <caf/actor.hpp>

#include "actors/stage_kind.hpp"
#include "runtime/node/jetstream_intake.hpp"

namespace troupe {

struct node_pipeline {
  std::string name;
  std::shared_ptr<const pipeline_def> def;
  std::unique_ptr<jetstream_intake> intake;
  caf::actor supervisor;
};

using node_pipelines = std::vector<node_pipeline>;

} // namespace troupe
