// Start-up of a node: each part in order, each registering its stop.
#include "runtime/node/node_impl.hpp"

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <set>
#include <thread>
#include <unistd.h>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/atoms.hpp"
#include "actors/builtin_stages.hpp"
#include "actors/cluster_member.hpp"
#include "actors/node_guard.hpp"
#include "actors/pipeline_supervisor.hpp"
#include "actors/tenant_gate.hpp"
#include "messages/errc.hpp"
#include "messages/heartbeat.hpp"
#include "runtime/client/demo.hpp"
#include "runtime/common/blocking_pool.hpp"
#include "runtime/common/shutdown.hpp"
#include "runtime/common/version.hpp"
#include "runtime/exec/exec_stage.hpp"
#include "runtime/nats/nats_client.hpp"
#include "runtime/node/admin_bridge.hpp"
#include "runtime/node/event_publisher.hpp"
#include "runtime/node/heartbeat_bus.hpp"
#include "runtime/node/http_api.hpp"
#include "runtime/node/node_admin.hpp"
#include "runtime/node/node_governor.hpp"
#include "runtime/node/node_http.hpp"
#include "runtime/node/node_local_verbs.hpp"
#include "runtime/node/node_startup.hpp"
#include "runtime/node/stranded_sweeper.hpp"
#include "runtime/node/submit_api.hpp"
#include "runtime/node/unrouted_sweeper.hpp"
#include "runtime/observe/http_endpoint.hpp"
#include "runtime/observe/metrics.hpp"
#include "runtime/pg/admin_store.hpp"
#include "runtime/pg/job_presence.hpp"
#include "runtime/pg/migrations.hpp"
#include "runtime/pg/pg_store.hpp"
#include "runtime/pg/retention.hpp"
#include "runtime/pg/submission_log.hpp"
#include "runtime/pg/tenant_rates.hpp"

namespace troupe {

namespace {

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

/// Sends `msg` to `who` and waits (at most 2 s) until it has ended.
template <class Message>
void await_exit(caf::actor_system& sys, const caf::actor& who, Message msg) {
  caf::scoped_actor self{sys};
  self->monitor(who);
  self->send(who, msg);
  self->receive([](const caf::down_msg&) {},
                caf::after(std::chrono::seconds{2}) >> [] {});
}

} // namespace

// --- Start ---------------------------------------------------------------

caf::error node::impl::connect_nats() {
  nats_connect_options nco;
  nco.urls = cfg.nats.url;
  nco.auth = auth_from(cfg.nats);
  nco.name = "troupe-node-" + id();
  nco.send_asap = cfg.nats.send_asap;
  nco.inbox_prefix = cfg.nats.inbox_prefix;
  auto conn = with_startup_retries("NATS", cfg.node.startup_timeout, secrets,
                                   [&] { return nats_client::connect(nco); });
  if (!conn)
    return make_error(
        errc::unavailable,
        "NATS at " + redact_url(cfg.nats.url) + ": " +
            redact_text(describe(conn.error()), secrets) +
            " (is nats-server running with -js, and nats.url right?)");
  nats = *conn;
  // Queued publishes (the goodbye heartbeat, last events) leave before the
  // connection closes.
  on_stop("NATS", [this] { nats->flush(); });
  return {};
}

caf::error node::impl::connect_postgres() {
  auto applied =
      with_startup_retries("PostgreSQL", cfg.node.startup_timeout, secrets,
                           [&] { return apply_migrations(cfg.postgres.url); });
  if (!applied)
    return make_error(errc::unavailable,
                      "PostgreSQL at " + redact_url(cfg.postgres.url) + ": " +
                          redact_text(describe(applied.error()), secrets));
  schema = *applied;
  spdlog::info("postgres: schema at version {}", schema);
  return {};
}

caf::error node::impl::prepare_jetstream() {
  if (auto err = check_unique_node_id(*nats, subjects{cfg.nats.prefix}, id(),
                                      cfg.cluster.heartbeat_interval * 3 / 2))
    return err;
  return with_jetstream_retries(cfg, secrets, "JetStream",
                                [&] { return nats->ensure_stream(cfg.nats); });
}

// Stage kinds and pipelines: a bad stage definition stops start-up.
caf::error node::impl::define_pipelines() {
  pool = std::make_shared<blocking_pool>(
      static_cast<std::size_t>(std::max(1, cfg.node.blocking_threads)));
  auto registry = builtin_stage_registry();
  exec_options xo;
  xo.inherit_env = cfg.node.exec_inherit_env;
  xo.stats = exec_counts = std::make_shared<exec_stats>();
  registry.add("exec", make_exec_stage_factory(pool, std::move(xo)),
               exec_stage_schema());
  for (const auto& [name, pc] : cfg.pipelines) {
    auto def = make_pipeline_def(pc, registry);
    if (!def)
      return def.error();
    defs.emplace(name, *def);
    auto max_ack_pending = consumer_max_ack_pending(pc.max_in_flight);
    if (auto err = with_jetstream_retries(
            cfg, secrets, "JetStream consumer", [&, name = name] {
              return nats->ensure_consumer(cfg.nats, name, max_ack_pending);
            }))
      return err;
    if (pc.priorities)
      if (auto err = with_jetstream_retries(
              cfg, secrets, "JetStream consumer", [&, name = name] {
                return nats->ensure_consumer(cfg.nats, name, max_ack_pending,
                                             true);
              }))
        return err;
  }
  limits.max_payload_bytes = cfg.nats.max_payload;
  limits.max_depth = cfg.nats.max_depth;
  limits.max_key_length = static_cast<std::size_t>(cfg.nats.max_key_length);
  return {};
}

// The actor system, the guard, the store and the event publisher. Their
// stop is the last of the actors': the system is destroyed (which waits for
// every actor) before anything they point at goes away.
void node::impl::spawn_core() {
  sys = std::make_unique<caf::actor_system>(actor_config(acfg, cfg.node));
  node_guard_deps gd;
  gd.escalate = [this](const std::string& name, const caf::error& reason) {
    spdlog::critical("node {}: {} died ({}); draining and exiting", id(), name,
                     describe(reason));
    {
      std::lock_guard<std::mutex> lock{dead_mtx};
      dead.push_back(name);
    }
  };
  guard = spawn_node_guard(*sys, gd);
  pg_store_options so;
  so.pg = cfg.postgres;
  so.lease_owner = lease_owner;
  so.stats = store_stats = std::make_shared<pg_store_stats>();
  store = spawn_pg_store(*sys, so);
  // Job metrics come from the events this node publishes (see metrics.hpp).
  if (cfg.node.metrics)
    jmetrics = std::make_shared<job_metrics>(stage_names_of(cfg));
  if (!cfg.node.otlp_endpoint.empty())
    spans = std::make_shared<span_exporter>(cfg.node.otlp_endpoint, id());
  events = spawn_event_publisher(*sys, nats, subjects{cfg.nats.prefix},
                                 jmetrics, spans);
  caf::anon_send(guard, guard_watch_atom::value, std::string{"store"},
                 caf::actor_cast<caf::actor>(store));
  caf::anon_send(guard, guard_watch_atom::value, std::string{"event publisher"},
                 events);
  on_stop("actor system", [this] {
    caf::anon_send_exit(store, caf::exit_reason::user_shutdown);
    for (auto& a : {events, guard})
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    // Exec attempts on the pool send to actors: no task may outlive them.
    pool->stop();
    if (spans)
      spans->stop(); // the last spans go out (2 s at most)
    sys.reset();
  });
}

caf::error node::impl::start_pipelines() {
  jdeps = std::make_shared<job_deps>();
  jdeps->store = store;
  jdeps->events = events;
  jdeps->node_id = id();
  jdeps->now_ms = wall_ms;
  jdeps->speculate = cfg.node.speculate;
  jdeps->store_after = cfg.node.store_retry_after;
  jdeps->event_result_max =
      static_cast<std::size_t>(cfg.node.event_result_max_bytes);
  jdeps->progress_interval = cfg.node.progress_interval;
  for (const auto& [name, def] : defs)
    jdeps->pipelines.insert(name);
  jdeps->seed = static_cast<std::uint64_t>(wall_ms()) ^
                (static_cast<std::uint64_t>(getpid()) << 32);
  // Per-tenant concurrency, shared by every pipeline of this node.
  bool tenant_limits = cfg.tenants.defaults.max_in_flight > 0;
  for (auto& [name, lim] : cfg.tenants.named)
    tenant_limits = tenant_limits || lim.max_in_flight > 0;
  if (tenant_limits)
    gate = std::make_shared<tenant_gate>(cfg.tenants);
  // Which fetched jobs exist already (those may not speculate, see
  // job_presence.hpp), and node.max_in_flight as one budget: both shared by
  // every pipeline's intake.
  auto presence = std::make_shared<job_presence>(cfg.postgres.url);
  // Tenants' rates, counted across the cluster on every way in (one
  // connection shared by the node's intakes).
  bool rated = cfg.tenants.defaults.rate_per_s > 0;
  for (auto& [name, lim] : cfg.tenants.named)
    rated = rated || lim.rate_per_s > 0;
  auto rates =
      rated ? std::make_shared<tenant_rates>(cfg.postgres.url) : nullptr;
  auto node_held = std::make_shared<std::atomic<std::int64_t>>(0);
  on_stop("pipelines", [this] {
    for (auto& p : pipelines)
      caf::anon_send_exit(p.supervisor, caf::exit_reason::user_shutdown);
    // The intakes' actors end with them.
    pipelines.clear();
  });
  for (const auto& [name, def] : defs) {
    node_pipeline p{name, def, nullptr, {}};
    p.intake = std::make_unique<jetstream_intake>(
        *sys, nats, cfg.nats, name, def->config.max_in_flight, limits);
    p.intake->share_node_budget(node_held, cfg.node.max_in_flight);
    p.intake->set_presence(presence);
    if (rates)
      p.intake->set_tenant_rates(rates, cfg.tenants);
    if (def->config.priorities)
      p.intake->add_high_band();
    supervisor_deps sd;
    sd.job = jdeps;
    sd.intake = p.intake->actor();
    sd.gate = gate;
    p.supervisor =
        caf::actor_cast<caf::actor>(spawn_pipeline_supervisor(*sys, def, sd));
    if (gate)
      gate->add_listener(p.supervisor);
    caf::anon_send(guard, guard_watch_atom::value, "pipeline " + name,
                   p.supervisor);
    // A JetStream cluster that lost a server answers "stream not found" or
    // "temporarily unavailable" for a while (chaos seed 4): retried.
    auto err =
        with_jetstream_retries(cfg, secrets, "JetStream pull subscription",
                               [&] { return p.intake->start(p.supervisor); });
    pipelines.push_back(std::move(p));
    if (err)
      return err;
  }
  // Stopping the intakes gives held messages back to the broker at once,
  // before their supervisors go.
  on_stop("intakes", [this] {
    for (auto& p : pipelines)
      p.intake->stop();
  });
  return {};
}

// Membership: announce ourselves, watch the others.
caf::error node::impl::start_membership() {
  hb_bus =
      std::make_unique<heartbeat_bus>(*sys, nats, subjects{cfg.nats.prefix});
  membership_log = sys->spawn([](caf::event_based_actor*) -> caf::behavior {
    return {
        [](member_atom, const member& m) {
          spdlog::info("cluster: node {} ({} pid {}) is {}", m.last.node_id,
                       m.last.host, m.last.pid, m.state);
        },
        [](conflict_atom, const heartbeat& hb) {
          spdlog::error("cluster: another process ({} pid {}) announces "
                        "our node id",
                        hb.host, hb.pid);
        },
    };
  });
  cluster_deps cd;
  cd.bus = hb_bus->publisher();
  cd.listener = membership_log;
  cd.self.node_id = id();
  cd.self.host = host_name();
  cd.self.pid = getpid();
  cd.self.version = troupe::version();
  cd.self.capacity = cfg.node.max_in_flight;
  cd.self.started_at_ms = wall_ms();
  for (auto& p : pipelines)
    cd.self.pipelines.push_back(p.name);
  cd.interval = cfg.cluster.heartbeat_interval;
  cd.failure_timeout = cfg.cluster.failure_timeout;
  cd.now_ms = wall_ms;
  cd.health = [health = health] {
    static const char* names[] = {"healthy", "degraded", "unhealthy"};
    return std::string{names[health->load()]};
  };
  cd.load = load_and_beat();
  member_actor = spawn_cluster_member(*sys, cd);
  caf::anon_send(guard, guard_watch_atom::value, std::string{"cluster member"},
                 member_actor);
  on_stop("membership", [this] {
    // Leave before going away, so peers do not wait for the failure timeout:
    // the member's goodbye is queued at the publisher before it closes.
    caf::anon_send(guard, guard_stand_down_atom::value);
    await_exit(*sys, member_actor, leave_atom::value);
    hb_bus.reset();
    caf::anon_send_exit(membership_log, caf::exit_reason::user_shutdown);
  });
  return hb_bus->start(member_actor);
}

// The node's admin actor and its NATS bridge (the shell builds on them).
caf::error node::impl::start_admin() {
  controls = std::make_shared<pipeline_controls>(
      std::make_shared<admin_store>(cfg.postgres.url),
      std::chrono::milliseconds{2000});
  controls->refresh();
  controls->start();
  pruner = std::make_shared<retention_pruner>(cfg);
  pruner->start();
  admin_pool = std::make_shared<blocking_pool>(2, 256);
  admin_any_pool = std::make_shared<blocking_pool>(2, 256);
  admin_actor_ref = spawn_admin_actor(*sys, admin_deps());
  caf::anon_send(guard, guard_watch_atom::value, std::string{"admin"},
                 caf::actor_cast<caf::actor>(admin_actor_ref));
  admin =
      std::make_unique<admin_bridge>(nats, cfg.nats.prefix, id(), *sys,
                                     admin_actor_ref, cfg.nats.inbox_prefix);
  on_stop("admin", [this] {
    // Requests already taken are answered while what they touch exists.
    admin->stop();
    admin_any_pool->stop();
    admin_pool->stop();
    admin.reset();
    // The node is stopping from here on: the admin actor's end is expected.
    caf::anon_send(guard, guard_stand_down_atom::value);
    caf::anon_send_exit(admin_actor_ref, caf::exit_reason::user_shutdown);
    controls->stop();
    pruner->stop();
  });
  return admin->start();
}

admin_actor_deps node::impl::admin_deps() {
  auto verbs = std::make_shared<admin_verb_table>();
  add_live_admin_verbs(*verbs);
  add_node_local_verbs(*verbs,
                       node_local_context{cfg.tenants, gate, *api,
                                          [this] { drain_requested = true; },
                                          [this] { resume_requested = true; }});
  add_node_admin_verbs(*verbs, admin_context());
  admin_actor_deps d;
  d.node_id = id();
  d.verbs = std::move(verbs);
  d.workers = [pool = admin_pool](std::function<void()> fn) {
    return pool->post(std::move(fn));
  };
  d.any_workers = [pool = admin_any_pool](std::function<void()> fn) {
    return pool->post(std::move(fn));
  };
  for (auto& p : pipelines)
    d.supervisors.emplace_back(p.name, p.supervisor);
  d.member = member_actor;
  d.intake_paused = [this](const std::string& name) {
    for (auto& p : pipelines)
      if (p.name == name)
        return p.intake->paused();
    return false;
  };
  return d;
}

std::shared_ptr<node_admin_context> node::impl::admin_context() {
  auto actx = std::make_shared<node_admin_context>();
  actx->node_id = id();
  actx->prefix = cfg.nats.prefix;
  actx->nats = nats;
  actx->pipelines = defs;
  actx->store = std::make_shared<admin_store>(cfg.postgres.url);
  actx->batches = std::make_shared<batch_store>(cfg.postgres.url);
  actx->controls = controls;
  actx->pruner = pruner;
  actx->tidy =
      std::make_shared<stream_tidy>(nats, cfg.nats, cfg.postgres.url, limits);
  actx->alive_nodes = [this] {
    std::size_t n = 0;
    try {
      for (auto& m : cluster_view(*sys, member_actor))
        n += m.state != "down";
    } catch (const std::exception&) {
    }
    return n;
  };
  actx->apply_controls = [this] { apply_fetching(); };
  return actx;
}

// HTTP: health, readiness, metrics.
caf::error node::impl::start_http() {
  node_http_sources hs{
      cfg,
      *sys,
      *nats,
      schema,
      pipelines,
      member_actor,
      store_stats,
      pruner,
      jmetrics,
      [this] { return collect_pipeline_stats(*sys, pipelines); },
      exec_counts,
      [this] { return dead_actors(); },
      scheduler->stats(),
      stranded->stats(),
      [this] { return api->unlogged(); }};
  auto access = load_api_access(cfg.node.api_tokens_file, cfg.node.http,
                                api_tokens_from_env());
  if (!access)
    return access.error();
  auto handlers = make_node_http_handlers(hs);
  auto api = make_http_api(*sys, admin_actor_ref, std::move(*access), nats,
                           cfg.nats.prefix);
  handlers.api = std::move(api.api);
  handlers.stopping = std::move(api.stopping);
  http = std::make_unique<http_endpoint>();
  auto port = http->start(cfg.node.http, std::move(handlers));
  if (!port)
    return port.error();
  on_stop("HTTP", [this] { http.reset(); });
  spdlog::info("node {}: http on {}:{} (/healthz /readyz /metrics /api/v1 /ui)",
               id(), cfg.node.http.substr(0, cfg.node.http.rfind(':')), *port);
  return {};
}

caf::error node::start() {
  auto& m = *impl_;
  if (m.id() == "all" || m.id() == "any")
    // Both are admin targets (`<prefix>.admin.all|any...`), not node ids.
    return make_error(errc::invalid_payload,
                      "node id '" + m.id() +
                          "' is reserved; choose another "
                          "--node-id");
  m.lease_owner = m.id() + "#" + impl::incarnation();
  spdlog::info(
      "node {}: starting ({} pipeline(s)), lease owner {}, CAF "
      "scheduler {}",
      m.id(), m.cfg.pipelines.size(), m.lease_owner,
      scheduler_policy(m.cfg.node, std::thread::hardware_concurrency()));
  m.secrets = m.cfg.nats.url + "," + m.cfg.postgres.url;
  caf::error err;
  auto step = [&](auto fn) {
    if (!err)
      err = (m.*fn)();
  };
  // Dependencies first: fail fast with one clear line if they are not
  // reachable within a bounded time.
  step(&impl::connect_nats);
  step(&impl::connect_postgres);
  step(&impl::prepare_jetstream);
  step(&impl::define_pipelines);
  if (!err)
    m.spawn_core();
  step(&impl::start_pipelines);
  step(&impl::start_scheduler); // the lease before any claim (node_edges)
  step(&impl::start_membership);
  step(&impl::start_edges);
  step(&impl::start_admin);
  step(&impl::start_http);
  if (err) {
    stop();
    return err;
  }
  // Only now is everything up (intake, API, admin subjects, HTTP): scripts
  // and tests wait for this line. The subscriptions' SUBs are buffered by
  // nats.c: a round trip makes sure the server has them, or a request sent
  // on seeing the line could find no responder.
  if (m.nats)
    m.nats->flush(2000);
  spdlog::info("node {}: ready; NATS {}, PostgreSQL {}", m.id(),
               redact_url(m.cfg.nats.url), redact_url(m.cfg.postgres.url));
  return {};
}

} // namespace troupe
