// End-to-end benchmarks of troupe against its ceilings, measured in the same
// run on the same machine: it starts its own nats-server (JetStream) and
// PostgreSQL on loopback, measures what raw JetStream and raw PostgreSQL can
// do with messages and rows shaped like troupe's, then runs troupe nodes
// (the real binary) through each scenario. Every figure is the median of
// --runs runs, with min and max. Driven by scripts/bench.sh; results are
// recorded in docs/benchmarks.md.
//
// Usage: bench_runtime --troupe PATH [--runs N] [--quick] [--markdown FILE]
//        [--only NAME[,NAME...]]   (ceilings, idle, throughput, metrics
//                                   and claim_first (parts of throughput),
//                                   latency, retry, exec, scheduler)
//        [--statements FILE]       PostgreSQL's costliest statements
//        [--node-option KEY=VALUE] a [node] setting, over the bench's (TOML)
#include <algorithm>
#include <arpa/inet.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <netinet/in.h>
#include <set>
#include <sstream>
#include <string>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

#define PQXX_HAVE_OPTIONAL
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "bench/bench_common.hpp"
#include "bench/bench_node.hpp"
#include "bench/bench_scheduler.hpp"
#include "bench/ceilings.hpp"
#include "bench/floors.hpp"
#include "bench/targets.hpp"
#include "bench/timeline.hpp"
#include "messages/errc.hpp"
#include "runtime/cli/local_servers.hpp"
#include "runtime/client/job_tracker.hpp"
#include "runtime/exec/process.hpp"
#include "runtime/nats/nats_client.hpp"

using namespace troupe;
using namespace troupe::bench;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

class runtime_bench {
public:
  explicit runtime_bench(options o) : o_(std::move(o)) {
    char tmpl[] = "/tmp/troupe-bench-XXXXXX";
    if (!mkdtemp(tmpl))
      fail("mkdtemp");
    dir_ = tmpl;
    nats_port_ = free_port();
    pg_port_ = free_port();
    if (auto err = nats_.start(dir_, nats_port_))
      fail(describe(err));
    if (auto err = pg_.start(dir_, pg_port_))
      fail(describe(err));
    nats_connect_options co;
    co.urls = nats_.url();
    auto c = nats_client::connect(co);
    if (!c)
      fail(describe(c.error()));
    client_ = *c;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = 4096;
    jsCtx* js = nullptr;
    natsConnection_JetStream(&js, client_->conn(), &jo);
    async_js_ = js;
  }

  ~runtime_bench() {
    stop_node();
    if (async_js_)
      jsCtx_Destroy(async_js_);
    client_.reset();
    nats_.stop();
    pg_.stop();
    run_command({"rm", "-rf", dir_}, 60s);
  }

  int n(int full, int quick) const { return o_.quick ? quick : full; }
  bool wanted(const std::string& s) const {
    return o_.only.empty() || o_.only.count(s);
  }

  // -- ceilings --------------------------------------------------------

  void ceilings() {
    auto figs = measure_ceilings(
        {o_.runs, o_.quick, *client_, async_js_, pg_.url(), nats_.url()});
    js_ceiling_ = figs.at(2).median();
    out_.insert(out_.end(), figs.begin(), figs.end());
    auto floors = measure_floors(
        {o_.runs, o_.quick, *client_, async_js_, pg_.url(), nats_.url()});
    out_.insert(out_.end(), floors.begin(), floors.end());
  }

  // -- troupe nodes
  // --------------------------------------------------------------

  std::string node_config(bool metrics) const {
    return bench_node_config(
        nats_.url(), pg_.url(),
        {metrics, speculate_, send_asap_, o_.node_options});
  }

  void start_node(bool metrics) {
    stop_node();
    auto cfg = dir_ + "/node.toml";
    std::ofstream{cfg} << node_config(metrics);
    // Every pipeline starts paused: jobs are published first, then the
    // clock starts when the pipeline is unpaused.
    auto m = run_command({o_.troupe, "migrate", "--config", cfg}, 60s);
    if (m.exit_code != 0)
      fail("migrate: " + m.output);
    {
      pqxx::connection c{pg_.url()};
      pqxx::work w{c};
      w.exec("insert into pipeline_controls (pipeline, paused) values "
             "('tput', true), ('one', true), ('retry', true), ('exec', true) "
             "on conflict (pipeline) do update set paused = true");
      w.commit();
    }
    log_ = dir_ + "/node-" + std::to_string(++nodes_started_) + ".log";
    auto pid = spawn_process({o_.troupe, "node", "--config", cfg}, log_);
    if (!pid)
      fail(describe(pid.error()));
    node_pid_ = *pid;
    auto end = clock_type::now() + 60s;
    while (read_text(log_).find("http on") == std::string::npos) {
      if (clock_type::now() > end)
        fail("node did not start: " + read_text(log_));
      std::this_thread::sleep_for(50ms);
    }
    // Warm up (connections, allocator, first fetches) before measuring.
    drain_pipeline("one", 300, -1);
  }

  void stop_node() {
    if (node_pid_ > 0)
      stop_process(node_pid_, 30s);
    node_pid_ = -1;
  }

  void idle_cpu() {
    figure idle{
        "idle", "node CPU while idle (4 pipelines, 1 node)", "%", {}, ""};
    start_node(true);
    std::this_thread::sleep_for(2s);
    for (int r = 0; r < o_.runs; ++r) {
      auto c0 = process_cpu_seconds(node_pid_);
      auto t0 = clock_type::now();
      std::this_thread::sleep_for(o_.quick ? 3s : 10s);
      idle.samples.push_back((process_cpu_seconds(node_pid_) - c0) /
                             seconds_since(t0) * 100);
    }
    out_.push_back(idle);
  }

  void control(const std::string& verb, const std::string& pipeline) {
    auto r = client_->request("troupe.admin.any.control." + verb,
                              json{{"pipeline", pipeline}}.dump(), 10000);
    if (!r || json::parse(*r, nullptr, false).value("ok", false) == false)
      fail(verb + " " + pipeline + " failed");
  }

  /// Jobs of `pipeline` that finished since `since_ms` (wall clock). The
  /// tables are not emptied between runs: later runs work against tables
  /// that hold earlier runs' jobs, as a node in production does.
  std::int64_t terminal(const std::string& pipeline, std::int64_t since_ms) {
    pqxx::connection& c = db();
    pqxx::nontransaction t{c};
    return t
        .exec_params1("select count(*) from jobs where pipeline = $1 and "
                      "state in ('succeeded', 'dead_lettered') and "
                      "created_at >= to_timestamp($2::bigint / 1000.0)",
                      pipeline, since_ms)[0]
        .as<std::int64_t>();
  }

  pqxx::connection& db() {
    if (!db_)
      db_ = std::make_unique<pqxx::connection>(pg_.url());
    return *db_;
  }

  /// Publishes `count` jobs to a paused pipeline, unpauses it and returns
  /// jobs per second from the unpause to the last terminal state. If
  /// `cpu_us` is given, it receives the node's CPU time per job (user +
  /// system, microseconds): steadier than wall time on a shared machine.
  double drain_pipeline(const std::string& pipeline, int count, int run,
                        double* cpu_us = nullptr,
                        cost_figures* costs = nullptr) {
    auto since = wall_ms(); // same machine: the database clock agrees
    auto prefix = pipeline + "-" + std::to_string(run) + "-" +
                  std::to_string(nodes_started_) + "-";
    publish_all(async_js_, "troupe.jobs." + pipeline, prefix, count);
    auto spent = [&] {
      return read_server_costs(pg_.url(), pg_.pid(), nats_.pid());
    };
    auto s0 = costs ? spent() : server_costs{};
    auto t0 = clock_type::now();
    auto c0 = process_cpu_seconds(node_pid_);
    control("unpause", pipeline);
    auto end = t0 + 600s;
    // Asked every 20 ms, the count took a third of a core from PostgreSQL:
    // seldom until the end is near, then often (error under 10 ms).
    for (std::int64_t done = 0; (done = terminal(pipeline, since)) < count;) {
      if (clock_type::now() > end)
        fail(pipeline + ": jobs did not finish");
      std::this_thread::sleep_for(done < count - count / 10 ? 200ms : 10ms);
    }
    auto secs = seconds_since(t0);
    if (cpu_us)
      *cpu_us = (process_cpu_seconds(node_pid_) - c0) * 1e6 / count;
    if (costs)
      costs->add(s0, spent(), count, rows_of_jobs(pg_.url(), prefix));
    control("pause", pipeline);
    return count / secs;
  }

  void throughput_and_metrics(bool with_metrics_off) {
    int count = n(20000, 2000);
    auto on =
        named("throughput", "3-stage noop, published to the stream", "jobs/s");
    auto off = named("metrics", "same, node.metrics = false", "jobs/s");
    auto rss = named("throughput", "node RSS after the run", "MiB");
    auto cpu_on = named("throughput", "node CPU per job", "µs");
    auto cpu_off =
        named("metrics", "node CPU per job, node.metrics = false", "µs");
    // The same without speculation: claim first, one commit per stage.
    auto claim_first = named(
        "throughput",
        "same, node.speculate = 0 (claim, then a commit per stage)", "jobs/s");
    cost_figures costs;
    for (int r = 0; r < o_.runs; ++r) {
      double cpu = 0;
      start_node(true);
      on.samples.push_back(drain_pipeline("tput", count, r, &cpu, &costs));
      cpu_on.samples.push_back(cpu);
      rss.samples.push_back(process_rss_kib(node_pid_) / 1024.0);
      rss.note = store_profile(log_);
      if (with_metrics_off) {
        start_node(false);
        off.samples.push_back(drain_pipeline("tput", count, r, &cpu));
        cpu_off.samples.push_back(cpu);
      }
      if (!wanted("claim_first"))
        continue;
      speculate_ = false;
      start_node(true);
      claim_first.samples.push_back(drain_pipeline("tput", count, r, &cpu));
      claim_first.note = "node CPU per job " + fmt(cpu, 0) + " µs (last run)";
      speculate_ = true;
    }
    if (js_ceiling_ > 0)
      on.note = "ratio to the JetStream ceiling: " +
                fmt(on.median() / js_ceiling_, 2);
    for (auto* f : {&on, &cpu_on, &costs.pg_cpu, &costs.nats_cpu, &costs.wal,
                    &costs.rows, &claim_first, &rss})
      if (!f->samples.empty())
        out_.push_back(*f);
    if (with_metrics_off) {
      off.note = "metrics cost: " +
                 fmt((off.median() - on.median()) / off.median() * 100, 1) +
                 " % of throughput";
      out_.push_back(off);
      cpu_off.note =
          "metrics cost: " +
          fmt((cpu_on.median() - cpu_off.median()) / cpu_off.median() * 100,
              1) +
          " % of node CPU per job";
      out_.push_back(cpu_off);
    }
  }

  void latency() {
    timeline_.collect(true);
    for (auto pipeline : {"one", "tput"})
      latency_of(pipeline);
    // Publishes written at once; then a claim and a commit per stage.
    send_asap_ = true;
    latency_of("one", ", nats.send_asap");
    send_asap_ = false;
    speculate_ = false;
    latency_of("tput", ", node.speculate = 0");
    speculate_ = true;
    timeline_.collect(false);
  }

  /// Submit→job.succeeded at a fixed 200 jobs/s through the request/reply
  /// API, as a client sees it (the client's clock at both ends), split into
  /// waiting for a node (submit→job.started) and running.
  void latency_of(const std::string& pipeline,
                  const std::string& variant = "") {
    int rate = 200;
    int secs = o_.quick ? 2 : 10;
    std::string label =
        (pipeline == "one" ? "1-stage noop" : "3-stage noop") + variant;
    auto ms = [&](const std::string& what, const std::string& note = "") {
      return named("latency", label + ": " + what, "ms", note);
    };
    auto p50 = ms("submit→succeeded p50 at 200 jobs/s");
    auto p99 = ms("p99");
    auto p999 = ms("p99.9");
    auto queue = ms("submit→job.started p50");
    // Where the time goes: the API round trip (request → JetStream publish
    // with ack → reply) and, from the terminal event, publication → terminal
    // state on the node (fetch, run, commit; ms resolution). The timeline
    // (bench/timeline.hpp) has it part by part.
    auto api = ms("submit→API reply p50");
    auto node = ms("publication→terminal on the node p50",
                   "from the event's latency_ms (1 ms resolution)");
    // The node's commits while the run's jobs went through (batch size in
    // the note: at 200 jobs/s most commits carry one job).
    auto commit = ms("store commit, average");
    start_node(true);
    control("unpause", pipeline);
    for (int r = 0; r < o_.runs; ++r) {

      subjects subj{"troupe"};
      job_tracker tracker{client_, subj, pipeline};
      if (auto err = tracker.start())
        fail(describe(err));
      std::this_thread::sleep_for(200ms);
      auto before = node_metrics(log_, commit_metric_names());
      // Keys unique per node started: a repeated key would be a duplicate.
      auto prefix = "lat-" + pipeline + std::to_string(nodes_started_) + "-" +
                    std::to_string(r) + "-";
      auto replies =
          submit_paced(*client_, tracker, pipeline, prefix, rate, secs);
      tracker.wait_all(60s, {});
      timeline_.add_client(tracker);
      add_commit_sample(commit, before,
                        node_metrics(log_, commit_metric_names()));
      auto [lat, waited, on_node] = latency_samples(tracker);
      if (lat.empty())
        fail("no latency samples");
      p50.samples.push_back(q(lat, 0.5));
      p99.samples.push_back(q(lat, 0.99));
      p999.samples.push_back(q(lat, 0.999));
      queue.samples.push_back(q(waited, 0.5));
      api.samples.push_back(q(replies, 0.5));
      node.samples.push_back(q(on_node, 0.5));
    }
    control("pause", pipeline);
    auto pid = node_pid_;
    stop_node(); // it writes its stamps as it stops
    timeline_.add_node(pid, label);
    out_.push_back(p50);
    out_.push_back(p99);
    out_.push_back(p999);
    out_.push_back(queue);
    out_.push_back(api);
    out_.push_back(node);
    if (!commit.samples.empty())
      out_.push_back(commit);
  }

  void retry_path() {
    // As many as for throughput: 5,000 ran in 0.4 s, the unpause and last
    // commit a large share of it (docs/benchmarks.md, session 25).
    int count = n(20000, 2000);
    figure one{"retry", "1-stage noop (reference)", "jobs/s", {}, ""};
    figure retry{
        "retry", "1 stage failing once, 10 ms backoff", "jobs/s", {}, ""};
    figure cpu1{"retry", "node CPU per job, reference", "µs", {}, ""};
    figure cpu2{"retry", "node CPU per job, failing once", "µs", {}, ""};
    // What the servers spent on each: where the retry's extra cost is.
    cost_figures costs1, costs2;
    start_node(true);
    for (int r = 0; r < o_.runs; ++r) {
      double c1 = 0, c2 = 0;
      one.samples.push_back(drain_pipeline("one", count, r, &c1, &costs1));
      retry.samples.push_back(drain_pipeline("retry", count, r, &c2, &costs2));
      cpu1.samples.push_back(c1);
      cpu2.samples.push_back(c2);
    }
    retry.note = "extra wall time per retried job (amortised): " +
                 fmt((1 / retry.median() - 1 / one.median()) * 1000, 3) + " ms";
    out_.insert(out_.end(), {one, retry, cpu1, cpu2});
    for (auto [c, which] :
         {std::pair{&costs1, "reference"}, std::pair{&costs2, "failing once"}})
      for (auto f : {c->pg_cpu, c->nats_cpu, c->rows}) {
        f.scenario = "retry";
        f.what += std::string{", "} + which;
        f.note.clear();
        out_.push_back(f);
      }
  }

  void scheduler_path() {
    start_node(true);
    control("unpause", "one");
    auto figs =
        scheduler_figures({pg_.url(), node_pid_, "one", o_.runs, o_.quick});
    out_.insert(out_.end(), figs.begin(), figs.end());
  }

  void exec_path() {
    int count = n(2000, 200);
    figure ex{"exec", "1 exec stage running /bin/cat", "jobs/s", {}, ""};
    start_node(true);
    for (int r = 0; r < o_.runs; ++r)
      ex.samples.push_back(drain_pipeline("exec", count, r));
    ex.note = "about " + fmt(1000 / ex.median(), 2) +
              " ms of wall time per process (16 blocking threads)";
    out_.push_back(ex);
    out_.push_back(spawn_ceiling(o_.runs, o_.quick));
  }

  const options& opts() const { return o_; }
  std::string pg_url() const { return pg_.url(); }
  std::vector<figure>& results() { return out_; }
  std::string timeline_table() const { return timeline_.markdown(); }

private:
  options o_;
  std::string dir_;
  int nats_port_ = 0;
  int pg_port_ = 0;
  local_nats nats_;
  local_postgres pg_;
  std::shared_ptr<nats_client> client_;
  jsCtx* async_js_ = nullptr;
  std::unique_ptr<pqxx::connection> db_;
  pid_t node_pid_ = -1;
  int nodes_started_ = 0;
  /// Nodes started from now on flush every publish at once.
  bool send_asap_ = false;
  /// Nodes started from now on speculate (node.speculate = 20ms) or not (0).
  bool speculate_ = true;
  std::string log_;
  double js_ceiling_ = 0;
  std::vector<figure> out_;
  timeline timeline_{dir_};
};

} // namespace

int run(const options& o);

int main(int argc, char** argv) {
  auto o = parse_options(argc, argv);
  if (o.quick)
    o.runs = 1;
  try {
    return run(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_runtime: %s\n", e.what());
    return 1;
  }
}

int run(const options& o) {
  runtime_bench b{o};
  auto step = [&](const char* name, auto fn) {
    if (!b.wanted(name))
      return;
    auto t0 = clock_type::now();
    std::fprintf(stderr, "bench: %s ...\n", name);
    fn();
    std::fprintf(stderr, "bench: %s done in %.1f s\n", name, seconds_since(t0));
  };
  step("ceilings", [&] { b.ceilings(); });
  step("idle", [&] { b.idle_cpu(); });
  step("throughput", [&] {
    b.throughput_and_metrics(b.wanted("metrics"));
    if (!o.statements.empty())
      write_statements(b.pg_url(), o.statements);
  });
  // Without the throughput scenario, the statements of what did run.
  auto statements_at_end = !o.statements.empty() && !b.wanted("throughput");
  step("latency", [&] { b.latency(); });
  step("retry", [&] { b.retry_path(); });
  step("exec", [&] { b.exec_path(); });
  step("scheduler", [&] { b.scheduler_path(); });
  if (statements_at_end)
    write_statements(b.pg_url(), o.statements);
  auto t = figures_table(b.results()) +
           "\nRound two's targets, from this run's figures:\n\n" +
           targets_table(b.results()) + b.timeline_table();
  std::fputs(t.c_str(), stdout);
  if (!o.markdown.empty())
    std::ofstream{o.markdown} << t;
  return 0;
}
