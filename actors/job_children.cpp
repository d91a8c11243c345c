#include "actors/job_actor_internal.hpp"

#include <nlohmann/json.hpp>

#include "messages/errc.hpp"

// Child jobs seen from the parent (docs/workflows.md). A stage with
// `spawn = true` whose output has a `spawn` array asks for child jobs: they
// are created in the store with the write that parks the parent
// (`waiting`), and the parent's delivery is acked. Nothing waits on any
// node. The store resumes the parent when its last child's terminal write
// commits (the join is counted in that transaction, never in memory); the
// claim then brings every child's outcome, and the stage's output becomes
// their results in spawn order.

namespace troupe::job_detail {

namespace {

using json = nlohmann::json;

/// Longest parent id that leaves room for `/<stage>/<index>` in a child's
/// id (job ids are at most 256 characters).
constexpr std::size_t max_parent_id = 180;

std::int64_t field_or(const json& rec, const char* key, std::int64_t dflt) {
  auto i = rec.is_object() ? rec.find(key) : rec.end();
  return rec.is_object() && i != rec.end() && i->is_number_integer()
             ? i->get<std::int64_t>()
             : dflt;
}

/// A child's id: its parent's, its stage's name and its place, so that the
/// same spawn again (a retry after a lost commit, a replay) names the same
/// children and creates none twice.
std::string child_id(self_ptr self, std::size_t i) {
  auto& st = self->state;
  return st.spec.job_id + "/" + st.pipe->config.stages[st.stage].name + "/" +
         std::to_string(i);
}

/// Reads one entry of `spawn`; returns what is wrong with it ("" if fine).
std::string read_child(self_ptr self, const json& entry, std::size_t i,
                       spawn_child& out) {
  auto& st = self->state;
  auto where = "spawn[" + std::to_string(i) + "]";
  if (!entry.is_object())
    return where + " must be an object like {\"pipeline\": \"p\", "
                   "\"payload\": ...}";
  auto p = entry.find("pipeline");
  if (p == entry.end() || !p->is_string())
    return where + ".pipeline must be a pipeline name (string)";
  out.pipeline = p->get<std::string>();
  if (!st.deps->pipelines.empty() && !st.deps->pipelines.count(out.pipeline))
    return where + ".pipeline: unknown pipeline '" + out.pipeline + "'";
  if (auto pl = entry.find("payload"); pl != entry.end())
    out.payload = pl->dump();
  if (auto pr = entry.find("priority"); pr != entry.end()) {
    if (!pr->is_number_integer())
      return where + ".priority must be an integer";
    out.priority = pr->get<std::int32_t>();
  }
  out.job_id = child_id(self, i);
  return {};
}

/// The children a stage's output asks for, or what is wrong with them.
caf::expected<std::vector<spawn_child>> read_spawn(self_ptr self,
                                                   const json& list) {
  auto& st = self->state;
  const auto& sc = st.pipe->config.stages[st.stage];
  if (!list.is_array())
    return make_error(errc::invalid_payload,
                      "spawn must be an array of child jobs");
  if (list.size() > static_cast<std::size_t>(sc.max_children))
    return make_error(errc::invalid_payload,
                      "spawn asks for " + std::to_string(list.size()) +
                          " children; the stage allows " +
                          std::to_string(sc.max_children) + " (max_children)");
  if (st.spec.job_id.size() > max_parent_id)
    return make_error(errc::invalid_payload,
                      "job id is too long to name children (at most " +
                          std::to_string(max_parent_id) + " characters)");
  std::vector<spawn_child> out(list.size());
  for (std::size_t i = 0; i < list.size(); ++i)
    if (auto why = read_child(self, list[i], i, out[i]); !why.empty())
      return make_error(errc::invalid_payload, why);
  return out;
}

/// The wait's record: the store keeps it on the parent's row until the
/// stage completes (job_snapshot::children).
std::string wait_record(self_ptr self, std::size_t total) {
  auto& st = self->state;
  json rec{{"stage_index", st.stage},
           {"life", st.life},
           {"policy", st.pipe->config.stages[st.stage].on_child_failure},
           {"total", total},
           {"since_ms", st.attempt_started_ms}};
  return rec.dump();
}

/// Commits `waiting` with the children (and the spawning attempt), then
/// leaves the job to the store.
void park_for_children(self_ptr self, std::vector<spawn_child> kids) {
  auto& st = self->state;
  end_speculation(self); // if speculating, the write below creates the job
  ++st.seq;              // drops the attempt's timeout and heartbeat timers
  enter_phase(self, job_phase::handing_to_store);
  auto w = make_write(self, job_state::waiting);
  w.attempts.push_back(finished_attempt(self, true));
  w.children = wait_record(self, kids.size());
  auto ev = make_event(self, event_type::job_spawned);
  ev.children = static_cast<std::int64_t>(kids.size());
  w.spawn = std::move(kids);
  auto seq = st.seq;
  commit(self, std::move(w), {std::move(ev)}, [self, seq] {
    if (seq == self->state.seq &&
        self->state.phase == job_phase::handing_to_store)
      report_waiting_in_store(self);
  });
}

struct join_counts {
  std::size_t succeeded = 0;
  std::size_t failed = 0;
  std::size_t open = 0;
  std::string first_failure;
};

join_counts count_results(const json& results) {
  join_counts c;
  for (const auto& r : results) {
    auto state = r.is_object() ? r.value("state", "") : std::string{};
    if (state == "succeeded") {
      ++c.succeeded;
    } else if (state == "dead_lettered" || state == "cancelled") {
      ++c.failed;
      if (c.first_failure.empty()) {
        auto err = r.find("error");
        c.first_failure =
            r.value("job_id", "") + " " + state +
            (err != r.end() && err->is_string() ? ": " + err->get<std::string>()
                                                : std::string{});
      }
    } else {
      ++c.open;
    }
  }
  return c;
}

/// Attempts of the current stage in this life already on record: the
/// join is the next one.
std::int32_t attempts_so_far(self_ptr self, const job_snapshot& snap) {
  auto& st = self->state;
  std::int32_t n = 0;
  for (const auto& a : snap.attempts)
    if (a.life == st.life && a.stage_index == st.stage)
      n = std::max(n, a.attempt);
  return n;
}

/// Some children are not terminal (the parent was made due by hand): wait
/// again, with the same record.
void wait_again(self_ptr self, std::string record) {
  auto& st = self->state;
  ++st.seq;
  enter_phase(self, job_phase::handing_to_store);
  auto w = make_write(self, job_state::waiting);
  w.children = std::move(record);
  auto seq = st.seq;
  commit(self, std::move(w), {}, [self, seq] {
    if (seq == self->state.seq &&
        self->state.phase == job_phase::handing_to_store)
      report_waiting_in_store(self);
  });
}

} // namespace

bool spawns(self_ptr self, const stage_outcome& out) {
  // A cheap test first: the output is parsed once, by spawn_children.
  auto& st = self->state;
  return out.ok && st.pipe->config.stages[st.stage].spawn &&
         out.output.find("\"spawn\"") != std::string::npos;
}

void spawn_children(self_ptr self, std::string output) {
  auto j = json::parse(output, nullptr, false);
  if (!j.is_object() || !j.contains("spawn")) {
    on_success(self, std::move(output)); // "spawn" was only in a value
    return;
  }
  auto kids = read_spawn(self, j["spawn"]);
  if (!kids) {
    on_failure(self, "invalid_spawn", message_of(kids.error()), false);
    return;
  }
  if (kids->empty()) {
    on_success(self, R"({"children":[],"failed":0,"succeeded":0,"total":0})");
    return;
  }
  park_for_children(self, std::move(*kids));
}

bool resume_children(self_ptr self, const job_snapshot& snap) {
  auto& st = self->state;
  if (st.children.empty())
    return false;
  auto rec = json::parse(st.children, nullptr, false);
  st.children.clear();
  if (field_or(rec, "stage_index", -1) != st.stage ||
      field_or(rec, "life", -1) != st.life)
    return false;
  auto results = rec.value("results", json::array());
  rec.erase("results");
  st.attempt = attempts_so_far(self, snap) + 1;
  ++st.seq;
  enter_phase(self, job_phase::running);
  auto c = count_results(results);
  if (c.open > 0) {
    wait_again(self, rec.dump());
    return true;
  }
  // The join's attempt lasted as long as the wait.
  auto now = now_ms(self);
  auto since = field_or(rec, "since_ms", now);
  st.attempt_ended = self->clock().now();
  st.attempt_started =
      st.attempt_ended - std::chrono::milliseconds{std::max<std::int64_t>(
                             0, now - std::min(since, now))};
  st.attempt_started_ms = std::min(since, now);
  if (c.failed > 0 && rec.value("policy", "fail") == "fail") {
    on_failure(self, "child_failed",
               std::to_string(c.failed) + " of " +
                   std::to_string(results.size()) +
                   " children did not succeed; first: " + c.first_failure,
               false);
    return true;
  }
  json out{{"children", std::move(results)},
           {"succeeded", c.succeeded},
           {"failed", c.failed},
           {"total", c.succeeded + c.failed}};
  on_success(self, out.dump());
  return true;
}

} // namespace troupe::job_detail
