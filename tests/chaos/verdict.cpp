#include "verdict.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <tuple>

#define PQXX_HAVE_OPTIONAL
#include <pqxx/pqxx>

#include "tests/support/db_probe.hpp"
#include "workload.hpp"

namespace troupe::chaos {

namespace {

// Faults reach a stage's re-run only after failure detection, the lease
// and ack_wait (2 s + 2 s + 5 s here): a re-run this long after a fault
// ended is still that fault's doing.
constexpr std::int64_t window_tail_ms = 20000;

bool terminal(const std::string& state) {
  return state == "succeeded" || state == "dead_lettered" ||
         state == "cancelled";
}

std::string expected_state(const std::string& id, const verdict_input& in) {
  if (in.cancelled.count(id))
    return "cancelled";
  return pipeline_of(id) == "poison" ? "dead_lettered" : "succeeded";
}

void judge_rows(const verdict_input& in, pqxx::nontransaction& tx, verdict& v) {
  std::map<std::string, std::string> rows;
  for (auto r : tx.exec("select job_id, state from jobs"))
    rows[r[0].c_str()] = r[1].c_str();
  for (auto& id : in.accepted)
    if (!rows.count(id))
      v.violations.push_back("accepted job " + id + " has no row");
  for (auto& [id, state] : rows) {
    ++v.states[state];
    if (!in.planned.count(id)) {
      v.violations.push_back("row for a job never submitted: " + id);
      continue;
    }
    auto want = expected_state(id, in);
    auto cancel_raced = in.cancel_asked.count(id) && state == "cancelled";
    if (state != want && !cancel_raced)
      v.violations.push_back(id + " ended " + state + ", expected " + want);
  }
}

void judge_attempts(pqxx::nontransaction& tx, verdict& v) {
  for (auto r : tx.exec("select job_id, life, stage_index, count(*) from "
                        "job_attempts where ok group by 1, 2, 3 having "
                        "count(*) > 1 limit 20"))
    v.violations.push_back(std::string{"stage "} + r[2].c_str() + " of " +
                           r[0].c_str() + " (life " + r[1].c_str() +
                           ") succeeded " + r[3].c_str() + " times");
  // No foreign key keeps these rows to a job since schema 16: every write
  // must add them with its job's row.
  for (auto r : tx.exec("select job_id from (select job_id from "
                        "stage_checkpoints union select job_id from "
                        "stage_attempts) c where not exists (select 1 from "
                        "jobs j where j.job_id = c.job_id) limit 20"))
    v.violations.push_back(std::string{"attempt or checkpoint of "} +
                           r[0].c_str() + ", which has no job row");
}

struct effect {
  std::int64_t at_ms = 0;
  int node = -1;
};

std::map<std::string, std::vector<effect>> read_effects(const std::string& f) {
  std::map<std::string, std::vector<effect>> out;
  std::ifstream in{f};
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream s{line};
    std::string key, attempt, node;
    effect e;
    s >> key >> attempt >> node >> e.at_ms;
    e.node = node.size() > 1 ? std::atoi(node.c_str() + 1) - 1 : -1;
    out[key].push_back(e);
  }
  return out;
}

/// The runs of side effects after which their stage killed its own node
/// (the `kill_after_effect` fault): "<key> n<i> <ms>" lines in
/// `killed-by-<pid>`, the same time as that run's line in the effects log.
std::set<std::tuple<std::string, int, std::int64_t>>
read_kills(const std::string& dir) {
  std::set<std::tuple<std::string, int, std::int64_t>> out;
  std::error_code ec;
  for (auto& f : std::filesystem::directory_iterator{dir, ec}) {
    if (f.path().filename().string().rfind("killed-by-", 0) != 0)
      continue;
    std::ifstream in{f.path()};
    for (std::string line; std::getline(in, line);) {
      std::istringstream s{line};
      std::string key, node;
      std::int64_t at = 0;
      if (s >> key >> node >> at)
        out.emplace(key, node.size() > 1 ? std::atoi(node.c_str() + 1) - 1 : -1,
                    at);
    }
  }
  return out;
}

/// Whether the run at `at` on `node` was cut short by its node's death: a
/// kill (or stop) of that node within 2 s after the run wrote its side
/// effect. Such a run explains the next one whenever it comes: the job's
/// message may come back long after the fault (chaos seed 36, session 20:
/// 60 s later, behind a stream that a replica reset had stalled).
bool cut_short(const verdict_input& in, int node, std::int64_t at) {
  return std::any_of(in.faults.begin(), in.faults.end(), [&](auto& f) {
    auto kill = f.what.rfind("kill_", 0) == 0 || f.what.rfind("zombie", 0) == 0;
    return kill && f.node == node && f.from_ms - 2000 <= at &&
           at <= f.from_ms + 500;
  });
}

/// A fault that explains a re-run at `at` of a stage that ran on `node`.
bool explained(const verdict_input& in, int node, std::int64_t at) {
  return std::any_of(in.faults.begin(), in.faults.end(), [&](auto& f) {
    return (f.cluster || f.node == node) && f.from_ms <= at &&
           at <= f.to_ms + window_tail_ms;
  });
}

} // namespace

void judge_effects(const verdict_input& in, verdict& v) {
  auto kills = read_kills(in.dir);
  for (auto& [key, list] : read_effects(in.effects_file)) {
    v.effects += static_cast<int>(list.size());
    std::sort(list.begin(), list.end(),
              [](auto& a, auto& b) { return a.at_ms < b.at_ms; });
    for (std::size_t k = 1; k < list.size(); ++k) {
      ++v.reruns;
      // A run that killed its node before the checkpoint explains the next
      // one whenever it comes: the broker may hand the message out again
      // long after the fault's window (chaos seed 19 of session 19: 40 s
      // later, held back by a stream that a replica reset had stalled).
      if (kills.count({key, list[k - 1].node, list[k - 1].at_ms}))
        continue;
      if (cut_short(in, list[k - 1].node, list[k - 1].at_ms))
        continue;
      if (!explained(in, list[k - 1].node, list[k].at_ms))
        v.violations.push_back("side effect " + key + " ran again at " +
                               std::to_string(list[k].at_ms) +
                               " ms with no fault to explain it");
    }
  }
}

namespace {

void judge_exits(const verdict_input& in, verdict& v) {
  for (auto& e : in.exits)
    if (e.expected && e.why.rfind("gave up starting", 0) == 0)
      v.notes.push_back("node " + e.node + " " + e.why);
    else if (!e.expected)
      v.violations.push_back("node " + e.node + " exited with " +
                             (e.code > 128
                                  ? "signal " + std::to_string(e.code - 128)
                                  : "code " + std::to_string(e.code)) +
                             (e.why.empty() ? "" : " (" + e.why + ")"));
}

} // namespace

std::int64_t unfinished(const std::string& pg_url) {
  return test::count_rows(pg_url, "select count(*) from jobs where state not "
                                  "in ('succeeded', 'dead_lettered', "
                                  "'cancelled')");
}

std::int64_t finished(const std::string& pg_url) {
  return test::count_rows(pg_url, "select count(*) from jobs where state in "
                                  "('succeeded', 'dead_lettered', "
                                  "'cancelled')");
}

std::int64_t dead_letters(const std::string& pg_url,
                          const std::string& pipeline) {
  // Pipeline names come from this harness (letters only): no quoting needed.
  return test::count_rows(pg_url, "select count(*) from jobs where state = "
                                  "'dead_lettered' and pipeline = '" +
                                      pipeline + "'");
}

std::int64_t stream_leftovers(nats_client& nats,
                              const std::vector<std::string>& pipelines,
                              std::string* detail, std::int64_t* phantoms) {
  jsStreamInfo* si = nullptr;
  if (js_GetStreamInfo(&si, nats.js(), "TROUPE_JOBS", nullptr, nullptr) !=
      NATS_OK)
    return -1;
  auto left = static_cast<std::int64_t>(si->State.Msgs);
  std::int64_t counted = 0;
  if (detail)
    *detail = "stream holds " + std::to_string(si->State.Msgs) +
              " (first seq " + std::to_string(si->State.FirstSeq) + ")";
  jsStreamInfo_Destroy(si);
  for (auto& p : pipelines) {
    jsConsumerInfo* ci = nullptr;
    if (js_GetConsumerInfo(&ci, nats.js(), "TROUPE_JOBS",
                           ("troupe_" + p).c_str(), nullptr,
                           nullptr) != NATS_OK)
      continue; // a pipeline no job reached may have no consumer yet
    auto held = ci->NumAckPending + ci->NumPending;
    counted += static_cast<std::int64_t>(held);
    if (detail && held > 0)
      *detail += "; " + p + ": " + std::to_string(ci->NumPending) +
                 " pending, " + std::to_string(ci->NumAckPending) +
                 " unacked, ack floor " + std::to_string(ci->AckFloor.Stream);
    jsConsumerInfo_Destroy(ci);
  }
  if (phantoms)
    *phantoms = std::max<std::int64_t>(0, counted - left);
  return left;
}

std::string broker_divergence(const std::string& dir) {
  static const char* const signs[] = {
      "stream store EOF", "Resetting stream cluster state",
      "has NO quorum, stalled", "possibly beyond our last index"};
  std::string first, first_at;
  for (int s = 1; s <= nats_count; ++s) {
    std::ifstream log{dir + "/nats-s" + std::to_string(s) + "/nats.log"};
    for (std::string line; std::getline(log, line);) {
      if (std::none_of(std::begin(signs), std::end(signs), [&](auto* sign) {
            return line.find(sign) != std::string::npos;
          }))
        continue;
      // "[pid] 2026/12/04 20:42:56.853786 [WRN] ...": the date and time
      // sort as text.
      auto at = line.find("] ");
      auto when = at == std::string::npos ? "" : line.substr(at + 2, 26);
      if (first.empty() || when < first_at) {
        first_at = when;
        first = "s" + std::to_string(s) + " " + line.substr(at + 2);
      }
      break; // each server's first sign is enough
    }
  }
  return first;
}

verdict judge(const verdict_input& in, nats_client& nats) {
  verdict v;
  v.broker = broker_divergence(in.dir);
  {
    pqxx::connection c{in.pg_url};
    pqxx::nontransaction tx{c};
    judge_rows(in, tx, v);
    judge_attempts(tx, v);
  }
  for (auto& [state, n] : v.states)
    if (!terminal(state))
      v.violations.push_back(std::to_string(n) + " jobs still " + state);
  judge_effects(in, v);
  judge_exits(in, v);
  std::string detail;
  std::int64_t phantoms = 0;
  auto left = stream_leftovers(nats, pipeline_names(), &detail, &phantoms);
  if (left >= 0 && phantoms > 0)
    v.notes.push_back("consumers count " + std::to_string(phantoms) +
                      " deliveries beyond the messages the stream holds (" +
                      detail + ")");
  if (left != 0)
    (in.strict_stream ? v.violations : v.notes)
        .push_back(
            left < 0
                ? std::string{"JetStream could not be asked about the stream"}
                : std::to_string(left) + " messages left in the stream (" +
                      detail + ")");
  return v;
}

} // namespace troupe::chaos
