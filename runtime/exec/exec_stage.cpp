#include "runtime/exec/exec_stage.hpp"

#include <algorithm>

#include <csignal>
#include <mutex>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "actors/atoms.hpp"
#include "config/config_loader.hpp"
#include "messages/errc.hpp"
#include "runtime/common/blocking_pool.hpp"
#include "runtime/exec/child_reaper.hpp"
#include "runtime/exec/exec_attempt.hpp"
#include "runtime/exec/process.hpp"

namespace troupe {

namespace {

using clock_type = std::chrono::steady_clock;

/// Counts one attempt in exec_stats from its start() to its end.
class attempt_meter {
public:
  explicit attempt_meter(std::shared_ptr<exec_stats> stats)
      : stats_(std::move(stats)), queued_at_(clock_type::now()) {
    if (stats_)
      ++stats_->waiting;
  }

  /// It got a thread (whether or not its program starts).
  void dequeued() {
    if (stats_)
      --stats_->waiting;
  }

  /// Its program started.
  void spawned() {
    if (!stats_)
      return;
    std::chrono::duration<double> waited = clock_type::now() - queued_at_;
    stats_->queue_wait.observe(waited.count());
    ++stats_->running;
    running_ = true;
  }

  /// Its program was reaped.
  void ended() {
    if (stats_ && running_)
      --stats_->running;
    running_ = false;
  }

private:
  std::shared_ptr<exec_stats> stats_;
  clock_type::time_point queued_at_;
  bool running_ = false;
};

class exec_stage final : public stage_kind {
public:
  exec_stage(std::shared_ptr<const exec_params> p,
             std::shared_ptr<pool_limiter> slots,
             std::shared_ptr<exec_stats> stats,
             std::shared_ptr<orphan_reaper> reaper)
      : params_(std::move(p)), slots_(std::move(slots)),
        stats_(std::move(stats)), reaper_(std::move(reaper)) {}

  /// An attempt waits for an exec thread (and a max_concurrency slot); its
  /// timeout starts with its program.
  bool queues_attempts() const override { return true; }

  void start(caf::event_based_actor* self,
             const stage_request& req) const override {
    auto ctl = std::make_shared<attempt_control>();
    self->attach_functor([ctl] { ctl->cancel(); });
    auto handle = caf::actor_cast<caf::actor>(self);
    auto meter = std::make_shared<attempt_meter>(stats_);
    auto run = [ctl, handle, meter, params = traced(req), input = req.input] {
      meter->dequeued();
      if (ctl->cancelled())
        return; // abandoned while queued: never start it
      auto out = run_attempt(
          *params, input, *ctl,
          [&] {
            meter->spawned();
            caf::anon_send(handle, started_atom::value);
          },
          [&](std::string report) {
            caf::anon_send(handle, progress_atom::value, std::move(report));
          });
      meter->ended();
      caf::anon_send(handle, std::move(out));
    };
    auto reject = [handle, meter] {
      meter->dequeued();
      caf::anon_send(handle,
                     stage_failure("unavailable", "node is shutting down"));
    };
    slots_->submit(std::move(run), std::move(reject));
  }

private:
  /// The stage's parameters, with TRACEPARENT and TRACESTATE set for a
  /// traced job (a copy then; the shared ones otherwise).
  std::shared_ptr<const exec_params> traced(const stage_request& req) const {
    if (req.traceparent.empty())
      return params_;
    auto p = std::make_shared<exec_params>(*params_);
    auto& env = p->env;
    env.erase(std::remove_if(env.begin(), env.end(),
                             [](const auto& kv) {
                               return kv.first == "TRACEPARENT" ||
                                      kv.first == "TRACESTATE";
                             }),
              env.end());
    env.emplace_back("TRACEPARENT", req.traceparent);
    if (!req.tracestate.empty())
      env.emplace_back("TRACESTATE", req.tracestate);
    return p;
  }

  std::shared_ptr<const exec_params> params_;
  std::shared_ptr<pool_limiter> slots_;
  std::shared_ptr<exec_stats> stats_;
  /// Held so that the node reaps the orphans of its programs while any
  /// exec stage exists.
  std::shared_ptr<orphan_reaper> reaper_;
};

caf::error bad(const stage_config& sc, const std::string& msg) {
  return make_error(errc::invalid_payload,
                    "stage '" + sc.name + "' (exec): " + msg);
}

/// `command`: the program and its arguments.
caf::error read_command(const stage_config& sc, exec_params& p) {
  auto cmd = sc.params.find("command");
  if (cmd == sc.params.end() || !cmd->is_array() || cmd->empty())
    return bad(sc, "command must be a non-empty array of strings");
  for (auto& a : *cmd) {
    if (!a.is_string())
      return bad(sc, "command must be a non-empty array of strings");
    p.argv.push_back(a.get<std::string>());
  }
  if (p.argv[0].find('/') == std::string::npos &&
      find_program(p.argv[0]).empty())
    return bad(sc, "program '" + p.argv[0] + "' not found on PATH");
  return {};
}

/// `env` (the stage's own variables) and `inherit_env` (what it takes from
/// the node's environment besides the defaults).
caf::error read_environment(const stage_config& sc, exec_params& p) {
  const auto& j = sc.params;
  if (auto e = j.find("env"); e != j.end()) {
    if (!e->is_object())
      return bad(sc, "env must be a table of strings");
    for (auto& [k, v] : e->items()) {
      if (!v.is_string())
        return bad(sc, "env." + k + " must be a string");
      p.env.emplace_back(k, v.get<std::string>());
    }
  }
  if (auto e = j.find("inherit_env"); e != j.end()) {
    if (!e->is_array())
      return bad(sc, "inherit_env must be an array of variable names");
    for (auto& x : *e) {
      if (!x.is_string())
        return bad(sc, "inherit_env must be an array of variable names");
      auto pattern = x.get<std::string>();
      if (auto why = env_pattern_problem(pattern); !why.empty())
        return bad(sc, "inherit_env: " + why);
      p.inherit_env.push_back(std::move(pattern));
    }
  }
  return {};
}

/// The remaining optional parameters.
caf::error read_options(const stage_config& sc, exec_params& p,
                        std::size_t& max_concurrency) {
  const auto& j = sc.params;
  if (auto c = j.find("cwd"); c != j.end()) {
    if (!c->is_string())
      return bad(sc, "cwd must be a string");
    p.cwd = c->get<std::string>();
  }
  if (auto r = j.find("retryable_exit_codes"); r != j.end()) {
    if (!r->is_array())
      return bad(sc, "retryable_exit_codes must be an array of integers");
    p.retryable.clear();
    for (auto& x : *r) {
      if (!x.is_number_integer())
        return bad(sc, "retryable_exit_codes must be an array of integers");
      p.retryable.insert(x.get<int>());
    }
  }
  if (auto m = j.find("max_output_bytes"); m != j.end()) {
    if (!m->is_number_integer() || m->get<std::int64_t>() < 1)
      return bad(sc, "max_output_bytes must be a positive integer");
    p.max_output = m->get<std::size_t>();
  }
  if (auto g = j.find("cancel_grace"); g != j.end()) {
    auto d =
        g->is_string() ? parse_duration(g->get<std::string>()) : std::nullopt;
    if (!d)
      return bad(sc, "cancel_grace must be a duration such as \"5s\"");
    p.cancel_grace = *d;
  }
  if (auto m = j.find("max_concurrency"); m != j.end()) {
    if (!m->is_number_integer() || m->get<std::int64_t>() < 1)
      return bad(sc, "max_concurrency must be an integer of at least 1");
    max_concurrency = m->get<std::size_t>();
  }
  return {};
}

} // namespace

stage_kind_factory make_exec_stage_factory(std::shared_ptr<blocking_pool> pool,
                                           exec_options opts) {
  // Writing the input to a program that exits without reading it must be an
  // EPIPE for that attempt, not a SIGPIPE that kills the node. Children get
  // the default disposition back before exec.
  static std::once_flag ignore_sigpipe;
  std::call_once(ignore_sigpipe, [] { std::signal(SIGPIPE, SIG_IGN); });
  return [pool, opts](const stage_config& sc)
             -> caf::expected<std::shared_ptr<const stage_kind>> {
    exec_params p;
    p.inherit_env = default_inherit_env();
    p.inherit_env.insert(p.inherit_env.end(), opts.inherit_env.begin(),
                         opts.inherit_env.end());
    std::size_t max_concurrency = 0;
    if (auto err = read_command(sc, p))
      return err;
    if (auto err = read_environment(sc, p))
      return err;
    if (auto err = read_options(sc, p, max_concurrency))
      return err;
    return std::shared_ptr<const stage_kind>{std::make_shared<exec_stage>(
        std::make_shared<const exec_params>(std::move(p)),
        std::make_shared<pool_limiter>(pool, max_concurrency), opts.stats,
        orphan_reaper::shared())};
  };
}

stage_kind_schema exec_stage_schema() {
  using t = param_type;
  return {"exec",
          {{"command", t::command, true},
           {"env", t::string_table},
           {"inherit_env", t::env_patterns},
           {"cwd", t::string},
           {"retryable_exit_codes", t::exit_codes},
           {"max_output_bytes", t::positive_integer},
           {"cancel_grace", t::duration, false,
            "how long a cancelled or timed-out program has between SIGTERM "
            "and SIGKILL"},
           {"max_concurrency", t::positive_integer, false,
            "attempts of this stage running at once on a node"}}};
}

std::vector<stage_kind_schema> stage_catalog() {
  auto out = builtin_stage_registry().schemas();
  out.push_back(exec_stage_schema());
  return out;
}

} // namespace troupe
