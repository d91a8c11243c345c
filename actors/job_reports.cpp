#include "actors/job_actor_internal.hpp"

#include <nlohmann/json.hpp>

#include "actors/atoms.hpp"
#include "config/config_loader.hpp"
#include "messages/errc.hpp"
#include "messages/json_guard.hpp"
#include "messages/json_text.hpp"

// What a running attempt reports (docs/stages.md): progress, a message and
// heartbeat details, one JSON object per report. Reports keep the attempt
// alive against its heartbeat timeout; the latest is published as a
// stage.progress event and stored as the job's progress at most once per
// job_deps::progress_interval. Details go to the stage's next attempt.

namespace troupe::job_detail {

namespace {

using json = nlohmann::json;

/// Longest `message` kept (bytes); longer ones are cut.
constexpr std::size_t max_message = 1024;
/// Largest `details` kept (bytes of JSON); larger ones refuse the report.
constexpr std::size_t max_details = 64 * 1024;

/// Why `j` is not a report, or "" if it is one.
std::string report_problem(const json& j) {
  if (!j.is_object())
    return "a report must be one JSON object per line";
  for (auto& [key, value] : j.items()) {
    if (key == "progress") {
      if (!value.is_number() || value.get<double>() < 0 ||
          value.get<double>() > 1)
        return "'progress' must be a number from 0 to 1";
    } else if (key == "message") {
      if (!value.is_string())
        return "'message' must be a string";
    } else if (key == "heartbeat") {
      if (!value.is_boolean())
        return "'heartbeat' must be true or false";
    } else if (key != "details") {
      return "unknown field '" + key + "'";
    }
  }
  return {};
}

/// The stored progress document of a report, or why it is refused.
caf::expected<json> progress_doc(self_ptr self, const std::string& text) {
  auto& st = self->state;
  auto j = parse_json_or_discarded(text, 32);
  if (j.is_discarded())
    return make_error(errc::invalid_payload, "a report is not valid JSON");
  if (auto problem = report_problem(j); !problem.empty())
    return make_error(errc::invalid_payload, problem);
  json doc{{"stage_index", st.stage},
           {"stage", st.pipe->config.stages[st.stage].name},
           {"attempt", st.attempt},
           {"life", st.life},
           {"at_ms", now_ms(self)}};
  if (j.contains("progress"))
    doc["progress"] = j["progress"];
  if (j.contains("message"))
    doc["message"] =
        valid_text(j["message"].get<std::string>().substr(0, max_message));
  if (j.contains("details")) {
    if (j["details"].dump().size() > max_details)
      return make_error(errc::invalid_payload,
                        "'details' is larger than 64 KiB");
    doc["details"] = j["details"];
  }
  // jsonb cannot hold U+0000: such a report would make the write fail.
  if (doc.dump().find("\\u0000") != std::string::npos)
    return make_error(errc::invalid_payload, "a report holds U+0000");
  return doc;
}

/// Says once per attempt that a report was refused (a stage.progress event
/// with an error): a stage author sees why progress does not show.
void announce_refusal(self_ptr self, const caf::error& why) {
  auto& r = self->state.reports;
  if (r.refused++ > 0)
    return;
  auto ev = make_event(self, event_type::stage_progress);
  ev.error_code = "invalid_report";
  ev.error = describe(why);
  publish_now(self, std::move(ev));
}

bool is_final(const json& doc) {
  return doc.contains("progress") && doc["progress"].get<double>() >= 1;
}

} // namespace

void start_heartbeat(self_ptr self) {
  auto& st = self->state;
  auto& r = st.reports;
  r.last_beat = self->clock().now();
  r.unsent.clear();
  r.armed_seq = -1;
  r.refused = 0;
  auto hb = st.pipe->config.stages[st.stage].heartbeat_timeout;
  if (hb.count() > 0)
    self->delayed_send(self, hb, beat_atom::value, st.seq);
}

void on_report(self_ptr self, std::int64_t seq, const std::string& text) {
  auto& st = self->state;
  auto& r = st.reports;
  if (seq != st.seq || st.phase != job_phase::running)
    return;
  // Any report, even a malformed one, says the program is alive.
  auto now = self->clock().now();
  r.last_beat = now;
  auto doc = progress_doc(self, text);
  if (!doc) {
    announce_refusal(self, doc.error());
    return;
  }
  if (doc->contains("details")) {
    r.details = (*doc)["details"].dump();
    r.details_stage = st.stage;
    r.details_life = st.life;
  }
  if (!doc->contains("progress") && !doc->contains("message") &&
      !doc->contains("details"))
    return; // a bare heartbeat
  r.unsent = doc->dump();
  auto interval = st.deps->progress_interval;
  bool first_final = is_final(*doc) && r.final_seq != seq;
  if (first_final)
    r.final_seq = seq;
  if (first_final || now - r.last_sent >= interval) {
    flush_reports(self, seq);
  } else if (r.armed_seq != seq) {
    r.armed_seq = seq;
    self->delayed_send(self, interval - (now - r.last_sent), beat_atom::value,
                       seq, true);
  }
}

void flush_reports(self_ptr self, std::int64_t seq) {
  auto& st = self->state;
  auto& r = st.reports;
  if (r.armed_seq == seq)
    r.armed_seq = -1;
  if (seq != st.seq || r.unsent.empty() || st.phase != job_phase::running)
    return;
  auto doc = json::parse(r.unsent);
  r.last_sent = self->clock().now();
  auto ev = make_event(self, event_type::stage_progress);
  json shown = json::object();
  for (auto key : {"progress", "message"})
    if (doc.contains(key))
      shown[key] = doc[key];
  std::vector<job_event> publish;
  if (!shown.empty()) {
    ev.progress = shown.dump();
    publish.push_back(std::move(ev));
  }
  if (st.speculation.holding()) {
    // Nothing is written yet: the event waits with the others, and the
    // report goes with the write that creates the job (make_create).
    for (auto& e : publish)
      publish_now(self, std::move(e));
    r.unstored = std::move(r.unsent);
    r.unsent.clear();
    return;
  }
  auto w = make_write(self, job_state::running);
  w.progress = std::move(r.unsent);
  r.unsent.clear();
  commit(self, std::move(w), std::move(publish));
}

void check_heartbeat(self_ptr self, std::int64_t seq) {
  auto& st = self->state;
  if (seq != st.seq || st.phase != job_phase::running)
    return;
  auto hb = st.pipe->config.stages[st.stage].heartbeat_timeout;
  auto now = self->clock().now();
  auto silent =
      std::chrono::duration_cast<duration_ms>(now - st.reports.last_beat);
  if (silent < hb) {
    self->delayed_send(self, hb - silent, beat_atom::value, seq);
    return;
  }
  stop_attempt(self);
  st.attempt_ended = now;
  on_failure(self, "heartbeat_timeout",
             "no progress or heartbeat for " + format_duration(hb), true);
}

std::string details_for_attempt(self_ptr self) {
  auto& st = self->state;
  const auto& r = st.reports;
  if (r.details_stage == st.stage && r.details_life == st.life)
    return r.details;
  return {};
}

void restore_details(self_ptr self, const std::string& progress) {
  if (progress.empty())
    return;
  auto doc = parse_json_or_discarded(progress, 64);
  if (!doc.is_object() || !doc.contains("details") ||
      !doc["stage_index"].is_number_integer() ||
      !doc["life"].is_number_integer())
    return;
  auto& r = self->state.reports;
  r.details = doc["details"].dump();
  r.details_stage = doc["stage_index"].get<std::int32_t>();
  r.details_life = doc["life"].get<std::int32_t>();
}

} // namespace troupe::job_detail
