#include "chaos_run.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <map>
#include <mutex>
#include <ostream>
#include <random>
#include <thread>

#include <unistd.h>

#include "broker_remedy.hpp"
#include "fault_plan.hpp"
#include "messages/errc.hpp"
#include "soak_sampler.hpp"
#include "tests/runtime/child_process.hpp"
#include "workload.hpp"

namespace troupe::chaos {

namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct action {
  int at_ms = 0;
  std::size_t fault = 0;
  bool begin = true;
};

/// A cancel the operator issues during the run.
struct planned_cancel {
  int at_ms = 0;
  std::string job_id;
};

class runner {
public:
  runner(const run_options& o, std::ostream& log) : opts_(o), log_(log) {}

  run_result run();

private:
  std::string setup();
  void draw();
  void load_phase();
  void settle_phase();
  void drain_stream();
  void restart_broker(const std::string& why);
  std::string tidy_if_left();
  void tick(int now);
  void client_loop();
  void apply(const action& a);
  void begin_fault(const fault& f);
  void end_fault(const fault& f);
  void note(const std::string& what);
  backlog_sample backlog_now();
  int now_ms() const {
    return static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() -
                                                              start_)
            .count());
  }

  run_options opts_;
  std::ostream& log_;
  std::unique_ptr<chaos_cluster> cluster_;
  std::shared_ptr<nats_client> nats_;
  std::unique_ptr<client_driver> driver_;
  std::vector<fault> plan_;
  std::vector<action> actions_;
  std::size_t next_action_ = 0;
  std::vector<planned_job> jobs_;
  std::vector<planned_cancel> cancels_;
  std::size_t next_cancel_ = 0;
  std::set<std::string> cancel_asked_;
  std::map<std::size_t, std::vector<fault_window>> windows_;
  bool fixed_ = false;
  steady::time_point start_;
  std::atomic<bool> stop_client_{false};
  std::mutex log_mtx_; ///< the client thread narrates too
  std::thread client_;
  std::unique_ptr<soak_sampler> sampler_;
};

std::string runner::setup() {
  write_stage_scripts(opts_.dir);
  cluster_ =
      std::make_unique<chaos_cluster>(opts_.dir, pipelines_config(opts_.dir));
  if (auto err = cluster_->start(); !err.empty())
    return err;
  nats_connect_options o;
  o.urls = cluster_->nats_urls();
  auto c = nats_client::connect(o);
  if (!c)
    return "harness client: " + troupe::describe(c.error());
  nats_ = *c;
  driver_ = std::make_unique<client_driver>(nats_, "troupe");
  return "";
}

void runner::draw() {
  auto run_ms = opts_.load_seconds * 1000;
  if (opts_.soak_seconds > 0) {
    plan_ = draw_soak_plan(opts_.seed, run_ms);
    jobs_ = soak_jobs(opts_.seed, opts_.jobs, run_ms);
  } else {
    plan_ = draw_plan(opts_.seed, run_ms, cluster_->clock_jumps(),
                      opts_.nats_faults);
    jobs_ = draw_jobs(opts_.seed, opts_.jobs, run_ms);
  }
  for (std::size_t i = 0; i < plan_.size(); ++i) {
    actions_.push_back({plan_[i].at_ms, i, true});
    actions_.push_back({plan_[i].at_ms + plan_[i].hold_ms, i, false});
  }
  std::stable_sort(actions_.begin(), actions_.end(),
                   [](auto& a, auto& b) { return a.at_ms < b.at_ms; });
  std::mt19937_64 rng{opts_.seed * 31 + 7};
  for (auto& j : jobs_)
    if (j.pipeline == "slow" && rng() % 3 == 0)
      cancels_.push_back({j.at_ms + static_cast<int>(rng() % 2500), j.id});
  std::stable_sort(cancels_.begin(), cancels_.end(),
                   [](auto& a, auto& b) { return a.at_ms < b.at_ms; });
  for (auto& f : plan_)
    log_ << "  plan: " << describe(f) << "\n";
}

void runner::note(const std::string& what) {
  std::lock_guard<std::mutex> guard{log_mtx_};
  log_ << "  [" << now_ms() / 1000.0 << " s] " << what << "\n" << std::flush;
}

void runner::begin_fault(const fault& f) {
  auto& c = *cluster_;
  switch (f.kind) {
  case fault_kind::kill_one:
    c.signal_node(f.a, SIGKILL, "kill_one");
    break;
  case fault_kind::kill_two:
    c.signal_node(f.a, SIGKILL, "kill_two");
    c.signal_node(f.b, SIGKILL, "kill_two");
    break;
  case fault_kind::zombie:
    c.signal_node(f.a, SIGSTOP, "");
    break;
  case fault_kind::kill_after_effect:
    for (int i = 0; i < node_count; ++i)
      c.allow_kill(i, true);
    test::write_file(opts_.dir + "/kill-after-effect", "armed\n");
    break;
  case fault_kind::nats_restart:
    c.stop_nats(f.a);
    break;
  case fault_kind::nats_loss:
    c.pause_nats(f.a, true);
    break;
  case fault_kind::nats_crash:
    c.kill_nats(f.a);
    break;
  case fault_kind::leader_move:
    (void)nats_->request("$JS.API.STREAM.LEADER.STEPDOWN.TROUPE_JOBS", "",
                         5000);
    break;
  case fault_kind::pg_restart:
    c.kill_pg();
    break;
  case fault_kind::pg_outage:
    c.stop_pg();
    break;
  case fault_kind::cut_pg:
  case fault_kind::cut_nats:
  case fault_kind::cut_both:
    c.cut(f.a, f.kind != fault_kind::cut_pg, f.kind != fault_kind::cut_nats,
          true);
    break;
  case fault_kind::clock_jump:
    c.jump_clock(f.jump_s);
    break;
  case fault_kind::slow_nats:
    c.slow_nats(f.a, static_cast<std::size_t>(f.kib_per_s) * 1024);
    break;
  }
}

void runner::end_fault(const fault& f) {
  auto& c = *cluster_;
  std::string err;
  switch (f.kind) {
  case fault_kind::kill_two:
    c.restart_node(f.b);
    [[fallthrough]];
  case fault_kind::kill_one:
    c.restart_node(f.a);
    break;
  case fault_kind::zombie:
    c.signal_node(f.a, SIGCONT, "");
    break;
  case fault_kind::kill_after_effect:
    ::unlink((opts_.dir + "/kill-after-effect").c_str());
    c.reap_unexpected();
    for (int i = 0; i < node_count; ++i)
      c.allow_kill(i, false);
    break;
  case fault_kind::nats_loss:
    c.pause_nats(f.a, false);
    break;
  case fault_kind::nats_restart:
  case fault_kind::nats_crash:
    err = c.start_nats(f.a);
    break;
  case fault_kind::pg_restart:
  case fault_kind::pg_outage:
    err = c.start_pg();
    break;
  case fault_kind::cut_pg:
  case fault_kind::cut_nats:
  case fault_kind::cut_both:
    c.cut(f.a, true, true, false);
    break;
  case fault_kind::clock_jump:
    c.jump_clock(0);
    break;
  case fault_kind::slow_nats:
    c.slow_nats(f.a, 0);
    break;
  default:
    break;
  }
  if (!err.empty())
    note("could not undo " + describe(f) + ": " + err);
}

void runner::apply(const action& a) {
  auto& f = plan_[a.fault];
  note(std::string{a.begin ? "begin " : "end   "} + describe(f));
  if (a.begin) {
    auto cluster =
        f.kind == fault_kind::kill_after_effect ||
        (f.a < 0 || f.kind == fault_kind::nats_restart ||
         f.kind == fault_kind::nats_loss || f.kind == fault_kind::nats_crash);
    auto node = f.kind == fault_kind::clock_jump ? node_count - 1 : f.a;
    auto& w = windows_[a.fault];
    w.push_back({describe(f), wall_ms(), 0, cluster ? -1 : node, cluster});
    if (f.b >= 0)
      w.push_back({describe(f), wall_ms(), 0, f.b, false});
    begin_fault(f);
  } else {
    end_fault(f);
    for (auto& w : windows_[a.fault])
      w.to_ms = wall_ms();
  }
}

void runner::tick(int now) {
  while (next_action_ < actions_.size() && actions_[next_action_].at_ms <= now)
    apply(actions_[next_action_++]);
  if (!fixed_ && now >= opts_.load_seconds * 500) {
    test::write_file(opts_.dir + "/fixed", "yes\n");
    fixed_ = true;
    note("the fixable stage is fixed");
  }
  cluster_->reap_unexpected();
}

// Submissions and cancels wait on replies (seconds, while a server is
// down): on a thread of their own, the fault schedule keeps its times.
void runner::client_loop() {
  while (!stop_client_) {
    auto now = now_ms();
    driver_->submit_due(jobs_, now);
    while (next_cancel_ < cancels_.size() &&
           cancels_[next_cancel_].at_ms <= now) {
      auto& id = cancels_[next_cancel_++].job_id;
      if (driver_->was_accepted(id)) {
        cancel_asked_.insert(id);
        auto reply = driver_->cancel(id);
        note("cancel " + id + ": " + reply);
      }
    }
    std::this_thread::sleep_for(50ms);
  }
}

backlog_sample runner::backlog_now() {
  backlog_sample b;
  b.stream = static_cast<long>(stream_leftovers(*nats_, {}, nullptr, nullptr));
  auto now = now_ms();
  auto due =
      std::count_if(jobs_.begin(), jobs_.end(),
                    [now](const planned_job& j) { return j.at_ms <= now; });
  b.behind = std::max<long>(
      0, static_cast<long>(due) - static_cast<long>(driver_->accepted_count()));
  return b;
}

void runner::load_phase() {
  start_ = steady::now();
  if (!opts_.samples.empty()) {
    sampler_ = std::make_unique<soak_sampler>(
        opts_.samples, cluster_->pg_url(),
        [this] {
          std::vector<int> pids;
          for (int i = 0; i < node_count; ++i)
            pids.push_back(cluster_->node_pid(i));
          return pids;
        },
        [this] { return backlog_now(); }, std::chrono::seconds{5});
    sampler_->start();
  }
  client_ = std::thread{[this] { client_loop(); }};
  while (now_ms() < opts_.load_seconds * 1000 ||
         next_action_ < actions_.size()) {
    tick(now_ms());
    std::this_thread::sleep_for(50ms);
  }
  note("load over: " + std::to_string(driver_->accepted().size()) + " of " +
       std::to_string(jobs_.size()) + " jobs accepted");
}

void runner::settle_phase() {
  auto deadline = steady::now() + std::chrono::seconds{opts_.settle_seconds};
  auto last_replay = steady::now() - 10s;
  while (steady::now() < deadline) {
    tick(now_ms());
    try {
      auto open = unfinished(cluster_->pg_url());
      auto done = finished(cluster_->pg_url());
      auto fixable = dead_letters(cluster_->pg_url(), "fixable");
      if (fixable > 0 && steady::now() - last_replay > 3s) {
        note("replaying " + std::to_string(driver_->replay_all("fixable")) +
             " dead-lettered fixable jobs");
        last_replay = steady::now();
      }
      if (open == 0 && fixable == 0 &&
          done >= static_cast<std::int64_t>(jobs_.size()))
        break;
    } catch (const std::exception& e) {
      note(std::string{"the store cannot be asked: "} + e.what());
    }
    std::this_thread::sleep_for(500ms);
  }
  note("settled");
}

void runner::drain_stream() {
  chaos::drain_stream(*nats_, 60s);
}

void runner::restart_broker(const std::string& why) {
  note(why + ": restarting the nats-servers one at a time, as an operator "
             "would");
  for (int i = 0; i < nats_count; ++i) {
    cluster_->stop_nats(i);
    std::this_thread::sleep_for(1s);
    if (auto err = cluster_->start_nats(i); !err.empty())
      note("s" + std::to_string(i + 1) + " did not start again: " + err);
    if (!stream_answers(*nats_, 30s))
      note("the stream does not answer yet after s" + std::to_string(i + 1) +
           " restarted");
  }
  note(stream_answers(*nats_, 30s) ? "the stream answers again"
                                   : "the stream still does not answer");
}

/// Asks a node to tidy the stream as an operator would, when messages are
/// still left after the restart with the replicas apart (broker_remedy.hpp);
/// its reply, or "" when not asked.
std::string runner::tidy_if_left() {
  auto left = left_after_divergence(*nats_, opts_.dir);
  if (left <= 0)
    return "";
  note(std::to_string(left) +
       " messages still left after the restart: asking a node to tidy");
  std::string reply;
  for (int tries = 0; tries < 6; ++tries) { // a sweep may hold the lock
    reply = driver_->tidy();
    note("tidy: " + reply);
    if (reply.find("\"conflict\"") == std::string::npos)
      break;
    std::this_thread::sleep_for(5s);
  }
  drain_stream();
  return reply;
}

run_result runner::run() {
  auto began = steady::now();
  run_result r;
  r.dir = opts_.dir;
  if (auto err = setup(); !err.empty()) {
    r.setup_error = err;
    return r;
  }
  draw();
  load_phase();
  settle_phase();
  stop_client_ = true;
  client_.join();
  if (sampler_)
    sampler_->stop();
  drain_stream();
  if (auto why = broker_needs_restart(*nats_, opts_.dir, opts_.restart_broker);
      !why.empty()) {
    r.broker_restarted = true;
    restart_broker(why);
    settle_phase();
    drain_stream();
    r.tidied = tidy_if_left();
  }
  cluster_->stop_nodes(60s);
  verdict_input in;
  in.pg_url = cluster_->pg_url();
  for (auto& j : jobs_)
    in.planned.insert(j.id);
  in.accepted = driver_->accepted();
  in.cancel_asked = cancel_asked_;
  in.cancelled = driver_->cancelled();
  for (auto& [i, ws] : windows_)
    in.faults.insert(in.faults.end(), ws.begin(), ws.end());
  in.exits = cluster_->exits();
  in.effects_file = opts_.dir + "/effects";
  in.strict_stream = opts_.strict_stream;
  in.dir = opts_.dir;
  r.v = judge(in, *nats_);
  std::map<std::string, int> kinds;
  for (auto& f : plan_)
    ++kinds[name_of(f.kind)];
  for (auto& [k, n] : kinds)
    r.fault_kinds +=
        (r.fault_kinds.empty() ? "" : " ") + k + "x" + std::to_string(n);
  r.faults = static_cast<int>(plan_.size());
  r.jobs = jobs_.size();
  r.seconds = std::chrono::duration<double>(steady::now() - began).count();
  return r;
}

} // namespace

run_result run_chaos(const run_options& opts, std::ostream& log) {
  auto o = opts;
  if (o.soak_seconds > 0) {
    o.load_seconds = o.soak_seconds;
    o.jobs = o.rate * o.soak_seconds;
  }
  if (o.dir.empty()) {
    auto tmpl = "/tmp/troupe-chaos-" + std::to_string(o.seed) + "-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    o.dir = mkdtemp(buf.data());
  } else {
    // --dir names where the run goes: made if missing (the stage scripts
    // are written there first; without it every exec job dead-lettered).
    std::filesystem::create_directories(o.dir);
  }
  runner r{o, log};
  return r.run();
}

} // namespace troupe::chaos
