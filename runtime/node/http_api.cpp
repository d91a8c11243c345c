#include "runtime/node/http_api.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>
#include <variant>
#include <vector>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "config/config_loader.hpp"
#include "messages/errc.hpp"
#include "messages/json_guard.hpp"
#include "runtime/client/admin_client.hpp"
#include "runtime/node/event_feed.hpp"

namespace troupe {

namespace {

using json = nlohmann::json;

/// What every request of one node's API shares.
struct api_state {
  caf::actor_system* sys = nullptr;
  admin_actor admin;
  api_access access;
  std::shared_ptr<nats_client> nats;
  std::string prefix;
  /// After `nats`: it unsubscribes before the connection goes.
  std::unique_ptr<event_hub> hub;
  std::atomic<int> feeds{0};
  std::atomic<bool> stopping{false};
  /// GET /api/v1/pipelines counts every job in PostgreSQL; each open
  /// dashboard asks for it, so one answer serves them all for a while.
  std::mutex counts_mtx;
  api_response counts;
  std::chrono::steady_clock::time_point counts_at;
};

constexpr auto counts_ttl = std::chrono::seconds{2};

/// A request's route: the admin call it becomes and whether it steers.
struct api_route {
  admin_call call;
  bool steers = false;
};

api_response reply(int status, const std::string& code,
                   const std::string& message) {
  api_response out;
  out.status = status;
  out.body = json{{"error", {{"code", code}, {"message", message}}}}.dump(
      -1, ' ', false, json::error_handler_t::replace);
  return out;
}

/// Equal in time independent of where the strings differ.
bool same_token(const std::string& a, const std::string& b) {
  if (a.size() != b.size())
    return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

std::optional<api_caller> caller_of(const api_access& access,
                                    const std::string& authorization) {
  const std::string bearer = "Bearer ";
  if (authorization.compare(0, bearer.size(), bearer) != 0)
    return std::nullopt;
  auto token = authorization.substr(bearer.size());
  std::optional<api_caller> found;
  for (const auto& [t, who] : access.tokens)
    if (same_token(t, token))
      found = who;
  return found;
}

// -- routes ------------------------------------------------------------------

std::vector<std::string> segments(const std::string& path) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : path.substr(std::string{"/api/v1/"}.size())) {
    if (c == '/') {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

/// Joins segments [from, to): a job id may contain '/' (child jobs).
std::string joined(const std::vector<std::string>& s, std::size_t from,
                   std::size_t to) {
  std::string out;
  for (auto i = from; i < to; ++i)
    out += (i == from ? "" : "/") + s[i];
  return out;
}

/// The query's fields as a request body: integers where the verb expects
/// them (a non-integer is refused by the verb), strings otherwise.
json query_body(const api_request& req) {
  json out = json::object();
  for (const auto& [k, v] : req.query) {
    bool integer = k == "limit" || k == "since_ms";
    bool digits = !v.empty() && v.size() < 19 &&
                  v.find_first_not_of("0123456789") == std::string::npos;
    if (integer)
      out[k] = digits ? json(std::stoll(v)) : json(v);
    else if (k == "full")
      out[k] = v == "true" || v == "1";
    else
      out[k] = v;
  }
  return out;
}

/// A request body as text. A path or query may carry invalid UTF-8
/// (`/api/v1/jobs/a%FF`): it is replaced, so the verb answers "unknown"
/// instead of the dump throwing.
std::string body_text(const json& body) {
  return body.dump(-1, ' ', false, json::error_handler_t::replace);
}

admin_call read_call(const std::string& verb, json body,
                     const std::string& target = "local") {
  return {target, "read", verb, body_text(body)};
}

std::optional<api_route> get_route(const api_request& req) {
  auto s = segments(req.path);
  auto q = query_body(req);
  if (s.size() == 1 && s[0] == "nodes")
    return api_route{read_call("nodes", json::object())};
  if (s.size() == 1 && s[0] == "stats")
    return api_route{read_call("stats", json::object())};
  if (s.size() == 1 && s[0] == "schedules")
    return api_route{read_call("schedules", json::object(), "any")};
  if (s.size() == 1 && s[0] == "tree")
    return api_route{read_call("tree", q)};
  if (s.size() == 1 && s[0] == "jobs")
    return api_route{read_call("jobs", q, "any")};
  if (s.size() == 1 && s[0] == "dead-letters")
    return api_route{read_call("dlq", q, "any")};
  if (s.size() >= 2 && s[0] == "jobs") {
    q["job_id"] = joined(s, 1, s.size());
    return api_route{read_call("job", q, "any")};
  }
  return std::nullopt;
}

/// The body of a steering request: a JSON object with at most `fields`.
caf::expected<json> steer_body(const api_request& req,
                               std::initializer_list<const char*> fields) {
  if (req.body.empty())
    return json::object();
  auto body = parse_untrusted_json(req.body, 16, "request body");
  if (!body)
    return body.error();
  if (!body->is_object())
    return make_error(errc::invalid_payload,
                      "request body must be a JSON object");
  for (const auto& [k, v] : body->items()) {
    bool known = false;
    for (auto f : fields)
      known = known || k == f;
    if (!known)
      return make_error(errc::invalid_payload, "unknown field '" +
                                                   k.substr(0, 64) +
                                                   "' in request body");
  }
  return body;
}

admin_call control_call(const std::string& verb, const json& body) {
  return {"any", "control", verb, body_text(body)};
}

/// POST routes; nullopt: no such route.
std::optional<caf::expected<api_route>> post_route(const api_request& req) {
  auto s = segments(req.path);
  auto steer = [](const std::string& verb,
                  caf::expected<json> body) -> caf::expected<api_route> {
    if (!body)
      return body.error();
    return api_route{control_call(verb, *body), true};
  };
  auto n = s.size();
  if (n >= 3 && s[0] == "jobs") {
    auto action = s[n - 1];
    auto id = joined(s, 1, n - 1);
    if (action == "cancel" || action == "retry" || action == "replay") {
      auto body = action == "cancel" ? steer_body(req, {})
                                     : steer_body(req, {"from_stage"});
      if (body)
        (*body)["job_id"] = id;
      return steer(action, std::move(body));
    }
  }
  if (n == 2 && s[0] == "dead-letters" && s[1] == "replay") {
    auto body = steer_body(req, {"pipeline", "limit"});
    if (body)
      (*body)["all"] = true;
    return steer("replay", std::move(body));
  }
  if (n == 3 && s[0] == "pipelines" && (s[2] == "pause" || s[2] == "unpause"))
    return steer(s[2], json{{"pipeline", s[1]}});
  if (n == 3 && s[0] == "schedules")
    return steer("schedule", json{{"name", s[1]}, {"action", s[2]}});
  return std::nullopt;
}

// -- answers -----------------------------------------------------------------

int status_of(const std::string& code) {
  static const std::map<std::string, int> by_code = {{"conflict", 409},
                                                     {"unavailable", 503},
                                                     {"failed", 500},
                                                     {"forbidden", 403},
                                                     {"unknown_verb", 404}};
  if (auto i = by_code.find(code); i != by_code.end())
    return i->second;
  if (code.rfind("unknown", 0) == 0)
    return 404; // unknown_job, unknown_batch, unknown_schedule
  return 400;
}

/// The admin actor's reply as an HTTP answer: the result, or the error.
api_response answer(const std::string& text) {
  auto r = json::parse(text, nullptr, false);
  if (r.is_discarded() || !r.is_object())
    return reply(500, "failed", "unreadable reply from the admin actor");
  if (r.value("ok", false)) {
    api_response out;
    out.body = r["result"].dump(-1, ' ', false, json::error_handler_t::replace);
    return out;
  }
  auto code = r["error"].value("code", "failed");
  return reply(status_of(code), code, r["error"].value("message", ""));
}

api_response ask(caf::actor_system& sys, const admin_actor& admin,
                 const admin_call& call) {
  api_response out;
  caf::scoped_actor self{sys};
  self->request(admin, std::chrono::seconds{60}, call)
      .receive([&](std::string& text) { out = answer(text); },
               [&](caf::error& err) {
                 out = reply(503, "unavailable", describe(err));
               });
  return out;
}

// -- the live feed -----------------------------------------------------------

/// Writes the feed's events until the client leaves or the node stops; a
/// comment line every few seconds finds a client that left while idle.
void pump(api_state& st, event_feed& feed,
          const std::function<bool(const std::string&)>& write) {
  using clock = std::chrono::steady_clock;
  auto last_write = clock::now();
  std::int64_t reported = 0;
  bool open = write(": troupe events\n\n");
  while (open && !st.stopping) {
    auto events = feed.take(std::chrono::seconds{1});
    // Events come in bursts: after the first, gather for 20 ms and write
    // them at once. A wake-up and a write per event cost each open
    // dashboard a thread switch and a system call per event.
    if (!events.empty() && events.size() < 256) {
      std::this_thread::sleep_for(std::chrono::milliseconds{20});
      for (auto& e : feed.take(std::chrono::milliseconds{0}))
        events.push_back(std::move(e));
    }
    std::string frames;
    for (const auto& e : events)
      frames += *e;
    if (!frames.empty())
      open = write(frames);
    if (auto lost = feed.dropped(); open && lost != reported) {
      reported = lost;
      open =
          write("event: dropped\ndata: {\"dropped\":" + std::to_string(lost) +
                "}\n\n");
    }
    if (!events.empty())
      last_write = clock::now();
    else if (open && clock::now() - last_write >= std::chrono::seconds{5}) {
      open = write(": keep-alive\n\n");
      last_write = clock::now();
    }
  }
}

api_response open_feed(api_state& st, const api_request& req) {
  auto filter = feed_filter_of(req.query);
  if (!filter)
    return reply(400, "invalid_request", message_of(filter.error()));
  if (st.feeds.fetch_add(1) >= api_max_feeds) {
    --st.feeds;
    return reply(503, "unavailable",
                 "too many live feeds on this node (at most " +
                     std::to_string(api_max_feeds) + ")");
  }
  auto feed = st.hub->open(std::move(*filter), 1000);
  if (!feed) {
    --st.feeds;
    return reply(503, "unavailable", describe(feed.error()));
  }
  api_response out;
  out.stream = [&st, f = *feed](const auto& write) {
    pump(st, *f, write);
    st.hub->close(f);
    --st.feeds;
  };
  return out;
}

/// Every node's live tree: gathered over NATS like the shell's `tree`
/// (`<prefix>.admin.all.read.tree`), ending early once every node this one
/// sees up has answered.
api_response cluster_tree(api_state& st, const api_request& req) {
  auto nodes = ask(*st.sys, st.admin, read_call("nodes", json::object()));
  std::size_t up = 0;
  if (nodes.status == 200)
    for (const auto& m : json::parse(nodes.body, nullptr, false))
      up += m.is_object() && m.value("state", "") != "down";
  json body = json::object();
  if (auto q = query_body(req); q.contains("limit"))
    body["limit"] = q["limit"];
  auto replies =
      admin_gather(*st.nats, st.prefix + ".admin.all.read.tree",
                   body_text(body), std::chrono::milliseconds{3000}, up);
  auto out = json::array();
  for (auto& r : replies)
    if (r.value("ok", false))
      out.push_back(std::move(r["result"]));
  std::sort(out.begin(), out.end(), [](const json& a, const json& b) {
    return a.value("node", "") < b.value("node", "");
  });
  api_response res;
  res.body = out.dump(-1, ' ', false, json::error_handler_t::replace);
  return res;
}

/// The store's counts per pipeline, at most counts_ttl old. Concurrent
/// callers wait for one query instead of each running their own.
api_response pipeline_counts(api_state& st) {
  std::lock_guard<std::mutex> lock{st.counts_mtx};
  auto now = std::chrono::steady_clock::now();
  if (st.counts.status == 200 && !st.counts.body.empty() &&
      now - st.counts_at < counts_ttl)
    return st.counts;
  auto out = ask(*st.sys, st.admin, read_call("counts", json::object(), "any"));
  st.counts = out;
  st.counts_at = now;
  return out;
}

/// Who is asking, or the refusal.
std::variant<api_caller, api_response> authenticate(const api_access& access,
                                                    const api_request& req) {
  if (access.open)
    return api_caller{"loopback", true};
  if (access.tokens.empty())
    return reply(403, "forbidden",
                 "the HTTP API is off on a non-loopback address without "
                 "tokens: set node.api_tokens_file");
  if (auto who = caller_of(access, req.authorization))
    return *who;
  return reply(401, "unauthorized",
               "send Authorization: Bearer <token> (node.api_tokens_file)");
}

/// Who the caller is, so a page can say so (it never repeats the token).
api_response session(const api_access& access, const api_caller& caller) {
  api_response out;
  out.body = json{{"name", caller.name},
                  {"role", caller.admin ? "admin" : "viewer"},
                  {"open", access.open}}
                 .dump(-1, ' ', false, json::error_handler_t::replace);
  return out;
}

std::string printable(const std::string& s) {
  std::string out;
  for (char c : s.substr(0, 200))
    out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
  return out;
}

api_response serve(api_state& st, const api_request& req) {
  auto& sys = *st.sys;
  const auto& admin = st.admin;
  auto who = authenticate(st.access, req);
  if (auto* no = std::get_if<api_response>(&who))
    return *no;
  const auto& caller = std::get<api_caller>(who);
  if (req.method == "GET") {
    if (req.path == "/api/v1/session")
      return session(st.access, caller);
    if (req.path == "/api/v1/events")
      return open_feed(st, req);
    if (req.path == "/api/v1/cluster/tree")
      return cluster_tree(st, req);
    if (req.path == "/api/v1/pipelines")
      return pipeline_counts(st);
    if (auto route = get_route(req))
      return ask(sys, admin, route->call);
    return reply(404, "not_found", "no such resource: " + printable(req.path));
  }
  auto route = post_route(req);
  if (!route)
    return reply(404, "not_found", "no such action: " + printable(req.path));
  if (!*route)
    return reply(400, "invalid_request", message_of(route->error()));
  if (!caller.admin)
    return reply(403, "forbidden",
                 "token '" + caller.name +
                     "' is a viewer; steering needs "
                     "an admin token");
  auto out = ask(sys, admin, (*route)->call);
  spdlog::info("api: {} ({}) POST {} -> {}", caller.name, req.remote_addr,
               printable(req.path), out.status);
  return out;
}

} // namespace

http_api_handlers make_http_api(caf::actor_system& sys, admin_actor admin,
                                api_access access,
                                std::shared_ptr<nats_client> nats,
                                std::string prefix) {
  auto st = std::make_shared<api_state>();
  st->sys = &sys;
  st->admin = std::move(admin);
  st->access = std::move(access);
  st->nats = std::move(nats);
  st->prefix = std::move(prefix);
  st->hub = std::make_unique<event_hub>(*st->nats, st->prefix);
  return {[st](const api_request& req) { return serve(*st, req); },
          [st] { st->stopping = true; }};
}

} // namespace troupe
