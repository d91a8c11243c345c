// Reading a pipeline's stages: the generic keys (name, kind, timeout,
// retry) and the kind's parameters, checked against its schema
// (config/stage_params.hpp).
#include "config/config_sections.hpp"

#include <algorithm>
#include <set>

namespace troupe::config_detail {

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

namespace {

/// Keys every stage takes, whatever its kind.
bool is_generic_stage_key(const std::string& key) {
  return key == "name" || key == "kind" || key == "timeout" ||
         key == "heartbeat_timeout" || key == "retry" || key == "spawn" ||
         key == "on_child_failure" || key == "max_children" || key == "after";
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
    bool generic = is_generic_stage_key(key);
    bool declared = std::any_of(schema.params.begin(), schema.params.end(),
                                [&](auto& p) { return p.key == key; });
    if (!generic && !declared)
      r.problem_at(static_cast<int>(k.source().begin.line),
                   reader::join(path, key),
                   "unknown parameter for kind '" + schema.kind + "'");
  }
}

/// Child jobs (docs/workflows.md): spawn, on_child_failure, max_children.
void read_spawn(reader& r, const toml::table& t, const std::string& path,
                stage_config& sc) {
  r.read(t, path, "spawn", sc.spawn);
  r.read(t, path, "max_children", sc.max_children, 1, 100000);
  if (auto* p = t.get("on_child_failure")) {
    auto s = p->value<std::string>();
    if (s && (*s == "fail" || *s == "continue"))
      sc.on_child_failure = *s;
    else
      r.problem(p, reader::join(path, "on_child_failure"),
                "must be \"fail\" or \"continue\"");
  }
  if (!sc.spawn && (t.get("on_child_failure") || t.get("max_children")))
    r.problem(&t, path, "on_child_failure and max_children need spawn = true");
}

/// `after`: the names of the stages this one needs (config/stage_graph.hpp;
/// the names themselves are checked once every stage is read).
void read_after(reader& r, const toml::table& t, const std::string& path,
                stage_config& sc) {
  auto* n = t.get("after");
  if (!n)
    return;
  auto* arr = n->as_array();
  std::vector<std::string> names;
  for (std::size_t i = 0; arr && i < arr->size(); ++i)
    if (auto s = arr->get(i)->value<std::string>())
      names.push_back(*s);
  if (!arr || names.size() != arr->size()) {
    r.problem(n, reader::join(path, "after"),
              "must be an array of stage names, like [\"fetch\", \"parse\"]");
    return;
  }
  sc.after = std::move(names);
}

const stage_kind_schema* find_kind(const config_context& ctx,
                                   const std::string& kind) {
  for (auto& k : ctx.stage_kinds)
    if (k.kind == kind)
      return &k;
  return nullptr;
}

} // namespace

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
  r.read_duration(*t, path, "heartbeat_timeout", sc.heartbeat_timeout);
  if (auto* rt = t->get("retry"))
    read_retry(r, *rt, reader::join(path, "retry"), sc.retry);
  read_spawn(r, *t, path, sc);
  read_after(r, *t, path, sc);
  for (auto&& [k, v] : *t) {
    std::string key{k.str()};
    if (!is_generic_stage_key(key))
      sc.params[key] = to_json(v);
  }
  // Parameters of a kind this binary lacks are not judged: the kind problem
  // already says what is wrong.
  if (kind)
    check_kind_params(r, *t, path, *kind);
  pc.stages.push_back(std::move(sc));
}

} // namespace troupe::config_detail
