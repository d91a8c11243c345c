#pragma once

// A pipeline's stages as a graph (docs/workflows.md, "Parallel stages"):
// each stage runs after the stages it names in `after`, or after the stage
// listed before it when it names none. Stages whose inputs are ready run at
// the same time. A plain list is the graph where every stage needs the one
// before it, and runs exactly as before.

#include <cstdint>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace troupe {

/// What is wrong with a pipeline's graph, and which stage says so.
struct stage_graph_problem {
  /// Index of the stage whose `after` is wrong.
  std::int32_t stage = 0;
  std::string message;
};

struct stage_graph {
  /// For each stage, the stages it needs (indices, ascending).
  std::vector<std::vector<std::int32_t>> needs;
  /// For each stage, every stage it needs directly or through others
  /// (ascending): the outputs its input carries under `previous`.
  std::vector<std::vector<std::int32_t>> ancestors;
  /// True if some stage needs something other than the stage before it:
  /// the job actor then runs the stages as a graph (job_graph.cpp).
  bool parallel = false;

  /// Stages that may start once `done` (a flag per stage) holds, excluding
  /// those done already.
  std::vector<std::int32_t> ready(const std::vector<bool>& done) const;
};

/// Resolves the stages' `after` names. Problems: an unknown name, a stage
/// naming itself or a name twice, a cycle (named stage by stage), a stage
/// needing one listed after it, and a last stage that does not come after
/// every other (its output is the job's result).
std::vector<stage_graph_problem> check_stage_graph(const pipeline_config& pc);

/// The graph of a pipeline that check_stage_graph accepts.
stage_graph make_stage_graph(const pipeline_config& pc);

} // namespace troupe
