#include "soak_sampler.hpp"

#include <dirent.h>
#include <sstream>

#define PQXX_HAVE_OPTIONAL
#include <pqxx/pqxx>

#include "tests/support/proc.hpp"

namespace troupe::chaos {

namespace {

long status_field(const std::string& status, const std::string& name) {
  auto at = status.find(name + ":");
  return at == std::string::npos
             ? 0
             : std::atol(status.c_str() + at + name.size() + 1);
}

int count_fds(int pid) {
  auto dir = "/proc/" + std::to_string(pid) + "/fd";
  DIR* d = opendir(dir.c_str());
  if (!d)
    return 0;
  int n = 0;
  while (auto* e = readdir(d))
    n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

// Pace and latency over the last interval, from the system of record: a
// job's time from its first stage's start to its terminal commit (a row
// may be written only at the end, so created_at says nothing).
const char* const sql_window = R"SQL(
select count(*),
  coalesce(percentile_cont(0.5) within group (order by ms), 0),
  coalesce(percentile_cont(0.99) within group (order by ms), 0)
from (select extract(epoch from finished_at - started_at) * 1000 as ms
      from jobs where finished_at > now() - $1::bigint * interval '1 second') w
)SQL";

} // namespace

process_sample sample_process(int pid) {
  process_sample s;
  if (pid <= 0)
    return s;
  auto status =
      test::read_proc_file("/proc/" + std::to_string(pid) + "/status");
  s.rss_kb = status_field(status, "VmRSS");
  s.threads = static_cast<int>(status_field(status, "Threads"));
  s.fds = count_fds(pid);
  return s;
}

soak_sampler::soak_sampler(std::string file, std::string pg_url,
                           std::function<std::vector<int>()> pids,
                           std::function<backlog_sample()> backlog,
                           std::chrono::seconds every)
    : out_(file), pg_url_(std::move(pg_url)), pids_(std::move(pids)),
      backlog_(std::move(backlog)), every_(every) {
  out_ << "t_s\trss_kb_n1\trss_kb_n2\trss_kb_n3\tfds_n1\tfds_n2\tfds_n3\t"
          "threads_n1\tthreads_n2\tthreads_n3\tdone_per_s\tp50_ms\tp99_ms\t"
          "in_stream\tbehind\n";
}

soak_sampler::~soak_sampler() {
  stop();
}

void soak_sampler::start() {
  thread_ = std::thread{[this] { loop(); }};
}

void soak_sampler::stop() {
  stop_ = true;
  if (thread_.joinable())
    thread_.join();
}

std::string soak_sampler::sample_line(double t) {
  std::vector<process_sample> nodes;
  for (auto pid : pids_())
    nodes.push_back(sample_process(pid));
  std::ostringstream line;
  line << t;
  // A node between a kill and its restart has no figures: NaN, so that a
  // plot shows a gap, not a drop to zero.
  auto put = [&](long v, bool alive) {
    if (alive)
      line << '\t' << v;
    else
      line << "\tNaN";
  };
  for (auto& n : nodes)
    put(n.rss_kb, n.threads > 0);
  for (auto& n : nodes)
    put(n.fds, n.threads > 0);
  for (auto& n : nodes)
    put(n.threads, n.threads > 0);
  try {
    pqxx::connection c{pg_url_};
    pqxx::nontransaction tx{c};
    auto r =
        tx.exec_params1(sql_window, static_cast<long long>(every_.count()));
    line << '\t' << r[0].as<double>() / static_cast<double>(every_.count())
         << '\t' << r[1].as<double>() << '\t' << r[2].as<double>();
  } catch (const std::exception&) {
    line << "\tNaN\tNaN\tNaN"; // PostgreSQL down for this sample
  }
  auto waiting = backlog_();
  put(waiting.stream, waiting.stream >= 0);
  line << '\t' << waiting.behind;
  return line.str();
}

void soak_sampler::loop() {
  auto begin = std::chrono::steady_clock::now();
  auto next = begin + every_;
  while (!stop_) {
    std::this_thread::sleep_for(std::chrono::milliseconds{200});
    if (std::chrono::steady_clock::now() < next)
      continue;
    next += every_;
    auto t =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - begin)
            .count();
    out_ << sample_line(t) << '\n' << std::flush;
  }
}

} // namespace troupe::chaos
