#include "bench/bench_scheduler.hpp"
#include "bench/bench_node.hpp"

#include <thread>

#define PQXX_HAVE_OPTIONAL
#include <pqxx/pqxx>

namespace troupe::bench {

namespace {

using namespace std::chrono_literals;

std::int64_t count(pqxx::connection& c, const std::string& sql) {
  pqxx::nontransaction n{c};
  return n.exec1(sql)[0].as<std::int64_t>();
}

/// Enqueues `n` jobs keyed `<tag>-<i>`, job i due at start + i / rate
/// seconds (all at `start` if rate is 0), its due time in its payload.
void enqueue(pqxx::connection& c, const scheduler_env& env,
             const std::string& tag, int n, double rate, double lead_s) {
  pqxx::work w{c};
  w.exec_params(
      "with t as (select now() + $4::float8 * interval '1 second' as start) "
      "select troupe.enqueue($1, jsonb_build_object('due_ms', "
      "extract(epoch from d) * 1000), $2 || '-' || i, d) from t, "
      "generate_series(1, $3::int) i, lateral (select t.start + case when "
      "$5::float8 > 0 then (i / $5::float8) * interval '1 second' else "
      "interval '0' end as d) x",
      env.pipeline, tag, n, lead_s, rate);
  w.commit();
}

/// Waits until the `n` jobs keyed `<tag>-*` succeeded (fails after 10 min).
void await_done(pqxx::connection& c, const std::string& tag, int n) {
  auto end = clock_type::now() + 600s;
  while (count(c, "select count(*) from jobs where job_id like '" + tag +
                      "-%' and state = 'succeeded'") < n) {
    if (clock_type::now() > end)
      fail("scheduler: jobs " + tag + " did not finish");
    std::this_thread::sleep_for(50ms);
  }
}

/// ms from each job's time to its attempt's start.
std::vector<double> lags(pqxx::connection& c, const std::string& tag) {
  pqxx::nontransaction n{c};
  std::vector<double> out;
  for (const auto& r :
       n.exec("select extract(epoch from a.started_at) * 1000 - "
              "(j.payload->>'due_ms')::float8 from job_attempts a join jobs j "
              "using (job_id) where j.job_id like '" +
              tag + "-%'"))
    out.push_back(r[0].as<double>());
  return out;
}

/// Jobs per second from the (common) due time to the last attempt's start.
double burst_rate(pqxx::connection& c, const std::string& tag, int n) {
  pqxx::nontransaction t{c};
  auto span = t.exec1("select extract(epoch from max(a.started_at)) * 1000 - "
                      "min((j.payload->>'due_ms')::float8) from job_attempts "
                      "a join jobs j using (job_id) where j.job_id like '" +
                      tag + "-%'")[0]
                  .as<double>();
  return n / (span / 1000.0);
}

/// RSS growth (MiB) of the node while `n` jobs wait an hour in the store.
double waiting_growth(pqxx::connection& c, const scheduler_env& env, int n) {
  auto before = process_rss_kib(env.node_pid);
  {
    pqxx::work w{c};
    w.exec_params("select troupe.enqueue($1, '{}', 'far-' || i, now() + "
                  "interval '1 hour') from generate_series(1, $2) i",
                  env.pipeline, n);
    w.commit();
  }
  std::this_thread::sleep_for(5s); // several scheduler passes
  auto after = process_rss_kib(env.node_pid);
  pqxx::work w{c};
  w.exec("delete from jobs where job_id like 'far-%'");
  w.commit();
  return (after - before) / 1024.0;
}

} // namespace

std::vector<figure> scheduler_figures(const scheduler_env& env) {
  int burst = env.quick ? 2000 : 20000;
  int paced = env.quick ? 1000 : 5000;
  double rate = env.quick ? 200 : 500;
  figure b{"scheduler",
           "due jobs run per second, " + std::to_string(burst) +
               " due at once (SQL enqueue → attempt start)",
           "jobs/s",
           {},
           ""};
  figure p50{"scheduler",
             "lag p50, jobs due at " + fmt(rate, 0) + "/s",
             "ms",
             {},
             "run_at → attempt start"};
  figure p99{
      "scheduler", "lag p99, jobs due at " + fmt(rate, 0) + "/s", "ms", {}, ""};
  pqxx::connection c{env.pg_url};
  for (int r = 0; r < env.runs; ++r) {
    auto tag = "burst" + std::to_string(r);
    enqueue(c, env, tag, burst, 0, 2);
    await_done(c, tag, burst);
    b.samples.push_back(burst_rate(c, tag, burst));
    tag = "paced" + std::to_string(r);
    enqueue(c, env, tag, paced, rate, 1);
    await_done(c, tag, paced);
    auto l = lags(c, tag);
    p50.samples.push_back(q(l, 0.5));
    p99.samples.push_back(q(l, 0.99));
  }
  int waiting = env.quick ? 50000 : 1000000;
  figure mem{"scheduler",
             "node RSS growth with " + std::to_string(waiting) +
                 " jobs waiting in the store",
             "MiB",
             {waiting_growth(c, env, waiting)},
             "one run"};
  return {b, p50, p99, mem};
}

} // namespace troupe::bench
