#include "workload.hpp"

#include <random>

#include <nlohmann/json.hpp>

#include "messages/errc.hpp"
#include "runtime/client/job_tracker.hpp"
#include "tests/runtime/child_process.hpp"

namespace troupe::chaos {

namespace {

using namespace std::chrono_literals;

// The fields a stage script needs, read from its stdin without a JSON tool
// (the input is compact JSON written by the node).
constexpr const char* read_input = R"SH(in=$(cat)
key=$(printf '%s' "$in" | sed -n 's/.*"idempotency_key":"\([^"]*\)".*/\1/p')
attempt=$(printf '%s' "$in" | sed -n 's/.*"attempt":\([0-9]*\).*/\1/p')
)SH";

// Records its side effect under the idempotency key, then, when the harness
// armed it, kills its own node before the node can commit the checkpoint.
constexpr const char* effect_sh = R"SH(
# A node killed while it wrote the input leaves the program an empty or
# cut stdin: like any real stage, it refuses input it cannot read.
[ -n "$key" ] && [ -n "$attempt" ] || { echo "unreadable input" >&2; exit 65; }
now=$(date +%s%3N)
printf '%s %s %s %s\n' "$key" "$attempt" "$CHAOS_NODE" "$now" >> "$CHAOS_DIR/effects"
if mv "$CHAOS_DIR/kill-after-effect" "$CHAOS_DIR/killed-by-$$" 2>/dev/null; then
  printf '%s %s %s\n' "$key" "$CHAOS_NODE" "$now" >> "$CHAOS_DIR/killed-by-$$"
  kill -9 "$PPID"
  sleep 5
fi
echo '{}'
)SH";

// Aborts on its first attempt (killed by a signal: retryable).
constexpr const char* crash_sh = R"SH(
[ "$attempt" = 1 ] && kill -ABRT $$
echo '{}'
)SH";

// Hangs past its 1 s timeout on its first attempt.
constexpr const char* hang_sh = R"SH(
[ "$attempt" = 1 ] && exec sleep 30
echo '{}'
)SH";

// Fails permanently until the harness creates $CHAOS_DIR/fixed.
constexpr const char* fixable_sh = R"SH(
[ -e "$CHAOS_DIR/fixed" ] || { echo "not fixed yet" >&2; exit 1; }
echo '{}'
)SH";

struct weighted {
  const char* pipeline;
  int weight;
};

constexpr weighted mix[] = {{"fx", 40},    {"flaky", 10},   {"park", 5},
                            {"slow", 15},  {"crash", 8},    {"hang", 5},
                            {"poison", 7}, {"fixable", 10}, {"soak", 0}};

std::string exec_stage(const std::string& dir, const std::string& name,
                       const std::string& script, const std::string& extra) {
  return "  { name = \"" + name +
         "\", kind = \"exec\", command = [\"/bin/sh\", \"" + dir + "/" +
         script + "\"]" + extra + " },\n";
}

} // namespace

std::string pipelines_config(const std::string& dir) {
  auto quick =
      std::string{", retry = { initial = \"100ms\", jitter = \"none\" }"};
  return "[pipelines.fx]\nmax_in_flight = 50\nstages = [\n" +
         exec_stage(dir, "a", "effect.sh", ", timeout = \"20s\"") +
         "  { name = \"b\", kind = \"sleep\", duration = \"30ms\" },\n" +
         exec_stage(dir, "c", "effect.sh", ", timeout = \"20s\"") + "]\n" +
         R"([pipelines.flaky]
stages = [{ name = "f", kind = "fault", fail_first = 2, retry = { initial = "200ms", max_attempts = 4 } }]
[pipelines.park]
stages = [{ name = "p", kind = "fault", fail_first = 1, retry = { initial = "12s", jitter = "none" } }]
[pipelines.slow]
stages = [
  { name = "s1", kind = "sleep", duration = "1500ms" },
  { name = "s2", kind = "sleep", duration = "1500ms" },
]
[pipelines.poison]
stages = [{ name = "p", kind = "fault", fail_first = 1, permanent = true }]
[pipelines.crash]
stages = [
)" + exec_stage(dir, "x", "crash.sh", quick) +
         "]\n[pipelines.hang]\nstages = [\n" +
         exec_stage(dir, "h", "hang.sh",
                    quick + ", timeout = \"1s\", cancel_grace = \"1s\"") +
         "]\n[pipelines.fixable]\nstages = [\n" +
         exec_stage(dir, "f", "fixable.sh", "") + "]\n" +
         R"([pipelines.soak]
max_in_flight = 200
stages = [
  { name = "one", kind = "noop" },
  { name = "two", kind = "noop" },
  { name = "three", kind = "noop" },
]
)";
}

void write_stage_scripts(const std::string& dir) {
  auto head = std::string{"#!/bin/sh\n"} + read_input;
  test::write_file(dir + "/effect.sh", head + effect_sh);
  test::write_file(dir + "/crash.sh", head + crash_sh);
  test::write_file(dir + "/hang.sh", head + hang_sh);
  test::write_file(dir + "/fixable.sh", head + fixable_sh);
}

const std::vector<std::string>& pipeline_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (auto& w : mix)
      out.push_back(w.pipeline);
    return out;
  }();
  return names;
}

std::string pipeline_of(const std::string& job_id) {
  return job_id.substr(0, job_id.find('-'));
}

std::vector<planned_job> draw_jobs(std::uint64_t seed, int count, int run_ms) {
  std::mt19937_64 rng{seed * 7919 + 1};
  std::vector<int> weights;
  for (auto& w : mix)
    weights.push_back(w.weight);
  std::discrete_distribution<int> pick{weights.begin(), weights.end()};
  std::vector<planned_job> out;
  for (int n = 0; n < count; ++n) {
    auto p = std::string{mix[pick(rng)].pipeline};
    out.push_back({p + "-" + std::to_string(seed) + "-" + std::to_string(n), p,
                   static_cast<int>(static_cast<long>(run_ms) * n / count)});
  }
  return out;
}

std::vector<planned_job> soak_jobs(std::uint64_t seed, int count, int run_ms) {
  std::vector<planned_job> out;
  out.reserve(static_cast<std::size_t>(count));
  for (int n = 0; n < count; ++n)
    out.push_back({"soak-" + std::to_string(seed) + "-" + std::to_string(n),
                   "soak",
                   static_cast<int>(static_cast<long>(run_ms) * n / count)});
  return out;
}

client_driver::client_driver(std::shared_ptr<nats_client> nats,
                             std::string prefix)
    : nats_(std::move(nats)), prefix_(std::move(prefix)) {}

int client_driver::submit_due(const std::vector<planned_job>& jobs,
                              int now_ms) {
  while (next_ < jobs.size() && jobs[next_].at_ms <= now_ms)
    pending_.push_back(next_++);
  if (pending_.empty())
    return 0;
  std::vector<std::size_t> batch(
      pending_.begin(),
      pending_.begin() + std::min<std::size_t>(pending_.size(), 50));
  std::vector<std::string> bodies;
  for (auto i : batch)
    bodies.push_back(nlohmann::json{
        {"pipeline", jobs[i].pipeline},
        {"key", jobs[i].id},
        {"payload", i}}.dump());
  sends_ += static_cast<int>(batch.size());
  auto replies = submit_requests(*nats_, subjects{prefix_}, bodies, 50, 3s);
  if (!replies)
    return static_cast<int>(batch.size()); // all stay pending: sent again
  std::vector<std::size_t> still;
  for (std::size_t k = 0; k < batch.size(); ++k) {
    auto& r = (*replies)[k];
    if (r.ok) {
      std::lock_guard<std::mutex> guard{mtx_};
      accepted_.insert(jobs[batch[k]].id);
    } else
      still.push_back(batch[k]), ++refused_;
  }
  pending_.erase(pending_.begin(), pending_.begin() + batch.size());
  pending_.insert(pending_.end(), still.begin(), still.end());
  return static_cast<int>(batch.size());
}

std::string client_driver::cancel(const std::string& job_id) {
  auto body = nlohmann::json{{"job_id", job_id}, {"pipeline", "slow"}}.dump();
  auto r = nats_->request(prefix_ + ".admin.any.control.cancel", body, 3000);
  if (!r)
    return "no reply";
  auto j = nlohmann::json::parse(*r, nullptr, false);
  if (!j.is_object())
    return "unreadable reply";
  // The reply says the state the job ended in: a cancel that raced the
  // job's end is answered with that end, not refused.
  if (j.value("ok", false) && j["result"].is_object() &&
      j["result"].value("state", "") == "cancelled") {
    std::lock_guard<std::mutex> guard{mtx_};
    cancelled_.insert(job_id);
  }
  return j.dump();
}

std::set<std::string> client_driver::accepted() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return accepted_;
}

std::size_t client_driver::accepted_count() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return accepted_.size();
}

bool client_driver::was_accepted(const std::string& job_id) const {
  std::lock_guard<std::mutex> guard{mtx_};
  return accepted_.count(job_id) > 0;
}

std::set<std::string> client_driver::cancelled() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return cancelled_;
}

int client_driver::replay_all(const std::string& pipeline) {
  auto body = nlohmann::json{{"all", true}, {"pipeline", pipeline}}.dump();
  auto r = nats_->request(prefix_ + ".admin.any.control.replay", body, 10000);
  if (!r)
    return 0;
  auto j = nlohmann::json::parse(*r, nullptr, false);
  if (!j.is_object() || !j.value("ok", false) || !j["result"].is_object())
    return 0;
  return j["result"].value("replayed", 0);
}

std::string client_driver::tidy() {
  auto r = nats_->request(prefix_ + ".admin.any.control.tidy", "{}", 60000);
  return r ? *r : "no reply (" + describe(r.error()) + ")";
}

} // namespace troupe::chaos
