#include "bench/bench_node.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <unistd.h>

#define PQXX_HAVE_OPTIONAL
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "messages/errc.hpp"
#include "runtime/client/job_tracker.hpp"
#include "runtime/exec/process.hpp"
#include "runtime/nats/nats_client.hpp"

namespace troupe::bench {

using namespace std::chrono_literals;

namespace {

/// The [node] section: the bench's keys, each replaced by a --node-option
/// of the same key (options are "key = value"), then the other options.
std::string node_section(const node_flags& f) {
  std::vector<std::pair<std::string, std::string>> keys{
      {"id", "\"bench-node\""},
      {"http", "\"127.0.0.1:0\""},
      {"max_in_flight", "5000"},
      {"log_level", "\"info\""},
      {"speculate", f.speculate ? "\"20ms\"" : "\"0s\""},
      {"metrics", f.metrics ? "true" : "false"}};
  for (const auto& o : f.node_options) {
    auto eq = o.find(" = ");
    auto key = o.substr(0, eq);
    auto value = eq == std::string::npos ? std::string{} : o.substr(eq + 3);
    auto same = std::find_if(keys.begin(), keys.end(),
                             [&](const auto& kv) { return kv.first == key; });
    if (same != keys.end())
      same->second = value;
    else
      keys.emplace_back(key, value);
  }
  std::string out = "[node]\n";
  for (const auto& [key, value] : keys)
    out += key + " = " + value + "\n";
  return out;
}

} // namespace

std::string bench_node_config(const std::string& nats_url,
                              const std::string& pg_url, node_flags f) {
  return node_section(f) + R"(

[nats]
url = ")" +
         nats_url +
         R"("
send_asap = )" +
         std::string{f.send_asap ? "true" : "false"} + R"(

[postgres]
url = ")" +
         pg_url +
         R"("

[retention]
finished = "0s"

[pipelines.tput]
max_in_flight = 2000
stages = [
{ name = "a", kind = "noop" },
{ name = "b", kind = "noop" },
{ name = "c", kind = "noop" },
]

[pipelines.one]
max_in_flight = 2000
stages = [ { name = "only", kind = "noop" } ]

[pipelines.retry]
max_in_flight = 2000
stages = [
{ name = "flaky", kind = "fault", fail_first = 1,
  retry = { max_attempts = 3, initial = "10ms", jitter = "none" } },
]

[pipelines.exec]
max_in_flight = 64
stages = [ { name = "cat", kind = "exec", command = ["/bin/cat"] } ]
)";
}

std::map<std::string, double>
node_metrics(const std::string& log_path,
             const std::vector<std::string>& names) {
  std::map<std::string, double> out;
  auto log = read_text(log_path);
  auto at = log.find("http on 127.0.0.1:");
  if (at == std::string::npos)
    return out;
  auto port = std::atoi(log.c_str() + at + std::strlen("http on 127.0.0.1:"));
  auto r = run_command(
      {"curl", "-s", "http://127.0.0.1:" + std::to_string(port) + "/metrics"},
      10s);
  for (const auto& name : names)
    if (auto p = r.output.find("\n" + name + " "); p != std::string::npos)
      out[name] = std::atof(r.output.c_str() + p + name.size() + 2);
  return out;
}

std::vector<std::string> commit_metric_names() {
  return {"troupe_store_commit_seconds_sum",
          "troupe_store_commit_seconds_count", "troupe_store_batch_size_sum"};
}

void add_commit_sample(figure& f, std::map<std::string, double> a,
                       std::map<std::string, double> b) {
  auto n = b["troupe_store_commit_seconds_count"] -
           a["troupe_store_commit_seconds_count"];
  if (n <= 0)
    return;
  auto delta = [&](const char* name) { return b[name] - a[name]; };
  f.samples.push_back(delta("troupe_store_commit_seconds_sum") / n * 1000);
  f.note = "avg batch " + fmt(delta("troupe_store_batch_size_sum") / n, 1) +
           " requests (last run)";
}

std::vector<double> submit_paced(nats_client& client, job_tracker& tracker,
                                 const std::string& pipeline,
                                 const std::string& key_prefix, int rate,
                                 int secs) {
  int total = rate * secs;
  std::vector<double> replies;
  auto t0 = clock_type::now();
  for (int i = 0; i < total; ++i) {
    std::this_thread::sleep_until(
        t0 + std::chrono::microseconds{1000000LL * i / rate});
    auto key = key_prefix + std::to_string(i);
    tracker.submitted(key);
    auto body = nlohmann::json{{"pipeline", pipeline},
                               {"key", key},
                               {"payload",
                                nlohmann::json::parse(job_body(i))["payload"]}}
                    .dump();
    auto sent = clock_type::now();
    auto rep = client.request("troupe.api.v1.submit", body, 5000);
    if (!rep)
      fail("submit failed: " + describe(rep.error()));
    replies.push_back(
        std::chrono::duration<double, std::milli>(clock_type::now() - sent)
            .count());
  }
  return replies;
}

std::string store_profile(const std::string& log_path) {
  auto m = node_metrics(log_path, {"troupe_store_batch_size_count",
                                   "troupe_store_batch_size_sum",
                                   "troupe_store_commit_seconds_sum"});
  auto n = m["troupe_store_batch_size_count"];
  if (n <= 0)
    return "";
  return "avg batch " + fmt(m["troupe_store_batch_size_sum"] / n, 1) +
         " requests, avg commit " +
         fmt(m["troupe_store_commit_seconds_sum"] / n * 1000, 2) + " ms, " +
         fmt(n, 0) + " transactions";
}

/// CPU seconds the node used so far (user + system).
double process_cpu_seconds(pid_t pid) {
  auto s = read_text("/proc/" + std::to_string(pid) + "/stat");
  auto rp = s.rfind(')');
  std::istringstream in{s.substr(rp + 2)};
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && in >> field; ++i)
    if (i == 14 || i == 15)
      ticks += std::atof(field.c_str());
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

namespace {

/// Fields of /proc/<pid>/stat from the third on (after "pid (comm) ").
std::vector<std::string> stat_fields(pid_t pid) {
  auto s = read_text("/proc/" + std::to_string(pid) + "/stat");
  auto rp = s.rfind(')');
  std::vector<std::string> out;
  if (rp == std::string::npos)
    return out;
  std::istringstream in{s.substr(rp + 2)};
  for (std::string f; in >> f;)
    out.push_back(f);
  return out;
}

double field(const std::vector<std::string>& f, int n) { // n as in proc(5)
  return f.size() > static_cast<std::size_t>(n - 3)
             ? std::atof(f[static_cast<std::size_t>(n - 3)].c_str())
             : 0.0;
}

} // namespace

double process_tree_cpu_seconds(pid_t root) {
  auto rf = stat_fields(root);
  // utime, stime, and the cutime/cstime of children it has waited for.
  double ticks = field(rf, 14) + field(rf, 15) + field(rf, 16) + field(rf, 17);
  for (const auto& e : std::filesystem::directory_iterator{"/proc"}) {
    auto name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos)
      continue;
    auto f = stat_fields(static_cast<pid_t>(std::atol(name.c_str())));
    if (static_cast<pid_t>(field(f, 4)) == root)
      ticks += field(f, 14) + field(f, 15);
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

server_costs read_server_costs(const std::string& pg_url, pid_t postmaster,
                               pid_t nats_server) {
  server_costs c;
  pqxx::connection db{pg_url};
  pqxx::nontransaction t{db};
  c.wal_bytes = t.exec1("select pg_wal_lsn_diff(pg_current_wal_lsn(), "
                        "'0/0')::float8")[0]
                    .as<double>();
  c.pg_cpu_s = process_tree_cpu_seconds(postmaster);
  c.nats_cpu_s = process_cpu_seconds(nats_server);
  return c;
}

double rows_of_jobs(const std::string& pg_url, const std::string& prefix) {
  pqxx::connection db{pg_url};
  pqxx::nontransaction t{db};
  // Before schema version 15 the attempts' table was job_attempts (now a
  // view): count the table that exists, so that older builds compare.
  std::string attempts =
      t.exec1("select coalesce(to_regclass('stage_attempts')::text, "
              "'job_attempts')")[0]
          .as<std::string>();
  double n = 0;
  for (const std::string& table :
       {std::string{"jobs"}, std::string{"stage_checkpoints"}, attempts,
        std::string{"job_events"}})
    n += t.exec_params1("select count(*) from " + table +
                            " where job_id like $1 || '%'",
                        prefix)[0]
             .as<double>();
  return n;
}

void cost_figures::add(const server_costs& before, const server_costs& after,
                       int jobs, double stored) {
  pg_cpu.samples.push_back((after.pg_cpu_s - before.pg_cpu_s) * 1e6 / jobs);
  nats_cpu.samples.push_back((after.nats_cpu_s - before.nats_cpu_s) * 1e6 /
                             jobs);
  wal.samples.push_back((after.wal_bytes - before.wal_bytes) / jobs);
  rows.samples.push_back(stored / jobs);
}

long process_rss_kib(pid_t pid) {
  auto s = read_text("/proc/" + std::to_string(pid) + "/status");
  auto at = s.find("VmRSS:");
  return at == std::string::npos ? -1 : std::atol(s.c_str() + at + 6);
}

double q(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0
                   : v[std::min(v.size() - 1,
                                static_cast<std::size_t>(p * v.size()))];
}

latency_set latency_samples(const job_tracker& tracker) {
  latency_set out;
  std::vector<double> lat;
  std::vector<double> waited;
  std::vector<double> on_node;
  for (auto& [id, j] : tracker.jobs()) {
    if (j.state != "succeeded")
      continue;
    if (j.node_latency_ms >= 0)
      out.on_node.push_back(static_cast<double>(j.node_latency_ms));
    out.total.push_back(
        std::chrono::duration<double, std::milli>(j.finished - j.submitted)
            .count());
    if (j.started != clock_type::time_point{})
      out.waited.push_back(
          std::chrono::duration<double, std::milli>(j.started - j.submitted)
              .count());
  }
  return out;
}

void write_statements(const std::string& pg_url, const std::string& path) {
  pqxx::connection c{pg_url};
  pqxx::nontransaction t{c};
  t.exec("create extension if not exists pg_stat_statements");
  auto rows =
      t.exec("select calls, plans, round(total_exec_time::numeric, 1), "
             "round(mean_exec_time::numeric, 3), "
             "round(mean_plan_time::numeric, 3), rows, "
             "regexp_replace(query, '\\s+', ' ', 'g') from pg_stat_statements "
             "order by total_exec_time desc limit 25");
  // Planning is counted only with pg_stat_statements.track_planning = on.
  std::ofstream out{path};
  out << "calls | plans | total ms | mean ms | mean plan ms | rows | query\n";
  for (const auto& r : rows) {
    for (int k = 0; k < 6; ++k)
      out << r[k].c_str() << " | ";
    out << r[6].c_str() << "\n";
  }
}

options parse_options(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&] {
      if (i + 1 >= argc)
        fail(a + " needs a value");
      return std::string{argv[++i]};
    };
    if (a == "--troupe")
      o.troupe = next();
    else if (a == "--runs")
      o.runs = std::max(1, std::atoi(next().c_str()));
    else if (a == "--quick")
      o.quick = true;
    else if (a == "--markdown")
      o.markdown = next();
    else if (a == "--statements")
      o.statements = next();
    else if (a == "--only") {
      std::stringstream ss{next()};
      for (std::string s; std::getline(ss, s, ',');)
        o.only.insert(s);
    } else if (a == "--node-option") {
      auto kv = next();
      auto eq = kv.find('=');
      if (eq == std::string::npos)
        fail("--node-option needs KEY=VALUE (a TOML value), got " + kv);
      o.node_options.push_back(kv.substr(0, eq) + " = " + kv.substr(eq + 1));
    } else
      fail("unknown argument " + a);
  }
  return o;
}

} // namespace troupe::bench
