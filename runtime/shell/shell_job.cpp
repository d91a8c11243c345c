// troupe shell: the `job` view (the row, every attempt, the checkpoints,
// the graph of a parallel pipeline and the event log).
#include "messages/event_type.hpp"
#include "runtime/shell/shell_reply.hpp"
#include "runtime/shell/shell_session.hpp"

#include <sstream>

namespace troupe {

using json = nlohmann::json;
using namespace shell_detail;

namespace {

/// A stage's last report: `stage 2 (chunk) attempt 1: 40% chunk 4 of 10`.
std::string progress_text(const json& p) {
  return "stage " + std::to_string(p.value("stage_index", 0)) + " (" +
         p.value("stage", "") + ") attempt " +
         std::to_string(p.value("attempt", 0)) + ":" + progress_summary(p);
}

/// A child's parent, and a parent's children by state (docs/workflows.md).
void print_family(std::ostream& out, const json& j) {
  if (!str_of(j, "parent_id").empty())
    out << "parent: " << str_of(j, "parent_id") << "\n";
  auto c = j.find("children");
  if (c == j.end() || !c->is_object())
    return;
  out << "children: " << num(*c, "total");
  for (auto& [state, n] : (*c)["states"].items())
    out << "  " << state << " " << n.dump();
  if ((*c)["waiting"].is_object())
    out << "  (waits for them at stage #" << num((*c)["waiting"], "stage_index")
        << ")";
  out << "\n";
}

/// The job's row: state, times, holder, error, payload and result.
void print_job_row(std::ostream& out, const json& j, const std::string& id,
                   bool full, const text_style& style, std::int64_t now) {
  out << paint_header("job " + id, style) << "  "
      << paint_state(str_of(j, "state"), style) << "  pipeline "
      << str_of(j, "pipeline") << "  life " << num(j, "life") << "  epoch "
      << num(j, "epoch") << "\n";
  if (!str_of(j, "tenant").empty() || !str_of(j, "correlation_id").empty())
    out << "tenant " << str_of(j, "tenant") << "  correlation "
        << str_of(j, "correlation_id") << "\n";
  out << "created " << format_ago(int_of(j, "created_at_ms"), now)
      << ", started " << format_ago(int_of(j, "started_at_ms"), now)
      << ", finished " << format_ago(int_of(j, "finished_at_ms"), now);
  if (int_of(j, "next_attempt_at_ms") > 0)
    out << ", next attempt "
        << format_ago(int_of(j, "next_attempt_at_ms"), now);
  if (int_of(j, "run_at_ms") > 0)
    out << ", waits in the store until "
        << format_ago(int_of(j, "run_at_ms"), now);
  auto state = str_of(j, "state");
  if (!str_of(j, "lease_owner").empty() &&
      (state == "running" || state == "retrying"))
    out << ", held by " << str_of(j, "lease_owner");
  out << "\n";
  if (!str_of(j, "last_error").empty())
    out << "last error: " << str_of(j, "last_error") << "\n";
  print_family(out, j);
  if (j.contains("progress") && j["progress"].is_object())
    out << "progress: " << progress_text(j["progress"]) << "\n";
  out << "payload: " << show_value(j["payload"], full ? 100000 : 200) << "\n";
  if (!j["result"].is_null())
    out << "result:  " << show_value(j["result"], full ? 100000 : 200) << "\n";
}

/// Every attempt of every stage, the checkpoints and the dead letter.
void print_job_stages(std::ostream& out, const json& res, const std::string& id,
                      bool full, const text_style& style, std::int64_t now) {
  text_table t{{"STAGE", "LIFE", "ATTEMPT", "NODE", "OUTCOME", "DURATION",
                "STARTED", "ERROR"}};
  for (auto& s : res["stages"]) {
    auto stage = "#" + num(s, "index") + " " + str_of(s, "name");
    for (auto& a : s["attempts"]) {
      bool ok = a.value("ok", false);
      std::string err;
      if (a.contains("error"))
        err = str_of(a["error"], "code") + ": " + str_of(a["error"], "message");
      t.add({stage, num(a, "life"), num(a, "attempt"), str_of(a, "node"),
             paint_state(ok ? "succeeded" : "failed", style),
             format_duration_ms(int_of(a, "duration_ms")),
             format_ago(int_of(a, "started_at_ms"), now),
             ellipsize(err, full ? 100000 : 70)});
    }
  }
  out << (t.empty() ? "no attempts yet\n" : t.str(style));
  for (auto& s : res["stages"])
    if (s["checkpoint"].is_object())
      out << "checkpoint #" << num(s, "index") << " " << str_of(s, "name")
          << ": " << show_value(s["checkpoint"]["output"], full ? 100000 : 120)
          << "\n";
  if (res["dead_letter"].is_object()) {
    auto& d = res["dead_letter"];
    out << "dead letter: stage " << str_of(d, "stage") << ", "
        << format_ago(int_of(d, "dead_at_ms"), now) << ", replayed "
        << num(d, "replay_count") << " time(s) — replay " << id << "\n";
  }
}

/// A graph pipeline's stages, each with what it comes after and where it
/// stands in the job's current life: done (a checkpoint), failed N× (its
/// failed attempts so far), or open.
void print_job_graph(std::ostream& out, const json& res,
                     const text_style& style) {
  if (!res.contains("graph"))
    return;
  auto life = int_of(res["job"], "life");
  text_table t{{"STAGE", "AFTER", "STATE"}};
  for (auto& g : res["graph"]) {
    std::string after, state = "open";
    for (auto& a : g["after"])
      after += (after.empty() ? "" : ", ") + a.get<std::string>();
    for (auto& s : res["stages"]) {
      if (int_of(s, "index") != int_of(g, "index"))
        continue;
      int failed = 0;
      for (auto& a : s["attempts"])
        failed += int_of(a, "life") == life && !a.value("ok", false);
      if (failed > 0)
        state = "failed " + std::to_string(failed) + "x";
      if (s["checkpoint"].is_object())
        state = failed > 0 ? "done after " + state : "done";
    }
    t.add({"#" + num(g, "index") + " " + str_of(g, "name"),
           after.empty() ? "-" : after, state});
  }
  out << "graph (stages run in parallel once what they come after is "
         "done):\n"
      << t.str(style);
}

/// The job's event log.
void print_job_events(std::ostream& out, const json& res) {
  out << "\nevents:\n";
  for (auto& e : res["events"]) {
    out << "  " << clock_time(int_of(e, "time_ms")) << "  "
        << str_of(e, "type");
    if (!str_of(e, "stage").empty() && int_of(e, "attempt") > 0)
      out << "  " << str_of(e, "stage") << " #" << num(e, "attempt");
    if (str_of(e, "type") == to_string(event_type::job_replayed))
      out << "  life " << num(e, "life") << " from stage #"
          << num(e, "stage_index");
    if (!str_of(e, "node").empty())
      out << "  on " << str_of(e, "node");
    if (!str_of(e, "error").empty())
      out << "  " << ellipsize(str_of(e, "error"), 80);
    out << "\n";
  }
}

} // namespace

shell_outcome shell_session::cmd_job(const std::string& id, bool full) {
  auto r = request_any("read", "job", json{{"job_id", id}, {"full", full}},
                       s_.timeout);
  if (!r.value("ok", false))
    return from_reply_error("job", r);
  auto res = r["result"];
  auto now = wall_now_ms();
  std::ostringstream out;
  print_job_row(out, res["job"], id, full, s_.style, now);
  out << "\n";
  print_job_stages(out, res, id, full, s_.style, now);
  print_job_graph(out, res, s_.style);
  print_job_events(out, res);
  if (res.value("truncated", false))
    out << "(large values truncated — show all: job " << id << " --full)\n";
  return success("job", std::move(res), out.str());
}

} // namespace troupe
