#include "bench/timeline.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "runtime/client/job_tracker.hpp"

namespace troupe::bench {

namespace {

constexpr const char* probe_variable = "TROUPE_LATENCY_PROBE";

double median_of(std::vector<double> v) {
  if (v.empty())
    return -1;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

/// `to - from` for `job`, if it has both.
bool part_of(const job_stamps& job, const path_part& p, double& out) {
  auto a = job.find(p.from);
  auto b = job.find(p.to);
  if (a == job.end() || b == job.end())
    return false;
  out = static_cast<double>(b->second - a->second);
  return true;
}

const path_part& whole_path() {
  static const path_part p{"client.sent", "client.event", ""};
  return p;
}

/// The jobs whose whole path is at or above its 98th percentile.
std::vector<const job_stamps*>
slowest(const std::map<std::string, job_stamps>& jobs) {
  std::vector<std::pair<double, const job_stamps*>> all;
  for (const auto& [id, j] : jobs)
    if (double t = 0; part_of(j, whole_path(), t))
      all.emplace_back(t, &j);
  std::sort(all.begin(), all.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<const job_stamps*> out;
  for (auto i = all.size() * 98 / 100; i < all.size(); ++i)
    out.push_back(all[i].second);
  return out;
}

std::string cell(double median, double tail) {
  if (median < 0)
    return "–";
  std::ostringstream s;
  s << static_cast<long long>(median) << " / " << static_cast<long long>(tail);
  return s.str();
}

} // namespace

const std::vector<path_part>& path_parts() {
  static const std::vector<path_part> parts{
      {"client.sent", "api.received",
       "the request in: client → nats-server → the API's NATS thread"},
      {"api.received", "api.routed", "to an API worker; decode and route"},
      {"api.routed", "api.checked", "the API's presence read (PostgreSQL)"},
      {"api.checked", "intake.fetched",
       "JetStream: publish → the intake's fetch returns it"},
      {"intake.fetched", "intake.checked",
       "the intake: decode, admit, presence read (PostgreSQL)"},
      {"intake.checked", "store.received",
       "to the supervisor; the job actor and its stages; its write"},
      {"store.received", "store.begun", "the store actor → a writer thread"},
      {"store.begun", "store.committed", "the commit (one transaction)"},
      {"store.committed", "events.published",
       "writer → store actor → job actor → event publisher"},
      {"events.published", "client.event",
       "the event out: flush, nats-server, the client's NATS thread"},
      {"client.sent", "client.event", "**submit → job.succeeded, whole**"},
      {"api.checked", "api.published",
       "off the path: the API's JetStream publish → ack"},
      {"api.published", "api.logged",
       "off the path: the API's submission log write"},
  };
  return parts;
}

std::map<std::string, job_stamps> read_probe_file(const std::string& path) {
  std::map<std::string, job_stamps> out;
  std::ifstream in{path};
  std::string job, point;
  long long us = 0;
  // A job written more than once (speculate = 0: a commit per stage) is
  // timed by its first pass through the API and the intake and by its last
  // write, the one its terminal event waits for.
  while (in >> job >> point >> us) {
    if (point.rfind("store.", 0) == 0)
      out[job][point] = us;
    else
      out[job].emplace(point, us);
  }
  return out;
}

part_figures summarize(const std::map<std::string, job_stamps>& jobs) {
  part_figures f;
  auto tail = slowest(jobs);
  for (const auto& [id, j] : jobs)
    if (double t = 0; part_of(j, whole_path(), t))
      ++f.jobs;
  for (const auto& p : path_parts()) {
    std::vector<double> all, slow;
    for (const auto& [id, j] : jobs)
      if (double t = 0; part_of(j, p, t))
        all.push_back(t);
    for (const auto* j : tail)
      if (double t = 0; part_of(*j, p, t))
        slow.push_back(t);
    f.median.push_back(median_of(all));
    f.tail.push_back(median_of(slow));
  }
  return f;
}

void timeline::collect(bool on) {
  if (on)
    setenv(probe_variable, (dir_ + "/probe").c_str(), 1);
  else
    unsetenv(probe_variable);
}

void timeline::add_client(const job_tracker& tracker) {
  using namespace std::chrono;
  auto offset =
      duration_cast<microseconds>(system_clock::now().time_since_epoch())
          .count() -
      duration_cast<microseconds>(steady_clock::now().time_since_epoch())
          .count();
  auto wall = [&](steady_clock::time_point t) {
    return duration_cast<microseconds>(t.time_since_epoch()).count() + offset;
  };
  for (const auto& [id, j] : tracker.jobs()) {
    if (j.state.empty())
      continue;
    client_[id]["client.sent"] = wall(j.submitted);
    client_[id]["client.event"] = wall(j.finished);
  }
}

void timeline::add_node(pid_t pid, const std::string& label) {
  auto path = dir_ + "/probe." + std::to_string(pid);
  auto jobs = read_probe_file(path);
  std::remove(path.c_str());
  for (auto& [id, j] : jobs)
    if (auto c = client_.find(id); c != client_.end())
      j.insert(c->second.begin(), c->second.end());
  columns_.emplace_back(label, summarize(jobs));
}

std::string timeline::markdown() const {
  if (columns_.empty())
    return "";
  std::ostringstream s;
  s << "\nWhere the latency scenario's time goes, per node run (the node's "
       "stamps, runtime/common/latency_probe.hpp, and the client's clock):\n\n";
  s << "| part (µs: median / median of the slowest 2 %) |";
  for (const auto& [label, f] : columns_)
    s << ' ' << label << " |";
  s << "\n|---|";
  for (std::size_t i = 0; i < columns_.size(); ++i)
    s << "---:|";
  s << '\n';
  const auto& parts = path_parts();
  for (std::size_t k = 0; k < parts.size(); ++k) {
    s << "| " << parts[k].what << " |";
    for (const auto& [label, f] : columns_)
      s << ' ' << cell(f.median[k], f.tail[k]) << " |";
    s << '\n';
  }
  s << "| jobs timed |";
  for (const auto& [label, f] : columns_)
    s << ' ' << f.jobs << " |";
  s << '\n';
  return s.str();
}

} // namespace troupe::bench
