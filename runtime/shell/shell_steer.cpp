// troupe shell: the steering commands (cancel, retry, replay, pause,
// drain, resume), tenants and retention.
#include "runtime/shell/shell_session.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <sstream>

#include "messages/json_codec.hpp"
#include "runtime/client/admin_client.hpp"
#include "runtime/shell/shell_reply.hpp"

namespace troupe {

using json = nlohmann::json;
using namespace std::chrono_literals;
using namespace shell_detail;

// -- steering
// --------------------------------------------------------------------------

shell_outcome shell_session::cmd_steer(const std::string& verb,
                                       const json& body) {
  auto r = request_any("control", verb, body, std::max(s_.timeout, 10000ms));
  if (!r.value("ok", false))
    return from_reply_error(verb, r);
  auto res = r["result"];
  std::ostringstream out;
  if (verb == "cancel") {
    out << "job " << str_of(res, "job_id") << ": "
        << paint_state(str_of(res, "state"), s_.style) << " (was "
        << str_of(res, "was") << ")";
    if (res["by_node"].is_string())
      out << " by node " << str_of(res, "by_node");
    out << "\n";
  } else if (verb == "retry" && str_of(res, "action") == "retry_now") {
    out << "job " << str_of(res, "job_id")
        << (res["by_node"].is_string()
                ? ": retrying now on node " + str_of(res, "by_node")
                : std::string{": due now (it waited in the store)"})
        << "\n";
  } else if (verb == "replay" && res.contains("replayed")) {
    out << "replayed " << num(res, "replayed") << " dead letter(s)";
    if (!res["failed"].empty())
      out << ", " << res["failed"].size() << " failed:";
    out << "\n";
    for (auto& f : res["failed"])
      out << "  " << str_of(f, "job_id") << ": " << str_of(f, "error") << "\n";
  } else if (verb == "retry" || verb == "replay") {
    out << "job " << str_of(res, "job_id") << ": queued again, life "
        << num(res, "life") << " from stage #" << num(res, "from_stage")
        << " — follow it: watch --job " << str_of(res, "job_id") << "\n";
  } else if (verb == "pause" || verb == "unpause") {
    std::string nodes;
    for (auto& n : res["applied_by"])
      nodes += (nodes.empty() ? "" : ", ") + n.get<std::string>();
    out << "pipeline " << str_of(res, "pipeline") << ": "
        << paint_state(verb == "pause" ? "paused" : "fetching", s_.style)
        << " (applied by " << res["applied_by"].size() << " node(s)"
        << (nodes.empty() ? "" : ": " + nodes)
        << "; nodes that start later read it from the store)\n";
  }
  return success(verb, std::move(res), out.str());
}

shell_outcome shell_session::cmd_node_control(const std::string& verb,
                                              const std::string& node) {
  auto r =
      admin_request(*nats_, s_.prefix + ".admin." + node + ".control." + verb,
                    json{}, s_.timeout);
  if (!r.value("ok", false)) {
    if (str_of(r["error"], "code") == "no_answer")
      return failure(verb, "unknown_node",
                     "node '" + node + "' did not answer — try: nodes");
    return from_reply_error(verb, r);
  }
  return success(verb, json{{"node", node}, {"result", r["result"]}},
                 "node " + node + ": " +
                     paint_state(str_of(r["result"], "state"), s_.style) +
                     "\n");
}

shell_outcome shell_session::cmd_tenants() {
  auto replies = gather_all("tenants");
  if (auto* r = refusal(replies))
    return from_reply_error("tenants", *r);
  if (replies.empty())
    return failure("tenants", "no_answer", "no node answered — try: nodes");
  json merged = json::object();
  bool allow_unknown = true;
  for (auto& r : replies) {
    if (!r.value("ok", false))
      continue;
    allow_unknown = r["result"].value("allow_unknown", true);
    for (auto& kv : r["result"]["tenants"].items()) {
      auto& m = merged[kv.key()];
      if (m.is_null())
        m = kv.value();
      else {
        m["in_flight"] =
            int_of(m, "in_flight") + int_of(kv.value(), "in_flight");
        m["rate_limited"] =
            int_of(m, "rate_limited") + int_of(kv.value(), "rate_limited");
      }
    }
  }
  text_table t{{"TENANT", "MAX IN FLIGHT (per node)", "RATE (per node)",
                "IN FLIGHT", "RATE-LIMITED"}};
  for (auto& kv : merged.items()) {
    auto& m = kv.value();
    t.add(
        {kv.key(),
         int_of(m, "max_in_flight") > 0 ? num(m, "max_in_flight") : "unlimited",
         str_of(m, "rate").empty() ? "unlimited" : str_of(m, "rate"),
         num(m, "in_flight"), num(m, "rate_limited")});
  }
  return success(
      "tenants", json{{"allow_unknown", allow_unknown}, {"tenants", merged}},
      t.str(s_.style) + (allow_unknown
                             ? "unlisted tenants get the default limits\n"
                             : "unlisted tenants are refused "
                               "(unknown_tenant)\n"));
}

shell_outcome shell_session::cmd_retention(const std::string& verb,
                                           const std::string& job_id) {
  auto r = verb == "retention"
               ? request_any("read", "retention", json{}, s_.timeout)
               : request_any("control", verb,
                             verb == "purge" ? json{{"job_id", job_id}}
                                             : json::object(),
                             std::max(s_.timeout, 30000ms));
  if (!r.value("ok", false))
    return from_reply_error(verb, r);
  auto res = r["result"];
  std::ostringstream out;
  if (verb == "retention") {
    auto now = wall_now_ms();
    text_table t{{"PIPELINE", "KEEP FINISHED", "DUE NOW", "OLDEST DUE"}};
    for (auto& p : res["policies"])
      t.add({str_of(p, "pipeline"),
             int_of(p, "keep_ms") > 0 ? format_duration_ms(int_of(p, "keep_ms"))
                                      : "forever",
             num(p, "due"), format_ago(int_of(p, "oldest_finished_ms"), now)});
    out << t.str(s_.style) << "dead letters kept until replayed or purged: "
        << num(res, "dead_letters_kept") << "\n";
  } else if (verb == "prune") {
    out << "pruned " << num(res, "pruned") << " finished job(s)\n";
  } else {
    out << "job " << job_id << ": purged\n";
  }
  return success(verb, std::move(res), out.str());
}

/// `tidy`: what the verb found and deleted, and the first messages named.
shell_outcome
shell_session::cmd_tidy(const std::map<std::string, std::string>& flags) {
  json body{{"dry_run", flags.count("--dry-run") > 0}};
  if (auto f = flags.find("--older-than"); f != flags.end()) {
    auto d = parse_duration_ms(f->second);
    if (d < 0)
      return failure("tidy", "bad_flag",
                     "--older-than needs a duration such as 0s, 90s, 10m");
    body["older_than_ms"] = d;
  }
  if (auto f = flags.find("--limit"); f != flags.end()) {
    auto n = std::atoi(f->second.c_str());
    if (n <= 0)
      return failure("tidy", "bad_flag", "--limit needs a positive number");
    body["limit"] = n;
  }
  auto r = request_any("control", "tidy", body, std::max(s_.timeout, 60000ms));
  if (!r.value("ok", false))
    return from_reply_error("tidy", r);
  auto res = r["result"];
  if (!res.is_object())
    return failure("tidy", "invalid_reply", "the node's reply has no result");
  std::ostringstream out;
  out << "examined " << num(res, "examined") << " message(s); "
      << num(res, "ended") << " of ended jobs, published over "
      << format_duration_ms(int_of(res, "older_than_ms")) << " ago; "
      << (res.value("dry_run", false) ? "none deleted (dry run)"
                                      : num(res, "deleted") + " deleted")
      << (res.value("complete", true) ? "" : "; stopped at --limit") << "\n";
  if (res.contains("messages") && res["messages"].is_array())
    for (auto& m : res["messages"])
      if (m.is_string())
        out << "  " << m.get<std::string>() << "\n";
  return success("tidy", std::move(res), out.str());
}

} // namespace troupe
