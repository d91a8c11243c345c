// troupe shell: cron schedules (docs/scheduling.md).
#include "runtime/shell/shell_format.hpp"
#include "runtime/shell/shell_reply.hpp"
#include "runtime/shell/shell_session.hpp"

#include <sstream>

namespace troupe {

using json = nlohmann::json;
using namespace std::chrono_literals;
using namespace shell_detail;

shell_outcome shell_session::cmd_schedules() {
  auto r = request_any("read", "schedules", json::object(), s_.timeout);
  if (!r.value("ok", false))
    return from_reply_error("schedules", r);
  auto res = r["result"];
  auto now = wall_now_ms();
  text_table t{{"SCHEDULE", "CRON", "ZONE", "PIPELINE", "NEXT", "LAST",
                "LAST JOB", "STATE"}};
  for (auto& s : res["schedules"]) {
    auto last = str_of(s, "last_job");
    t.add({str_of(s, "name"), str_of(s, "cron"), str_of(s, "timezone"),
           str_of(s, "pipeline"),
           s.value("paused", false) ? paint_state("paused", s_.style)
                                    : format_ago(int_of(s, "next_at_ms"), now),
           format_ago(int_of(s, "last_at_ms"), now), last.empty() ? "-" : last,
           last.empty() ? "-"
                        : paint_state(str_of(s, "last_job_state"), s_.style)});
  }
  return success("schedules", std::move(res),
                 t.empty() ? "no schedules (add [schedules.NAME] to the "
                             "configuration)\n"
                           : t.str(s_.style));
}

shell_outcome shell_session::cmd_schedule(const std::string& action,
                                          const std::string& name) {
  auto r = request_any("control", "schedule",
                       json{{"name", name}, {"action", action}},
                       std::max(s_.timeout, 10000ms));
  if (!r.value("ok", false))
    return from_reply_error("schedule", r);
  auto res = r["result"];
  std::ostringstream out;
  if (action == "trigger")
    out << "schedule " << name << ": fired job " << str_of(res, "job_id")
        << " — follow it: watch --job " << str_of(res, "job_id") << "\n";
  else if (action == "delete")
    out << "schedule " << name << ": deleted\n";
  else
    out << "schedule " << name << ": "
        << paint_state(res.value("paused", false) ? "paused" : "running",
                       s_.style)
        << "\n";
  return success("schedule", std::move(res), out.str());
}

} // namespace troupe
