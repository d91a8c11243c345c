#pragma once

// The main job's driver: acts as an outside publisher, submits demo jobs
// through the request/reply API, follows their events, shows progress and
// prints a summary.

#include <string>

namespace troupe {

struct demo_options {
  std::string nats_url;
  std::string prefix = "troupe";
  std::string pipeline = "demo";
  int jobs = 2000;
  /// Every Nth job carries {"poison": true} and is dead-lettered (0: none).
  int poison_every = 250;
  /// Longest wait for all jobs to finish.
  int timeout_s = 600;
};

/// Runs the demo; returns 0 when every job reached a terminal state.
int run_demo(const demo_options& opts);

} // namespace troupe
