#include "bench/targets.hpp"

#include "bench/floors.hpp"

#include <cmath>
#include <optional>
#include <spawn.h>
#include <sys/wait.h>

namespace troupe::bench {

namespace {

/// The median of the figure `what` says, if the run measured it.
std::optional<double> find(const std::vector<figure>& figs,
                           const std::string& what) {
  for (auto& f : figs)
    if (f.what == what && !f.samples.empty())
      return f.median();
  return std::nullopt;
}

std::string num(double v) {
  auto s = fmt(v, v >= 100 ? 0 : 2);
  // Thousands separated, as the rest of docs/benchmarks.md writes them.
  auto dot = s.find('.');
  auto end = dot == std::string::npos ? s.size() : dot;
  for (auto i = static_cast<long>(end) - 3; i > 0; i -= 3)
    s.insert(static_cast<std::size_t>(i), ",");
  return s;
}

std::string pct(double ratio) {
  return (ratio >= 1 ? "+" : "−") + fmt(std::abs(ratio - 1) * 100, 0) + " %";
}

struct row {
  std::string target;
  std::string figure;
  std::string status;
};

std::string verdict(bool reached) {
  return reached ? "reached" : "not reached";
}

const char* unmeasured = "not measured in this run";

row throughput_row(const std::vector<figure>& figs) {
  row r{"3-stage durable noop ≥ 15,000 jobs/s", unmeasured, "–"};
  auto tput = find(figs, "3-stage noop, published to the stream");
  if (!tput)
    return r;
  r.figure = num(*tput) + " jobs/s";
  if (auto js = find(figs, "JetStream publish→consume→ack"))
    r.figure += "; " + fmt(*tput / *js, 2) +
                " of the JetStream publish→consume→ack ceiling (" + num(*js) +
                " msg/s)";
  auto pg = find(figs, "PostgreSQL batched upsert (256 rows/commit)");
  auto rows = find(figs, "rows stored per job");
  if (pg && rows && *rows > 0)
    r.figure += "; " + fmt(*tput / (*pg / *rows), 2) +
                " of the PostgreSQL batched-upsert ceiling at " +
                fmt(*rows, 0) + " rows per job (" + num(*pg / *rows) +
                " jobs/s)";
  r.status = verdict(*tput >= 15000);
  return r;
}

/// Where a p50 goes: the API's round trip, the serial path's floor from
/// the floors measured in the run, and the node's commits at that load.
std::string latency_parts(const std::vector<figure>& figs) {
  std::string t;
  if (auto api = find(figs, "3-stage noop: submit→API reply p50"))
    t += "; the submit round trip alone " + fmt(*api, 2) + " ms";
  if (auto floor = latency_floor_ms(figs); floor > 0)
    t += "; the serial path's floor " + fmt(floor, 2) +
         " ms (a NATS round trip, a JetStream publish→ack, two reads by key "
         "and a one-row commit, each measured one at a time)";
  if (auto c = find(figs, "3-stage noop: store commit, average"))
    t += "; the node's commits at this load " + fmt(*c, 2) + " ms on average";
  return t;
}

row latency_row(const std::vector<figure>& figs, const std::string& q,
                double target) {
  auto base = "3-stage noop: ";
  auto what = q == "p50"
                  ? std::string{base} + "submit→succeeded p50 at 200 jobs/s"
                  : std::string{base} + q;
  row r{"submit→succeeded " + q + " ≤ " + fmt(target, 1) +
            " ms (3 stages, 200 jobs/s)",
        unmeasured, "–"};
  auto v = find(figs, what);
  if (!v)
    return r;
  r.figure = fmt(*v, 2) + " ms";
  auto s0 = q == "p50" ? "3-stage noop, node.speculate = 0: submit→succeeded "
                         "p50 at 200 jobs/s"
                       : "3-stage noop, node.speculate = 0: " + q;
  if (auto off = find(figs, s0))
    r.figure += "; with `speculate = 0` " + fmt(*off, 2) + " ms";
  if (q == "p50")
    r.figure += latency_parts(figs);
  else if (auto c = find(figs, "PostgreSQL one-row commit, one at a time: p99"))
    r.figure += "; a one-row commit's own p99 " + fmt(*c, 2) +
                " ms (one at a time, no other load)";
  r.status = verdict(*v <= target);
  return r;
}

row cost_row(const std::vector<figure>& figs) {
  row r{"node CPU ≤ 50 µs per job", unmeasured, "–"};
  auto node = find(figs, "node CPU per job");
  if (!node)
    return r;
  r.figure = fmt(*node, 0) + " µs";
  auto pg = find(figs, "PostgreSQL CPU per job");
  auto ns = find(figs, "nats-server CPU per job");
  if (pg && ns)
    r.figure += "; PostgreSQL " + fmt(*pg, 0) + " µs, nats-server " +
                fmt(*ns, 0) + " µs: " + fmt(*node + *pg + *ns, 0) +
                " µs across the three";
  auto rows = find(figs, "rows stored per job");
  auto wal = find(figs, "WAL written per job");
  if (rows && wal)
    r.figure += "; " + fmt(*rows, 0) + " rows and " + num(*wal) +
                " bytes of WAL per job";
  r.status = verdict(*node <= 50);
  return r;
}

row retry_row(const std::vector<figure>& figs) {
  row r{"retry path within 20 % of the first attempt", unmeasured, "–"};
  auto one = find(figs, "1-stage noop (reference)");
  auto retry = find(figs, "1 stage failing once, 10 ms backoff");
  if (!one || !retry)
    return r;
  r.figure =
      num(*retry) + " vs " + num(*one) + " jobs/s (" + pct(*retry / *one) + ")";
  auto c1 = find(figs, "node CPU per job, reference");
  auto c2 = find(figs, "node CPU per job, failing once");
  if (c1 && c2)
    r.figure +=
        "; node CPU " + fmt(*c2, 0) + " vs " + fmt(*c1, 0) + " µs per job";
  auto pg1 = find(figs, "PostgreSQL CPU per job, reference");
  auto pg2 = find(figs, "PostgreSQL CPU per job, failing once");
  if (pg1 && pg2)
    r.figure += ", PostgreSQL " + fmt(*pg2, 0) + " vs " + fmt(*pg1, 0) + " µs";
  auto rows1 = find(figs, "rows stored per job, reference");
  auto rows2 = find(figs, "rows stored per job, failing once");
  if (rows1 && rows2)
    r.figure += "; " + fmt(*rows2, 0) + " vs " + fmt(*rows1, 0) +
                " rows stored per job";
  r.status = verdict(*retry >= 0.8 * *one);
  return r;
}

row exec_row(const std::vector<figure>& figs) {
  row r{"exec stage within 2 × spawning `/bin/true`", unmeasured, "–"};
  auto ex = find(figs, "1 exec stage running /bin/cat");
  auto spawn = find(figs, "posix_spawn + wait of /bin/true, one at a time");
  if (!ex || !spawn)
    return r;
  auto per_job = 1e6 / *ex;
  r.figure = num(per_job) + " µs of wall time per job (" + num(*ex) +
             " jobs/s) vs " + fmt(*spawn, 0) +
             " µs per spawn: " + fmt(per_job / *spawn, 2) + " ×";
  r.status = verdict(per_job <= 2 * *spawn);
  return r;
}

} // namespace

figure spawn_ceiling(int runs, bool quick) {
  figure f{"ceiling",
           "posix_spawn + wait of /bin/true, one at a time",
           "µs",
           {},
           "the exec target's ceiling"};
  char arg0[] = "/bin/true";
  char* argv[] = {arg0, nullptr};
  char* envp[] = {nullptr};
  int count = quick ? 50 : 1000;
  for (int r = 0; r < runs; ++r) {
    auto t0 = clock_type::now();
    for (int i = 0; i < count; ++i) {
      pid_t pid = 0;
      if (posix_spawn(&pid, arg0, nullptr, nullptr, argv, envp) != 0)
        fail("posix_spawn /bin/true");
      int status = 0;
      waitpid(pid, &status, 0);
    }
    f.samples.push_back(seconds_since(t0) * 1e6 / count);
  }
  return f;
}

std::string targets_table(const std::vector<figure>& figs) {
  std::vector<row> rows{throughput_row(figs),
                        latency_row(figs, "p50", 1.5),
                        latency_row(figs, "p99", 3.0),
                        cost_row(figs),
                        retry_row(figs),
                        exec_row(figs)};
  std::string t = "| target | this run (medians) | status |\n|---|---|---|\n";
  for (auto& r : rows)
    t += "| " + r.target + " | " + r.figure + " | " + r.status + " |\n";
  return t;
}

} // namespace troupe::bench
