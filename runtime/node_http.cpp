#include "runtime/node_http.hpp"

#include <chrono>
#include <map>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "actors/atoms.hpp"
#include "messages/heartbeat.hpp"
#include "runtime/admin_store.hpp"
#include "runtime/exec_stage.hpp"
#include "runtime/jetstream_intake.hpp"
#include "runtime/metrics.hpp"
#include "runtime/migrations.hpp"
#include "runtime/nats_client.hpp"
#include "runtime/pg_store.hpp"
#include "runtime/retention.hpp"
#include "runtime/version.hpp"

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

} // namespace

http_handlers make_node_http_handlers(const node_http_sources& src) {
  http_handlers hh;
  // Readiness: each dependency with its status and latency. A probe of
  // PostgreSQL runs on its own connection (bounded by a 3 s connect
  // timeout); the store's own health flag says whether writes go through.
  auto probe_db = std::make_shared<admin_store>(src.cfg.postgres.url);
  hh.ready = [src, probe_db] {
    using clock = std::chrono::steady_clock;
    auto ms_since = [](clock::time_point t0) {
      return std::chrono::duration<double, std::milli>(clock::now() - t0)
          .count();
    };
    bool nats_ok = src.nats.health().connected;
    std::int64_t rtt_us = -1;
    if (nats_ok) {
      std::int64_t rtt = 0; // nanoseconds
      if (natsConnection_GetRTT(src.nats.conn(), &rtt) == NATS_OK)
        rtt_us = rtt / 1000;
      else
        nats_ok = false;
    }
    auto t_js = clock::now();
    bool js_ok = nats_ok;
    nlohmann::json consumers = nlohmann::json::object();
    bool consumers_ok = nats_ok;
    if (nats_ok)
      for (auto& [name, def, intake, sup] : src.pipelines) {
        auto pending = src.nats.consumer_pending(src.cfg.nats, name);
        consumers[name] =
            pending ? nlohmann::json{{"status", "up"}, {"pending", *pending}}
                    : nlohmann::json{{"status", "down"},
                                     {"error", describe(pending.error())}};
        consumers_ok = consumers_ok && static_cast<bool>(pending);
        js_ok = js_ok && static_cast<bool>(pending);
      }
    double js_ms = ms_since(t_js);
    auto t_pg = clock::now();
    bool pg_probe = false;
    std::string pg_error;
    try {
      probe_db->ping();
      pg_probe = true;
    } catch (const std::exception& e) {
      pg_error = e.what();
    }
    double pg_ms = ms_since(t_pg);
    bool pg_ok = pg_probe && src.store_stats->healthy;
    nlohmann::json pg{{"status", pg_ok ? "up" : "down"},
                      {"url", redact_url(src.cfg.postgres.url)},
                      {"latency_ms", pg_ms},
                      {"schema_version", src.schema_version},
                      {"schema_expected", latest_schema_version}};
    if (!pg_error.empty())
      pg["error"] = redact_text(pg_error, src.cfg.postgres.url);
    nlohmann::json doc{
        {"node", src.cfg.node.id},
        {"checks",
         {{"nats",
           {{"status", nats_ok ? "up" : "down"},
            {"url", redact_url(src.cfg.nats.url)},
            {"latency_ms", rtt_us < 0 ? nlohmann::json(nullptr)
                                      : nlohmann::json(rtt_us / 1000.0)}}},
          {"jetstream",
           {{"status", js_ok ? "up" : "down"},
            {"stream", src.cfg.nats.stream},
            {"latency_ms", js_ms},
            {"consumers", consumers}}},
          {"postgres", pg}}}};
    bool ready = nats_ok && js_ok && pg_ok &&
                 src.schema_version == latest_schema_version;
    // Degraded: some dependency is down but the node can still make some
    // progress (e.g. running jobs keep their results until the store is
    // back); unhealthy: nothing works.
    doc["status"] = ready                ? "healthy"
                    : (nats_ok || pg_ok) ? "degraded"
                                         : "unhealthy";
    doc["ready"] = ready;
    return std::make_pair(doc.dump(), ready);
  };
  hh.metrics = [src] {
    prometheus_text p;
    p.family("troupe_build_info", "gauge", "Version of this troupe node.");
    p.sample("troupe_build_info", {{"version", troupe::version()}}, 1);
    std::vector<pipeline_stats> stats;
    try {
      stats = src.collect_stats();
    } catch (const std::exception&) {
      // Supervisors busy: serve the other metrics rather than nothing.
    }
    p.family("troupe_jobs_finished_total", "counter",
             "Jobs that reached a terminal state on this node.");
    for (auto& s : stats) {
      p.sample("troupe_jobs_finished_total",
               {{"pipeline", s.pipeline}, {"state", "succeeded"}},
               static_cast<double>(s.succeeded));
      p.sample("troupe_jobs_finished_total",
               {{"pipeline", s.pipeline}, {"state", "dead_lettered"}},
               static_cast<double>(s.dead_lettered));
      p.sample("troupe_jobs_finished_total",
               {{"pipeline", s.pipeline}, {"state", "cancelled"}},
               static_cast<double>(s.cancelled));
    }
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
    p.family("troupe_intake_messages_total", "counter",
             "JetStream messages by what the intake did with them.");
    for (auto& entry : src.pipelines) {
      auto& c = entry.intake->counters();
      auto& name = entry.name;
      p.sample("troupe_intake_messages_total",
               {{"pipeline", name}, {"action", "fetched"}},
               static_cast<double>(c.fetched));
      p.sample("troupe_intake_messages_total",
               {{"pipeline", name}, {"action", "acked"}},
               static_cast<double>(c.acked));
      p.sample("troupe_intake_messages_total",
               {{"pipeline", name}, {"action", "naked"}},
               static_cast<double>(c.naked));
      p.sample("troupe_intake_messages_total",
               {{"pipeline", name}, {"action", "invalid"}},
               static_cast<double>(c.invalid));
    }
    p.family("troupe_store_transactions_total", "counter",
             "PostgreSQL transactions committed by the store.");
    p.sample("troupe_store_transactions_total", {},
             static_cast<double>(src.store_stats->transactions));
    p.family("troupe_store_requests_total", "counter",
             "Claims and writes handled by the store.");
    p.sample("troupe_store_requests_total", {},
             static_cast<double>(src.store_stats->requests));
    p.family("troupe_store_stale_writes_total", "counter",
             "Writes refused because another run owns the job.");
    p.sample("troupe_store_stale_writes_total", {},
             static_cast<double>(src.store_stats->stale));
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
    p.family("troupe_jobs_waiting_retry", "gauge",
             "Jobs on this node waiting for their next attempt.");
    for (auto& s : stats)
      p.sample("troupe_jobs_waiting_retry", {{"pipeline", s.pipeline}},
               static_cast<double>(s.waiting));
    p.family("troupe_store_batch_size", "histogram",
             "Claims and writes committed per PostgreSQL transaction.");
    src.store_stats->batch_sizes.render(p, "troupe_store_batch_size", {});
    p.family("troupe_store_commit_seconds", "histogram",
             "Time to commit one batch, from its first statement.");
    src.store_stats->commit_seconds.render(p, "troupe_store_commit_seconds",
                                           {});
    p.family(
        "troupe_jetstream_pending", "gauge",
        "Messages of a pipeline's consumer not yet delivered to any node.");
    for (auto& entry : src.pipelines)
      if (auto n = src.nats.consumer_pending(src.cfg.nats, entry.name))
        p.sample("troupe_jetstream_pending", {{"pipeline", entry.name}},
                 static_cast<double>(*n));
    p.family("troupe_cluster_members", "gauge",
             "Cluster members in this node's view, by state.");
    {
      std::map<std::string, int> by_state{
          {"up", 0}, {"draining", 0}, {"down", 0}};
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
    p.family("troupe_retention_pruned_total", "counter",
             "Finished jobs pruned by this node.");
    p.sample("troupe_retention_pruned_total", {},
             static_cast<double>(src.pruner->pruned_total()));
    if (src.exec)
      render_exec_stats(p, *src.exec);
    if (src.jmetrics)
      src.jmetrics->render(p);
    return p.str();
  };
  return hh;
}

} // namespace troupe
