#include "runtime/node/node_http.hpp"
#include "runtime/node/job_scheduler.hpp"

#include <chrono>
#include <map>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "actors/atoms.hpp"
#include "messages/heartbeat.hpp"
#include "runtime/common/version.hpp"
#include "runtime/exec/exec_stage.hpp"
#include "runtime/nats/nats_client.hpp"
#include "runtime/node/jetstream_intake.hpp"
#include "runtime/node/stranded_sweeper.hpp"
#include "runtime/observe/metrics.hpp"
#include "runtime/pg/admin_store.hpp"
#include "runtime/pg/migrations.hpp"
#include "runtime/pg/pg_store.hpp"
#include "runtime/pg/retention.hpp"
#include "runtime/ui/ui_assets.hpp"

namespace troupe {

namespace {

/// The exec stages' queue: attempts waiting for a thread or a
/// max_concurrency slot have not started, and their timeouts do not run.
void render_exec_stats(prometheus_text& p, const exec_stats& s) {
  p.family("troupe_exec_waiting", "gauge",
           "Exec attempts waiting for a thread or a max_concurrency slot.");
  p.sample("troupe_exec_waiting", {}, static_cast<double>(s.waiting.load()));
  p.family("troupe_exec_running", "gauge", "Exec stage programs running.");
  p.sample("troupe_exec_running", {}, static_cast<double>(s.running.load()));
  p.family("troupe_exec_queue_wait_seconds", "histogram",
           "From an exec attempt's start to its program's start.");
  s.queue_wait.render(p, "troupe_exec_queue_wait_seconds", {});
}

using json = nlohmann::json;
using steady = std::chrono::steady_clock;

double ms_since(steady::time_point t0) {
  return std::chrono::duration<double, std::milli>(steady::now() - t0).count();
}

json check_nats(const node_http_sources& src, bool& ok) {
  ok = src.nats.health().connected;
  json latency = nullptr;
  if (ok) {
    auto rtt = src.nats.rtt_us();
    ok = static_cast<bool>(rtt);
    if (rtt)
      latency = *rtt / 1000.0;
  }
  return {{"status", ok ? "up" : "down"},
          {"url", redact_url(src.cfg.nats.url)},
          {"latency_ms", latency}};
}

json check_jetstream(const node_http_sources& src, bool nats_ok, bool& ok) {
  auto t0 = steady::now();
  ok = nats_ok;
  json consumers = json::object();
  if (nats_ok)
    for (auto& p : src.pipelines) {
      auto pending = src.nats.consumer_pending(src.cfg.nats, p.name);
      consumers[p.name] =
          pending
              ? json{{"status", "up"}, {"pending", *pending}}
              : json{{"status", "down"}, {"error", describe(pending.error())}};
      ok = ok && static_cast<bool>(pending);
    }
  return {{"status", ok ? "up" : "down"},
          {"stream", src.cfg.nats.stream},
          {"latency_ms", ms_since(t0)},
          {"consumers", consumers}};
}

// A probe on its own connection (bounded by a 3 s connect timeout), and the
// store's own health flag: whether writes go through.
json check_postgres(const node_http_sources& src, admin_store& probe,
                    bool& ok) {
  auto t0 = steady::now();
  std::string error;
  try {
    probe.ping();
  } catch (const std::exception& e) {
    error = e.what();
  }
  ok = error.empty() && src.store_stats->healthy;
  json pg{{"status", ok ? "up" : "down"},
          {"url", redact_url(src.cfg.postgres.url)},
          {"latency_ms", ms_since(t0)},
          {"schema_version", src.schema_version},
          {"schema_expected", latest_schema_version}};
  if (!error.empty())
    pg["error"] = redact_text(error, src.cfg.postgres.url);
  return pg;
}

json check_actors(const node_http_sources& src, bool& ok) {
  auto dead = src.dead_actors ? src.dead_actors() : std::vector<std::string>{};
  ok = dead.empty();
  json out{{"status", ok ? "up" : "down"}};
  if (!ok)
    out["dead"] = dead;
  return out;
}

std::pair<std::string, bool> readiness(const node_http_sources& src,
                                       admin_store& probe) {
  bool nats_ok = false, js_ok = false, pg_ok = false, actors_ok = false;
  json checks;
  checks["nats"] = check_nats(src, nats_ok);
  checks["jetstream"] = check_jetstream(src, nats_ok, js_ok);
  checks["postgres"] = check_postgres(src, probe, pg_ok);
  checks["actors"] = check_actors(src, actors_ok);
  bool ready = nats_ok && js_ok && pg_ok && actors_ok &&
               src.schema_version == latest_schema_version;
  // Degraded: some dependency is down but the node can still make some
  // progress (running jobs keep their results until the store is back);
  // unhealthy: nothing works, or the node's own actors died.
  json doc{{"node", src.cfg.node.id}, {"checks", checks}};
  doc["status"] = ready                             ? "healthy"
                  : actors_ok && (nats_ok || pg_ok) ? "degraded"
                                                    : "unhealthy";
  doc["ready"] = ready;
  return {doc.dump(), ready};
}

void render_jobs(prometheus_text& p, const std::vector<pipeline_stats>& stats) {
  p.family("troupe_jobs_finished_total", "counter",
           "Jobs that reached a terminal state on this node.");
  for (auto& s : stats)
    for (auto [state, n] : {std::pair{"succeeded", s.succeeded},
                            std::pair{"dead_lettered", s.dead_lettered},
                            std::pair{"cancelled", s.cancelled}})
      p.sample("troupe_jobs_finished_total",
               {{"pipeline", s.pipeline}, {"state", state}},
               static_cast<double>(n));
  p.family("troupe_jobs_in_flight", "gauge",
           "Jobs held by this node (running or waiting for a retry).");
  for (auto& s : stats)
    p.sample("troupe_jobs_in_flight", {{"pipeline", s.pipeline}},
             static_cast<double>(s.running + s.queued));
  p.family("troupe_job_actor_restarts_total", "counter",
           "Job actors restarted after dying unexpectedly.");
  for (auto& s : stats)
    p.sample("troupe_job_actor_restarts_total", {{"pipeline", s.pipeline}},
             static_cast<double>(s.restarts));
}

void render_waiting(prometheus_text& p,
                    const std::vector<pipeline_stats>& stats) {
  p.family("troupe_jobs_waiting_retry", "gauge",
           "Jobs on this node waiting for their next attempt.");
  for (auto& s : stats)
    p.sample("troupe_jobs_waiting_retry", {{"pipeline", s.pipeline}},
             static_cast<double>(s.waiting));
}

void render_intakes(prometheus_text& p, const node_pipelines& pipelines) {
  p.family("troupe_intake_messages_total", "counter",
           "JetStream messages by what the intake did with them.");
  for (auto& entry : pipelines) {
    auto& c = entry.intake->counters();
    for (auto [action, n] : {std::pair{"fetched", c.fetched.load()},
                             std::pair{"acked", c.acked.load()},
                             std::pair{"naked", c.naked.load()},
                             std::pair{"invalid", c.invalid.load()}})
      p.sample("troupe_intake_messages_total",
               {{"pipeline", entry.name}, {"action", action}},
               static_cast<double>(n));
  }
}

void render_store(prometheus_text& p, const pg_store_stats& st) {
  p.family("troupe_store_transactions_total", "counter",
           "PostgreSQL transactions committed by the store.");
  p.sample("troupe_store_transactions_total", {},
           static_cast<double>(st.transactions));
  p.family("troupe_store_requests_total", "counter",
           "Claims and writes handled by the store.");
  p.sample("troupe_store_requests_total", {}, static_cast<double>(st.requests));
  p.family("troupe_store_stale_writes_total", "counter",
           "Writes refused because another run owns the job.");
  p.sample("troupe_store_stale_writes_total", {},
           static_cast<double>(st.stale));
  p.family("troupe_store_batch_size", "histogram",
           "Claims and writes committed per PostgreSQL transaction.");
  st.batch_sizes.render(p, "troupe_store_batch_size", {});
  p.family("troupe_store_commit_seconds", "histogram",
           "Time to commit one batch, from its first statement.");
  st.commit_seconds.render(p, "troupe_store_commit_seconds", {});
}

void render_scheduler(prometheus_text& p, const scheduler_stats& st) {
  p.family("troupe_scheduler_published_total", "counter",
           "Jobs this node's scheduler published when they were due.");
  p.sample("troupe_scheduler_published_total", {},
           static_cast<double>(st.published));
  p.family("troupe_scheduler_publish_failures_total", "counter",
           "Due jobs the scheduler could not publish (they stay due).");
  p.sample("troupe_scheduler_publish_failures_total", {},
           static_cast<double>(st.publish_failures));
  p.family("troupe_jobs_rescued_total", "counter",
           "Jobs taken back from nodes that stopped renewing their leases.");
  p.sample("troupe_jobs_rescued_total", {}, static_cast<double>(st.rescued));
  p.family("troupe_scheduler_lag_seconds", "histogram",
           "How late a due job was published after its time.");
  st.lag_seconds.render(p, "troupe_scheduler_lag_seconds", {});
  p.family("troupe_jobs_waiting_in_store", "gauge",
           "Jobs the store holds for their time (cluster-wide, counted "
           "every 10 s): due now, or later.");
  p.sample("troupe_jobs_waiting_in_store", {{"when", "due"}},
           static_cast<double>(st.due));
  p.sample("troupe_jobs_waiting_in_store", {{"when", "later"}},
           static_cast<double>(st.waiting - st.due));
  p.family("troupe_scheduler_oldest_due_seconds", "gauge",
           "How late the oldest due job waiting in the store is.");
  p.sample("troupe_scheduler_oldest_due_seconds", {},
           static_cast<double>(st.oldest_due_ms) / 1000.0);
}

void render_repairs(prometheus_text& p, const node_http_sources& src) {
  if (src.sweeper) {
    const auto& st = *src.sweeper;
    p.family("troupe_sweeper_repairs_total", "counter",
             "What the broker lost or stopped tracking, repaired by this "
             "node's sweeps (docs/reliability.md).");
    auto sample = [&](const char* what, std::int64_t n) {
      p.sample("troupe_sweeper_repairs_total", {{"repair", what}},
               static_cast<double>(n));
    };
    sample("stranded_to_run", st.stranded_to_run);
    sample("stranded_ended", st.stranded_ended);
    sample("lost_submission_republished", st.lost);
    sample("lost_queued_requeued", st.requeued);
    sample("stuck_consumer_moved", st.stuck_consumers);
    sample("consumer_remade", st.remade_consumers);
    p.family("troupe_sweeper_deferred_total", "counter",
             "Sweeps that found the stream's replicas out of step with its "
             "leader (or the stream without one).");
    p.sample("troupe_sweeper_deferred_total", {},
             static_cast<double>(st.deferred));
    p.family("troupe_sweeper_misfiled_total", "counter",
             "Stream lookups on one subject the broker answered with another "
             "subject's message: its subject index is broken; restart the "
             "nats-servers one at a time (docs/operations.md).");
    p.sample("troupe_sweeper_misfiled_total", {},
             static_cast<double>(st.misfiled));
  }
  if (src.unlogged) {
    p.family("troupe_submissions_unlogged_total", "counter",
             "Accepted submissions the submit API could neither log in "
             "PostgreSQL nor keep for a later write (the stream still has "
             "them).");
    p.sample("troupe_submissions_unlogged_total", {},
             static_cast<double>(src.unlogged()));
  }
}

void render_dependencies(prometheus_text& p, const node_http_sources& src) {
  p.family("troupe_dependency_up", "gauge",
           "1 if the dependency is reachable.");
  p.sample("troupe_dependency_up", {{"dependency", "nats"}},
           src.nats.health().connected ? 1 : 0);
  p.sample("troupe_dependency_up", {{"dependency", "postgres"}},
           src.store_stats->healthy ? 1 : 0);
  p.family("troupe_nats_reconnects_total", "counter",
           "NATS reconnections since start.");
  p.sample("troupe_nats_reconnects_total", {},
           static_cast<double>(src.nats.health().reconnects));
  p.family("troupe_jetstream_pending", "gauge",
           "Messages of a pipeline's consumer not yet delivered to any node.");
  for (auto& entry : src.pipelines)
    if (auto n = src.nats.consumer_pending(src.cfg.nats, entry.name))
      p.sample("troupe_jetstream_pending", {{"pipeline", entry.name}},
               static_cast<double>(*n));
}

void render_cluster(prometheus_text& p, const node_http_sources& src) {
  p.family("troupe_cluster_members", "gauge",
           "Cluster members in this node's view, by state.");
  std::map<std::string, int> by_state{{"up", 0}, {"draining", 0}, {"down", 0}};
  caf::scoped_actor self{src.sys};
  self->request(src.member, std::chrono::seconds{1}, get_atom::value)
      .receive(
          [&](std::vector<troupe::member>& view) {
            for (auto& m : view)
              ++by_state[m.state];
          },
          [](caf::error&) {});
  for (auto& [state, n] : by_state)
    p.sample("troupe_cluster_members", {{"state", state}}, n);
}

std::string metrics(const node_http_sources& src) {
  prometheus_text p;
  p.family("troupe_build_info", "gauge", "Version of this troupe node.");
  p.sample("troupe_build_info", {{"version", troupe::version()}}, 1);
  std::vector<pipeline_stats> stats;
  try {
    stats = src.collect_stats();
  } catch (const std::exception&) {
    // Supervisors busy: serve the other metrics rather than nothing.
  }
  render_jobs(p, stats);
  render_intakes(p, src.pipelines);
  render_store(p, *src.store_stats);
  if (src.scheduler)
    render_scheduler(p, *src.scheduler);
  render_dependencies(p, src);
  render_repairs(p, src);
  render_waiting(p, stats);
  render_cluster(p, src);
  p.family("troupe_retention_pruned_total", "counter",
           "Finished jobs pruned by this node.");
  p.sample("troupe_retention_pruned_total", {},
           static_cast<double>(src.pruner->pruned_total()));
  if (src.exec)
    render_exec_stats(p, *src.exec);
  if (src.jmetrics)
    src.jmetrics->render(p);
  return p.str();
}

} // namespace

http_handlers make_node_http_handlers(const node_http_sources& src) {
  http_handlers hh;
  auto probe_db = std::make_shared<admin_store>(src.cfg.postgres.url);
  hh.ready = [src, probe_db] { return readiness(src, *probe_db); };
  hh.metrics = [src] { return metrics(src); };
  hh.files = [](const std::string& path) -> std::optional<static_file> {
    if (auto f = find_ui_file(path))
      return static_file{f->bytes, f->content_type};
    return std::nullopt;
  };
  return hh;
}

} // namespace troupe
