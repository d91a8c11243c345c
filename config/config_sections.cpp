#include "config/config_sections.hpp"

#include "config/stage_graph.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <set>
#include <sstream>
#include <unistd.h>
#include <utility>

namespace troupe::config_detail {

namespace {

/// `http://host:port` with an optional path, nothing else.
bool valid_http_endpoint(const std::string& url) {
  const std::string scheme = "http://";
  if (url.compare(0, scheme.size(), scheme) != 0)
    return false;
  auto rest = url.substr(scheme.size());
  rest = rest.substr(0, rest.find('/'));
  auto colon = rest.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == rest.size())
    return false;
  for (auto i = colon + 1; i < rest.size(); ++i)
    if (!std::isdigit(static_cast<unsigned char>(rest[i])))
      return false;
  auto port = std::stol(rest.substr(colon + 1, 6));
  return port > 0 && port < 65536;
}

/// [node]: this process (id, HTTP, logging, scheduler, limits, timings).
void read_node(reader& r, const toml::table& t, troupe_config& cfg) {
  r.check_keys(t, "node",
               {"id",
                "http",
                "max_in_flight",
                "log_level",
                "log_format",
                "scheduler_threads",
                "scheduler_polls",
                "blocking_threads",
                "drain_grace",
                "metrics",
                "startup_timeout",
                "scheduler",
                "speculate",
                "exec_inherit_env",
                "store_retry_after",
                "event_result_max_bytes",
                "progress_interval",
                "otlp_endpoint",
                "api_tokens_file",
                "spool_dir"});
  r.read(t, "node", "spool_dir", cfg.node.spool_dir);
  r.read(t, "node", "otlp_endpoint", cfg.node.otlp_endpoint);
  r.read(t, "node", "api_tokens_file", cfg.node.api_tokens_file);
  if (!cfg.node.otlp_endpoint.empty() &&
      !valid_http_endpoint(cfg.node.otlp_endpoint))
    r.problem(t.get("otlp_endpoint"), "node.otlp_endpoint",
              "must be http://HOST:PORT (an OTLP/HTTP collector; https is "
              "not supported: run a collector next to the node)");
  // Events are NATS messages (1 MiB by default): half of that at most.
  r.read(t, "node", "event_result_max_bytes", cfg.node.event_result_max_bytes,
         std::int64_t{0}, std::int64_t{512} << 10);
  r.read_duration(t, "node", "progress_interval", cfg.node.progress_interval);
  if (cfg.node.progress_interval < duration_ms{100})
    r.problem(t.get("progress_interval"), "node.progress_interval",
              "must be at least 100ms (each report is a store write)");
  r.read_duration(t, "node", "store_retry_after", cfg.node.store_retry_after);
  if (auto* n = t.get("exec_inherit_env");
      n && check_env_patterns(r, n, "node.exec_inherit_env"))
    for (auto& x : *n->as_array())
      cfg.node.exec_inherit_env.push_back(*x.value<std::string>());
  r.read_duration(t, "node", "speculate", cfg.node.speculate);
  if (cfg.node.speculate > duration_ms{1000})
    r.problem(t.get("speculate"), "node.speculate",
              "must be at most 1s (a job in its window holds no lease)");
  r.read(t, "node", "scheduler", cfg.node.scheduler);
  if (cfg.node.scheduler != "auto" && cfg.node.scheduler != "stealing" &&
      cfg.node.scheduler != "sharing")
    r.problem(t.get("scheduler"), "node.scheduler",
              "must be \"auto\", \"stealing\" or \"sharing\" (got \"" +
                  cfg.node.scheduler + "\")");
  r.read_duration(t, "node", "startup_timeout", cfg.node.startup_timeout);
  r.read(t, "node", "metrics", cfg.node.metrics);
  r.read(t, "node", "id", cfg.node.id);
  r.read(t, "node", "http", cfg.node.http);
  r.read(t, "node", "max_in_flight", cfg.node.max_in_flight, 1, 10000000);
  r.read(t, "node", "log_level", cfg.node.log_level);
  r.read(t, "node", "log_format", cfg.node.log_format);
  r.read(t, "node", "scheduler_threads", cfg.node.scheduler_threads, 0, 1024);
  r.read(t, "node", "scheduler_polls", cfg.node.scheduler_polls, 0, 100000);
  r.read_duration(t, "node", "drain_grace", cfg.node.drain_grace);
  r.read(t, "node", "blocking_threads", cfg.node.blocking_threads, 1, 4096);
  static const std::set<std::string> levels = {
      "trace", "debug", "info", "warn", "error", "critical", "off"};
  if (!levels.count(cfg.node.log_level))
    r.problem(t.get("log_level"), "node.log_level",
              "must be one of trace, debug, info, warn, error, critical, "
              "off (got \"" +
                  cfg.node.log_level + "\")");
  if (cfg.node.log_format != "text" && cfg.node.log_format != "json")
    r.problem(t.get("log_format"), "node.log_format",
              "must be \"text\" or \"json\" (got \"" + cfg.node.log_format +
                  "\")");
  if (t.get("http"))
    check_host_port(r, t.get("http"), "node.http", cfg.node.http);
  if (t.get("id") && !is_subject_token(cfg.node.id))
    r.problem(t.get("id"), "node.id",
              "must be letters, digits, '_' or '-' (it becomes a NATS "
              "subject token)");
}

/// [nats]: servers, subjects and stream, credentials, TLS.
void read_nats(reader& r, const toml::table& t, troupe_config& cfg) {
  r.check_keys(t, "nats",
               {"url",
                "prefix",
                "stream",
                "ack_wait",
                "duplicate_window",
                "max_payload",
                "replicas",
                "unrouted_sweep",
                "stranded_sweep",
                "send_asap",
                "max_depth",
                "max_key_length",
                "inbox_prefix",
                "user",
                "password_file",
                "token_file",
                "creds",
                "tls_ca",
                "tls_cert",
                "tls_key",
                "password",
                "token"});
  for (auto [key, out] :
       {std::pair<const char*, std::string*>{"user", &cfg.nats.user},
        {"password_file", &cfg.nats.password_file},
        {"token_file", &cfg.nats.token_file},
        {"creds", &cfg.nats.creds},
        {"tls_ca", &cfg.nats.tls_ca},
        {"tls_cert", &cfg.nats.tls_cert},
        {"tls_key", &cfg.nats.tls_key}}) {
    r.read(t, "nats", key, *out);
    if (std::string{key} != "user" && !out->empty() &&
        access(out->c_str(), R_OK) != 0)
      r.problem(t.get(key), std::string{"nats."} + key,
                "cannot read \"" + *out + "\": " + std::strerror(errno));
  }
  if (t.get("password") || t.get("token"))
    r.problem(t.get("password") ? t.get("password") : t.get("token"), "nats",
              "secrets do not belong in the configuration: use "
              "password_file / token_file or TROUPE_NATS_PASSWORD / "
              "TROUPE_NATS_TOKEN");
  if (!cfg.nats.tls_cert.empty() != !cfg.nats.tls_key.empty())
    r.problem(t.get(cfg.nats.tls_cert.empty() ? "tls_key" : "tls_cert"),
              "nats.tls_cert", "tls_cert and tls_key go together");
  r.read(t, "nats", "url", cfg.nats.url);
  r.read(t, "nats", "prefix", cfg.nats.prefix);
  r.read(t, "nats", "stream", cfg.nats.stream);
  r.read_duration(t, "nats", "ack_wait", cfg.nats.ack_wait);
  r.read_duration(t, "nats", "duplicate_window", cfg.nats.duplicate_window);
  r.read(t, "nats", "max_payload", cfg.nats.max_payload, 1,
         std::int64_t{64} * 1024 * 1024);
  r.read(t, "nats", "replicas", cfg.nats.replicas, 1, 5);
  r.read(t, "nats", "max_depth", cfg.nats.max_depth, 2, 512);
  r.read(t, "nats", "max_key_length", cfg.nats.max_key_length, 16, 4096);
  r.read(t, "nats", "inbox_prefix", cfg.nats.inbox_prefix);
  if (!is_subject_token(cfg.nats.inbox_prefix) ||
      cfg.nats.inbox_prefix == cfg.nats.prefix)
    r.problem(t.get("inbox_prefix"), "nats.inbox_prefix",
              "must be one subject token of letters, digits, '_' or '-', "
              "other than the subject prefix (got \"" +
                  cfg.nats.inbox_prefix + "\")");
  r.read(t, "nats", "send_asap", cfg.nats.send_asap);
  r.read_duration(t, "nats", "unrouted_sweep", cfg.nats.unrouted_sweep);
  r.read_duration(t, "nats", "stranded_sweep", cfg.nats.stranded_sweep);
  if (t.get("url"))
    check_nats_url(r, t.get("url"), "nats.url", cfg.nats.url);
  if (!is_subject_token(cfg.nats.prefix))
    r.problem(t.get("prefix"), "nats.prefix",
              "must be letters, digits, '_' or '-' (got \"" + cfg.nats.prefix +
                  "\")");
  if (!is_subject_token(cfg.nats.stream))
    r.problem(t.get("stream"), "nats.stream",
              "must be letters, digits, '_' or '-'");
  if (cfg.nats.replicas != 1 && cfg.nats.replicas != 3 &&
      cfg.nats.replicas != 5)
    r.problem(t.get("replicas"), "nats.replicas",
              "must be 1, 3 or 5 (got " + std::to_string(cfg.nats.replicas) +
                  ")");
  if (cfg.nats.ack_wait < duration_ms{1000})
    r.problem(t.get("ack_wait"), "nats.ack_wait", "must be at least 1s");
}

/// [postgres]
void read_postgres(reader& r, const toml::table& t, troupe_config& cfg) {
  r.check_keys(t, "postgres", {"url", "pool_size", "batch_max", "batch_delay"});
  r.read(t, "postgres", "url", cfg.postgres.url);
  r.read(t, "postgres", "pool_size", cfg.postgres.pool_size, 1, 64);
  r.read(t, "postgres", "batch_max", cfg.postgres.batch_max, 1, 100000);
  r.read_duration(t, "postgres", "batch_delay", cfg.postgres.batch_delay);
  if (t.get("url"))
    check_pg_url(r, t.get("url"), "postgres.url", cfg.postgres.url);
}

/// [cluster]: heartbeats and failure detection.
void read_cluster(reader& r, const toml::table& t, troupe_config& cfg) {
  r.check_keys(t, "cluster", {"heartbeat_interval", "failure_timeout"});
  r.read_duration(t, "cluster", "heartbeat_interval",
                  cfg.cluster.heartbeat_interval);
  r.read_duration(t, "cluster", "failure_timeout", cfg.cluster.failure_timeout);
  if (cfg.cluster.failure_timeout <= cfg.cluster.heartbeat_interval)
    r.problem(t.get("failure_timeout"), "cluster.failure_timeout",
              "must be longer than heartbeat_interval (" +
                  format_duration(cfg.cluster.heartbeat_interval) + ")");
}

/// [tenants]: `allow_unknown` and one table of limits per tenant
/// (`default` for the others).
void read_tenants(reader& r, const toml::table& t, troupe_config& cfg) {
  for (auto&& [k, v] : t) {
    std::string name{k.str()};
    if (name == "allow_unknown") {
      r.read(t, "tenants", "allow_unknown", cfg.tenants.allow_unknown);
      continue;
    }
    auto path = "tenants." + name;
    auto* tt = v.as_table();
    if (!tt) {
      r.problem(&v, path, "must be a table of limits (max_in_flight, rate)");
      continue;
    }
    r.check_keys(*tt, path, {"max_in_flight", "rate"});
    tenant_limits lim;
    r.read(*tt, path, "max_in_flight", lim.max_in_flight, 0, 10000000);
    r.read(*tt, path, "rate", lim.rate);
    if (!lim.rate.empty()) {
      // "20/s", "600/m", "0.5/s"
      char* end = nullptr;
      double n = std::strtod(lim.rate.c_str(), &end);
      std::string unit = end ? end : "";
      double per = unit == "/s"   ? 1
                   : unit == "/m" ? 60
                   : unit == "/h" ? 3600
                   : unit == "/d" ? 86400
                                  : 0;
      if (end == lim.rate.c_str() || n <= 0 || per == 0) {
        r.problem(tt->get("rate"), path + ".rate",
                  "must look like \"20/s\", \"600/m\", \"1000/h\" or "
                  "\"5000/d\" (got \"" +
                      lim.rate + "\")");
      } else {
        lim.rate_per_s = n / per;
        // A daily quota may be spent at once; a rate bursts one second.
        lim.rate_burst = per == 86400 ? n : std::max(1.0, lim.rate_per_s);
      }
    }
    if (name == "default")
      cfg.tenants.defaults = lim;
    else
      cfg.tenants.named[name] = lim;
  }
}

/// [retention]
void read_retention(reader& r, const toml::table& t, troupe_config& cfg) {
  r.check_keys(t, "retention", {"finished", "interval", "batch"});
  r.read_duration(t, "retention", "finished", cfg.retention.finished);
  r.read_duration(t, "retention", "interval", cfg.retention.interval);
  r.read(t, "retention", "batch", cfg.retention.batch, 1, 100000);
  if (cfg.retention.interval.count() < 1000)
    r.problem(t.get("interval"), "retention.interval", "must be at least 1s");
}

// [pipelines.<name>] and their stages.

} // namespace

const toml::table* named_table(reader& r, const std::string& section,
                               const std::string& name, const toml::node& n,
                               const char* name_rule, std::string& path) {
  path = section + "." + (is_subject_token(name) ? name : "\"" + name + "\"");
  auto* t = n.as_table();
  if (!t) {
    r.problem(&n, path, "must be a table");
    return nullptr;
  }
  if (!is_subject_token(name))
    r.problem(&n, path, name_rule);
  return t;
}

namespace {

/// The stages' `after` (config/stage_graph.hpp), once all are read. A stage
/// that runs beside others cannot hand its job to the store (it would park
/// its running siblings) and has no progress channel of its own yet.
void check_graph(reader& r, const toml::array& arr, const std::string& path,
                 const pipeline_config& pc) {
  if (pc.stages.size() != arr.size())
    return; // a stage was not a table: reported already
  auto at = [&](std::int32_t i) {
    auto* t = arr.get(i)->as_table();
    auto* n = t && t->get("after") ? t->get("after") : arr.get(i);
    return std::make_pair(n, path + ".stages[" + std::to_string(i) + "]");
  };
  for (auto& p : check_stage_graph(pc)) {
    auto [n, where] = at(p.stage);
    r.problem(n, where + ".after",
              "stage \"" + pc.stages[p.stage].name + "\" " + p.message);
  }
  if (!make_stage_graph(pc).parallel)
    return;
  for (std::size_t i = 0; i < pc.stages.size(); ++i) {
    const auto& sc = pc.stages[i];
    auto [n, where] = at(static_cast<std::int32_t>(i));
    if (sc.spawn || sc.kind == "callback")
      r.problem(n, where,
                "stage \"" + sc.name +
                    "\": " + (sc.spawn ? "spawn = true" : "kind \"callback\"") +
                    " cannot be used in a pipeline whose stages run in "
                    "parallel (it waits in the store; use a child job)");
    if (sc.heartbeat_timeout.count() > 0)
      r.problem(n, where + ".heartbeat_timeout",
                "not supported in a pipeline whose stages run in parallel");
  }
}

void read_pipeline(reader& r, const std::string& name, const toml::node& n,
                   const config_context& ctx, troupe_config& cfg) {
  std::string path;
  auto* t = named_table(r, "pipelines", name, n,
                        "pipeline names must be letters, digits, '_' or '-' "
                        "(they become NATS subject tokens)",
                        path);
  if (!t)
    return;
  r.check_keys(
      *t, path,
      {"max_in_flight", "stages", "retention", "speculate", "priorities"});
  pipeline_config pc;
  pc.name = name;
  if (t->get("speculate")) {
    duration_ms window{0};
    r.read_duration(*t, path, "speculate", window);
    if (window > duration_ms{1000})
      r.problem(t->get("speculate"), path + ".speculate",
                "must be at most 1s (a job in its window holds no lease)");
    pc.speculate = window;
  }
  if (t->get("retention")) {
    duration_ms keep{0};
    r.read_duration(*t, path, "retention", keep);
    pc.retention = keep;
  }
  r.read(*t, path, "max_in_flight", pc.max_in_flight, 1, 1000000);
  r.read(*t, path, "priorities", pc.priorities);
  auto* st = t->get("stages");
  if (!st) {
    r.problem(&n, path, "missing key 'stages' (a pipeline needs stages)");
  } else if (auto* arr = st->as_array()) {
    if (arr->empty())
      r.problem(st, path + ".stages", "a pipeline needs at least one stage");
    std::set<std::string> names;
    for (std::size_t i = 0; i < arr->size(); ++i)
      read_stage(r, *arr->get(i), path + ".stages[" + std::to_string(i) + "]",
                 ctx, pc, names);
    check_graph(r, *arr, path, pc);
  } else {
    r.problem(st, path + ".stages", "must be an array of stage tables");
  }
  cfg.pipelines[name] = std::move(pc);
}

/// [pipelines]: one table per pipeline.
void read_pipelines(reader& r, const toml::table& t, const config_context& ctx,
                    troupe_config& cfg) {
  for (auto&& [k, v] : t)
    read_pipeline(r, std::string{k.str()}, v, ctx, cfg);
}

/// The table `name` of the document, or null if absent or not a table
/// (reported).
const toml::table* section(reader& r, const toml::table& root,
                           const char* name) {
  auto* n = root.get(name);
  if (!n)
    return nullptr;
  if (auto* t = n->as_table())
    return t;
  r.problem(n, name, "must be a table");
  return nullptr;
}

} // namespace

void read_document(reader& r, const toml::table& root,
                   const config_context& ctx, troupe_config& cfg) {
  r.check_keys(root, "",
               {"node", "nats", "postgres", "cluster", "retention", "tenants",
                "pipelines", "schedules"});
  // Sections are read in this order; problems on one line keep it
  // (parse_config sorts them by line, stably).
  using section_reader = void (*)(reader&, const toml::table&, troupe_config&);
  static const std::pair<const char*, section_reader> sections[] = {
      {"node", read_node},         {"nats", read_nats},
      {"postgres", read_postgres}, {"cluster", read_cluster},
      {"tenants", read_tenants},   {"retention", read_retention}};
  for (auto& [name, read] : sections)
    if (auto* t = section(r, root, name))
      read(r, *t, cfg);
  if (auto* t = section(r, root, "pipelines"))
    read_pipelines(r, *t, ctx, cfg);
  if (auto* t = section(r, root, "schedules"))
    read_schedules(r, *t, cfg);
}

} // namespace troupe::config_detail
