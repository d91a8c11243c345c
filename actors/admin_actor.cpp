#include "actors/admin_actor.hpp"

#include <algorithm>
#include <map>

#include <caf/all.hpp>

#include "messages/admin_failure.hpp"
#include "messages/admin_json.hpp"
#include "messages/errc.hpp"
#include "messages/heartbeat.hpp"
#include "messages/stats.hpp"

namespace troupe {

namespace {

using json = nlohmann::json;
using reply_promise = caf::typed_response_promise<std::string>;

struct admin_state {
  admin_actor_deps deps;
  std::uint64_t next_id = 0;
  /// Blocking verbs on a worker, by id.
  std::map<std::uint64_t, reply_promise> pending;
  static inline const char* name = "admin";
};

using admin_self = admin_actor::stateful_pointer<admin_state>;

/// Replies may carry strings from the store or a job's payload: invalid
/// UTF-8 is replaced rather than thrown out of the reply.
std::string text_of(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string ok_text(admin_self self, json result) {
  return text_of(admin_ok(self->state.deps.node_id, std::move(result)));
}

std::string error_text(admin_self self, const std::string& code,
                       const std::string& message) {
  return text_of(admin_error(self->state.deps.node_id, code, message));
}

/// Runs a blocking verb (on a worker thread) and renders its reply.
std::string run_verb(const admin_verb& fn, const json& req,
                     const std::string& node) {
  try {
    return text_of(admin_ok(node, fn(req)));
  } catch (const admin_failure& e) {
    return text_of(admin_error(node, e.code, e.what()));
  } catch (const std::exception& e) {
    return text_of(admin_error(node, "failed", e.what()));
  }
}

caf::result<std::string> run_blocking(admin_self self, bool any,
                                      const admin_verb& fn, json req) {
  auto rp = self->make_response_promise<std::string>();
  auto id = ++self->state.next_id;
  auto task = [handle = caf::actor_cast<admin_actor>(self), id, fn,
               req = std::move(req), node = self->state.deps.node_id] {
    caf::anon_send(handle, admin_done_atom::value, id, run_verb(fn, req, node));
  };
  auto& pool = any ? self->state.deps.any_workers : self->state.deps.workers;
  if (pool(std::move(task)))
    self->state.pending.emplace(id, rp);
  else // once a promise exists, only the promise can answer
    rp.deliver(
        error_text(self, "unavailable", "node is busy or stopping; retry"));
  return rp;
}

// -- fan-out to the node's actors with a deadline ---------------------------

/// Collects one answer (or error) per asked actor, then finishes once.
struct gathering {
  std::size_t remaining = 0;
  std::function<void()> finish;

  void one_done() {
    if (--remaining == 0)
      finish();
  }
};

/// Asks every supervisor `msg...`; `on_reply(i, answer)` and
/// `on_error(i, err)` run in the actor, then `finish` once all are in.
template <class Answer, class OnReply, class OnError, class... Ts>
void ask_supervisors(admin_self self, std::chrono::milliseconds timeout,
                     OnReply on_reply, OnError on_error,
                     std::function<void()> finish, Ts... msg) {
  const auto& sups = self->state.deps.supervisors;
  if (sups.empty()) {
    finish();
    return;
  }
  auto g = std::make_shared<gathering>();
  g->remaining = sups.size();
  g->finish = std::move(finish);
  for (std::size_t i = 0; i < sups.size(); ++i)
    self->request(sups[i].second, timeout, msg...)
        .then(
            [g, i, on_reply](Answer& answer) {
              on_reply(i, answer);
              g->one_done();
            },
            [g, i, on_error](caf::error& err) {
              on_error(i, err);
              g->one_done();
            });
}

bool paused(admin_self self, const std::string& pipeline) {
  const auto& f = self->state.deps.intake_paused;
  return f ? f(pipeline) : false;
}

caf::result<std::string> tree(admin_self self, const json& req) {
  auto limit = opt_count(req, "limit", 200, 1, 100000);
  const auto& sups = self->state.deps.supervisors;
  auto pipes = std::make_shared<std::vector<json>>();
  for (const auto& [name, sup] : sups)
    pipes->push_back(json{{"pipeline", name},
                          {"actor", sup.id()},
                          {"paused", paused(self, name)},
                          {"jobs", json::array()}});
  auto rp = self->make_response_promise<std::string>();
  ask_supervisors<std::vector<job_brief>>(
      self, self->state.deps.tree_timeout,
      [pipes](std::size_t i, std::vector<job_brief>& briefs) {
        for (const auto& b : briefs)
          (*pipes)[i]["jobs"].push_back(brief_json(b));
      },
      [pipes](std::size_t i, caf::error& err) {
        (*pipes)[i]["error"] = describe(err);
      },
      [self, rp, pipes]() mutable {
        // The tree lists pipelines by name (a std::map before it was an
        // actor; scripts may depend on the order).
        std::sort(pipes->begin(), pipes->end(),
                  [](const json& a, const json& b) {
                    return a["pipeline"] < b["pipeline"];
                  });
        rp.deliver(ok_text(self, json{{"node", self->state.deps.node_id},
                                      {"pipelines", *pipes}}));
      },
      tree_atom::value, static_cast<std::int32_t>(limit));
  return rp;
}

caf::result<std::string> stats(admin_self self) {
  auto n = self->state.deps.supervisors.size();
  auto rows = std::make_shared<std::vector<json>>(n);
  auto failure = std::make_shared<std::string>();
  auto rp = self->make_response_promise<std::string>();
  ask_supervisors<pipeline_stats>(
      self, self->state.deps.ask_timeout,
      [self, rows](std::size_t i, pipeline_stats& s) {
        (*rows)[i] = stats_json(s, paused(self, s.pipeline));
      },
      [failure](std::size_t, caf::error& err) {
        if (failure->empty())
          *failure = describe(err);
      },
      [self, rp, rows, failure]() mutable {
        rp.deliver(failure->empty() ? ok_text(self, json(*rows))
                                    : error_text(self, "failed", *failure));
      },
      stats_atom::value);
  return rp;
}

caf::result<std::string> nodes(admin_self self) {
  auto rp = self->make_response_promise<std::string>();
  self->request(self->state.deps.member, self->state.deps.ask_timeout,
                get_atom::value)
      .then(
          [self, rp](std::vector<member>& view) mutable {
            auto out = json::array();
            for (const auto& m : view)
              out.push_back(member_json(m));
            rp.deliver(ok_text(self, std::move(out)));
          },
          [self, rp](caf::error& err) mutable {
            rp.deliver(error_text(self, "failed", describe(err)));
          });
  return rp;
}

/// The per-node half of the cluster-wide `cancel`: whichever supervisor
/// holds the job cancels it.
caf::result<std::string> cancel_local(admin_self self, const json& req) {
  auto id = need_string(req, "job_id");
  auto found = std::make_shared<bool>(false);
  auto rp = self->make_response_promise<std::string>();
  ask_supervisors<ok_atom>(
      self, self->state.deps.ask_timeout,
      [found](std::size_t, ok_atom) { *found = true; },
      [](std::size_t, caf::error&) {},
      [self, rp, found]() mutable {
        rp.deliver(ok_text(self, json{{"found", *found}}));
      },
      cancel_atom::value, id);
  return rp;
}

/// The per-node half of `retry` for a job in a short retry wait.
caf::result<std::string> retry_local(admin_self self, const json& req) {
  auto id = need_string(req, "job_id");
  auto found = std::make_shared<std::pair<bool, bool>>(false, false);
  auto rp = self->make_response_promise<std::string>();
  ask_supervisors<bool>(
      self, self->state.deps.ask_timeout,
      [found](std::size_t, bool fired) {
        found->first = true;
        found->second = found->second || fired;
      },
      [](std::size_t, caf::error&) {},
      [self, rp, found]() mutable {
        rp.deliver(ok_text(
            self, json{{"found", found->first}, {"fired", found->second}}));
      },
      now_atom::value, id);
  return rp;
}

caf::result<std::string> run_live(admin_self self, const std::string& verb,
                                  const json& req) {
  try {
    if (verb == "tree")
      return tree(self, req);
    if (verb == "stats")
      return stats(self);
    if (verb == "nodes")
      return nodes(self);
    if (verb == "cancel_local")
      return cancel_local(self, req);
    if (verb == "retry_local")
      return retry_local(self, req);
    return error_text(self, "unknown_verb", "no live verb '" + verb + "'");
  } catch (const admin_failure& e) {
    return error_text(self, e.code, e.what());
  }
}

caf::result<std::string> on_call(admin_self self, const admin_call& call) {
  auto routed = route_admin_call(*self->state.deps.verbs, call);
  if (auto* no = std::get_if<admin_refusal>(&routed))
    return error_text(self, no->code, no->message);
  auto& r = std::get<admin_routed>(routed);
  if (!r.verb->fn)
    return run_live(self, call.verb, r.req);
  return run_blocking(self, call.target == "any", r.verb->fn, std::move(r.req));
}

admin_actor::behavior_type admin_behavior(admin_self self,
                                          admin_actor_deps deps) {
  self->state.deps = std::move(deps);
  return {
      [self](admin_call& call) { return on_call(self, call); },
      [self](admin_done_atom, std::uint64_t id, std::string& text) {
        auto i = self->state.pending.find(id);
        if (i == self->state.pending.end())
          return;
        i->second.deliver(std::move(text));
        self->state.pending.erase(i);
      },
  };
}

} // namespace

void add_live_admin_verbs(admin_verb_table& table) {
  table.add_live_read("tree");
  table.add_live_read("nodes");
  table.add_live_read("stats");
  table.add_live_control("cancel_local", {"job_id"});
  table.add_live_control("retry_local", {"job_id"});
}

admin_actor spawn_admin_actor(caf::actor_system& sys, admin_actor_deps deps) {
  return sys.spawn(admin_behavior, std::move(deps));
}

} // namespace troupe
