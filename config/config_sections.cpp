#include "config/config_sections.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <set>
#include <sstream>
#include <unistd.h>
#include <utility>

namespace troupe::config_detail {

namespace {

/// An `inherit_env`-style list at `n`: variable names or prefixes ending in
/// '*'. One problem for a value that is no array of strings, else one per
/// bad entry (see env_pattern_problem); true if all is well.
bool check_env_patterns(reader& r, const toml::node* n,
                        const std::string& path) {
  auto* arr = n ? n->as_array() : nullptr;
  bool strings = arr != nullptr;
  if (arr)
    for (auto& x : *arr)
      strings = strings && x.is_string();
  if (!strings) {
    r.problem(n, path,
              "must be an array of variable names (\"NAME\" or "
              "\"PREFIX_*\")");
    return false;
  }
  bool ok = true;
  for (auto& x : *arr)
    if (auto why = env_pattern_problem(*x.value<std::string>()); !why.empty()) {
      r.problem(&x, path, why);
      ok = false;
    }
  return ok;
}

/// [node]: this process (id, HTTP, logging, scheduler, limits, timings).
void read_node(reader& r, const toml::table& t, troupe_config& cfg) {
  r.check_keys(t, "node",
               {"id", "http", "max_in_flight", "log_level", "log_format",
                "scheduler_threads", "blocking_threads", "drain_grace",
                "metrics", "startup_timeout", "scheduler", "speculate",
                "exec_inherit_env"});
  if (auto* n = t.get("exec_inherit_env");
      n && check_env_patterns(r, n, "node.exec_inherit_env"))
    for (auto& x : *n->as_array())
      cfg.node.exec_inherit_env.push_back(*x.value<std::string>());
  r.read_duration(t, "node", "speculate", cfg.node.speculate);
  if (cfg.node.speculate > duration_ms{1000})
    r.problem(t.get("speculate"), "node.speculate",
              "must be at most 1s (a job in its window holds no lease)");
  r.read(t, "node", "scheduler", cfg.node.scheduler);
  if (cfg.node.scheduler != "stealing" && cfg.node.scheduler != "sharing")
    r.problem(t.get("scheduler"), "node.scheduler",
              "must be \"stealing\" or \"sharing\" (got \"" +
                  cfg.node.scheduler + "\")");
  r.read_duration(t, "node", "startup_timeout", cfg.node.startup_timeout);
  r.read(t, "node", "metrics", cfg.node.metrics);
  r.read(t, "node", "id", cfg.node.id);
  r.read(t, "node", "http", cfg.node.http);
  r.read(t, "node", "max_in_flight", cfg.node.max_in_flight, 1, 10000000);
  r.read(t, "node", "log_level", cfg.node.log_level);
  r.read(t, "node", "log_format", cfg.node.log_format);
  r.read(t, "node", "scheduler_threads", cfg.node.scheduler_threads, 0, 1024);
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
  r.check_keys(t, "nats", {"url",       "prefix",           "stream",
                           "ack_wait",  "duplicate_window", "max_payload",
                           "replicas",  "unrouted_sweep",   "send_asap",
                           "max_depth", "max_key_length",   "inbox_prefix",
                           "user",      "password_file",    "token_file",
                           "creds",     "tls_ca",           "tls_cert",
                           "tls_key",   "password",         "token"});
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
                                  : 0;
      if (end == lim.rate.c_str() || n <= 0 || per == 0)
        r.problem(tt->get("rate"), path + ".rate",
                  "must look like \"20/s\", \"600/m\" or \"1000/h\" (got \"" +
                      lim.rate + "\")");
      else
        lim.rate_per_s = n / per;
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

nlohmann::json to_json(const toml::node& n) {
  switch (n.type()) {
  case toml::node_type::string:
    return *n.value<std::string>();
  case toml::node_type::integer:
    return *n.value<std::int64_t>();
  case toml::node_type::floating_point:
    return *n.value<double>();
  case toml::node_type::boolean:
    return *n.value<bool>();
  case toml::node_type::array: {
    auto out = nlohmann::json::array();
    for (auto& x : *n.as_array())
      out.push_back(to_json(x));
    return out;
  }
  case toml::node_type::table: {
    auto out = nlohmann::json::object();
    for (auto&& [k, v] : *n.as_table())
      out[std::string{k.str()}] = to_json(v);
    return out;
  }
  default:
    // Dates and times: stages get them as TOML text.
    return n.visit([](auto&& v) {
      std::ostringstream os;
      os << v;
      return os.str();
    });
  }
}

void read_retry(reader& r, const toml::node& n, const std::string& path,
                retry_policy& p) {
  auto* t = n.as_table();
  if (!t) {
    r.problem(&n, path, "must be a table like { max_attempts = 3, ... }");
    return;
  }
  r.check_keys(*t, path,
               {"max_attempts", "initial", "multiplier", "max", "jitter",
                "non_retryable"});
  r.read(*t, path, "max_attempts", p.max_attempts, 1, 1000000);
  r.read_duration(*t, path, "initial", p.initial);
  r.read_duration(*t, path, "max", p.max);
  if (auto* m = t->get("multiplier")) {
    double v = p.multiplier;
    r.read(*t, path, "multiplier", v);
    if (v < 1.0) {
      std::ostringstream os;
      os << "must be >= 1.0 (got " << v << ")";
      r.problem(m, reader::join(path, "multiplier"), os.str());
    } else {
      p.multiplier = v;
    }
  }
  if (auto* j = t->get("jitter")) {
    auto s = j->value<std::string>();
    if (s && *s == "none")
      p.jitter = jitter_kind::none;
    else if (s && *s == "full")
      p.jitter = jitter_kind::full;
    else if (s && *s == "equal")
      p.jitter = jitter_kind::equal;
    else
      r.problem(j, reader::join(path, "jitter"),
                "must be \"none\", \"full\" or \"equal\"");
  }
  if (auto* nr = t->get("non_retryable")) {
    auto* arr = nr->as_array();
    bool ok = arr != nullptr;
    if (arr)
      for (auto& x : *arr)
        ok = ok && x.is_string();
    if (!ok) {
      r.problem(nr, reader::join(path, "non_retryable"),
                "must be an array of error codes (strings)");
    } else {
      for (auto& x : *arr)
        p.non_retryable.push_back(*x.value<std::string>());
    }
  }
  // Locate the conflict at the key the user wrote: with the default initial
  // (3s), a short max is the mistake.
  if (p.initial > p.max) {
    if (auto* i = t->get("initial"))
      r.problem(i, reader::join(path, "initial"),
                "must not exceed max = " + format_duration(p.max) + " (got " +
                    format_duration(p.initial) + ")");
    else
      r.problem(t->get("max"), reader::join(path, "max"),
                "must not be below initial = " + format_duration(p.initial) +
                    " (got " + format_duration(p.max) + ")");
  }
}

// One parameter against its rule; the messages say what is expected.
void check_param(reader& r, const toml::node& n, const std::string& path,
                 const param_rule& rule) {
  auto bad = [&](const std::string& msg) {
    r.problem(&n, path, rule.hint.empty() ? msg : msg + " (" + rule.hint + ")");
  };
  auto integer_at_least = [&](std::int64_t min) {
    return n.is_integer() && *n.value<std::int64_t>() >= min;
  };
  auto array_of = [&](auto pred) {
    auto* a = n.as_array();
    bool ok = a != nullptr;
    if (a)
      for (auto& x : *a)
        ok = ok && pred(x);
    return ok;
  };
  switch (rule.type) {
  case param_type::duration:
    if (!n.is_string())
      bad(std::string{"must be a duration string like \"250ms\", got "} +
          reader::type_name(n));
    else if (!parse_duration(*n.value<std::string>()))
      bad("malformed duration \"" + *n.value<std::string>() +
          "\" (expected a number and one of ms, s, m, h)");
    break;
  case param_type::count:
    if (!integer_at_least(0))
      bad("must be an integer >= 0");
    break;
  case param_type::positive_integer:
    if (!integer_at_least(1))
      bad("must be an integer of at least 1");
    break;
  case param_type::probability: {
    auto v = n.value<double>();
    if (!(n.is_floating_point() || n.is_integer()) || !v || *v < 0 || *v > 1)
      bad("must be a number in [0, 1]");
    break;
  }
  case param_type::boolean:
    if (!n.is_boolean())
      bad("must be true or false");
    break;
  case param_type::string:
    if (!n.is_string())
      bad("must be a string");
    break;
  case param_type::command:
    if (!array_of([](auto& x) { return x.is_string(); }) ||
        n.as_array()->empty())
      bad("must be a non-empty array of strings");
    break;
  case param_type::string_table: {
    auto* t = n.as_table();
    bool ok = t != nullptr;
    if (t)
      for (auto&& [k, v] : *t)
        ok = ok && v.is_string();
    if (!ok)
      bad("must be a table of strings");
    break;
  }
  case param_type::exit_codes:
    if (!array_of([](auto& x) {
          return x.is_integer() && *x.template value<std::int64_t>() > 0 &&
                 *x.template value<std::int64_t>() < 256;
        }))
      bad("must be an array of exit codes 1..255");
    break;
  case param_type::env_patterns:
    check_env_patterns(r, &n, path);
    break;
  }
}

// A stage's parameters against its kind's schema, in a stable order:
// missing required ones, each present one in the schema's order, then keys
// the kind does not know.
void check_kind_params(reader& r, const toml::table& t, const std::string& path,
                       const stage_kind_schema& schema) {
  if (schema.open)
    return;
  for (auto& rule : schema.params)
    if (rule.required && !t.get(rule.key))
      r.problem(&t, path,
                "kind '" + schema.kind + "' needs " + rule.key +
                    (rule.type == param_type::command ? " = [\"program\", ...]"
                                                      : " = \"...\""));
  for (auto& rule : schema.params)
    if (auto* n = t.get(rule.key))
      check_param(r, *n, reader::join(path, rule.key), rule);
  for (auto&& [k, v] : t) {
    std::string key{k.str()};
    bool generic =
        key == "name" || key == "kind" || key == "timeout" || key == "retry";
    bool declared = std::any_of(schema.params.begin(), schema.params.end(),
                                [&](auto& p) { return p.key == key; });
    if (!generic && !declared)
      r.problem_at(static_cast<int>(k.source().begin.line),
                   reader::join(path, key),
                   "unknown parameter for kind '" + schema.kind + "'");
  }
}

const stage_kind_schema* find_kind(const config_context& ctx,
                                   const std::string& kind) {
  for (auto& k : ctx.stage_kinds)
    if (k.kind == kind)
      return &k;
  return nullptr;
}

void read_stage(reader& r, const toml::node& n, const std::string& path,
                const config_context& ctx, pipeline_config& pc,
                std::set<std::string>& names) {
  auto* t = n.as_table();
  if (!t) {
    r.problem(&n, path,
              "must be a table like { name = \"...\", kind = \"...\" }");
    return;
  }
  stage_config sc;
  sc.line = static_cast<int>(n.source().begin.line);
  r.read(*t, path, "name", sc.name);
  r.read(*t, path, "kind", sc.kind);
  if (!t->get("name"))
    r.problem(&n, path, "missing key 'name'");
  else if (!is_subject_token(sc.name))
    r.problem(t->get("name"), reader::join(path, "name"),
              "must be letters, digits, '_' or '-' (got \"" + sc.name + "\")");
  else if (!names.insert(sc.name).second)
    r.problem(t->get("name"), reader::join(path, "name"),
              "duplicate stage name \"" + sc.name + "\"");
  // Without a catalogue of kinds (the loader alone, e.g. fuzzing), kinds
  // are not judged; a node and `troupe config check` pass theirs.
  auto* kind = find_kind(ctx, sc.kind);
  bool judge = !ctx.stage_kinds.empty();
  if (!t->get("kind")) {
    r.problem(&n, path, "missing key 'kind'");
  } else if (t->get("kind")->is_string() && judge && !kind) {
    std::string known;
    for (auto& k : ctx.stage_kinds)
      known += (known.empty() ? "" : ", ") + k.kind;
    r.problem(t->get("kind"), reader::join(path, "kind"),
              "unknown stage kind \"" + sc.kind + "\" (known: " + known + ")");
  }
  r.read_duration(*t, path, "timeout", sc.timeout);
  if (auto* rt = t->get("retry"))
    read_retry(r, *rt, reader::join(path, "retry"), sc.retry);
  for (auto&& [k, v] : *t) {
    std::string key{k.str()};
    if (key != "name" && key != "kind" && key != "timeout" && key != "retry")
      sc.params[key] = to_json(v);
  }
  // Parameters of a kind this binary lacks are not judged: the kind problem
  // already says what is wrong.
  if (kind)
    check_kind_params(r, *t, path, *kind);
  pc.stages.push_back(std::move(sc));
}

void read_pipeline(reader& r, const std::string& name, const toml::node& n,
                   const config_context& ctx, troupe_config& cfg) {
  // A name that is not a token is quoted, so the path stays unambiguous.
  std::string path =
      "pipelines." + (is_subject_token(name) ? name : "\"" + name + "\"");
  auto* t = n.as_table();
  if (!t) {
    r.problem(&n, path, "must be a table");
    return;
  }
  if (!is_subject_token(name))
    r.problem(&n, path,
              "pipeline names must be letters, digits, '_' or '-' (they "
              "become NATS subject tokens)");
  r.check_keys(*t, path, {"max_in_flight", "stages", "retention", "speculate"});
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
                "pipelines"});
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
}

} // namespace troupe::config_detail
