#include "broker_remedy.hpp"

#include <thread>

#include "verdict.hpp"
#include "workload.hpp"

namespace troupe::chaos {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

bool stream_answers(nats_client& nats, std::chrono::seconds within) {
  auto deadline = steady::now() + within;
  do {
    if (stream_leftovers(nats, {}, nullptr, nullptr) >= 0)
      return true;
    std::this_thread::sleep_for(500ms);
  } while (steady::now() < deadline);
  return false;
}

void drain_stream(nats_client& nats, std::chrono::seconds bound) {
  auto deadline = steady::now() + bound;
  while (steady::now() < deadline &&
         stream_leftovers(nats, pipeline_names()) != 0)
    std::this_thread::sleep_for(250ms);
}

std::string broker_needs_restart(nats_client& nats, const std::string& dir,
                                 bool forced) {
  if (forced)
    return "--restart-broker";
  auto left = stream_leftovers(nats, pipeline_names());
  if (left < 0)
    return "JetStream does not answer for the stream";
  if (left > 0 && !broker_divergence(dir).empty())
    return std::to_string(left) +
           " messages left in the stream after its replicas came apart";
  return "";
}

std::int64_t left_after_divergence(nats_client& nats, const std::string& dir) {
  auto left = stream_leftovers(nats, pipeline_names());
  return left > 0 && !broker_divergence(dir).empty() ? left : 0;
}

} // namespace troupe::chaos
