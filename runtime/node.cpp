#include "runtime/node.hpp"
#include "runtime/node_startup.hpp"

#include <chrono>
#include <set>
#include <thread>
#include <unistd.h>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "actors/atoms.hpp"
#include "actors/builtin_stages.hpp"
#include "actors/cluster_member.hpp"
#include "actors/pipeline_supervisor.hpp"
#include "actors/tenant_gate.hpp"
#include "messages/errc.hpp"
#include "messages/heartbeat.hpp"
#include "messages/stats.hpp"
#include "runtime/admin_bridge.hpp"
#include "runtime/admin_store.hpp"
#include "runtime/blocking_pool.hpp"
#include "runtime/demo.hpp"
#include "runtime/event_publisher.hpp"
#include "runtime/exec_stage.hpp"
#include "runtime/heartbeat_bus.hpp"
#include "runtime/http_endpoint.hpp"
#include "runtime/jetstream_intake.hpp"
#include "runtime/job_presence.hpp"
#include "runtime/metrics.hpp"
#include "runtime/migrations.hpp"
#include "runtime/nats_client.hpp"
#include "runtime/node_admin.hpp"
#include "runtime/node_http.hpp"
#include "runtime/pg_store.hpp"
#include "runtime/retention.hpp"
#include "runtime/shutdown.hpp"
#include "runtime/submit_api.hpp"
#include "runtime/unrouted_sweeper.hpp"
#include "runtime/version.hpp"

namespace troupe {

namespace {

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

} // namespace

int run_node(const troupe_config& cfg, const node_run_options& opts) {
  const auto& node_id = cfg.node.id;
  if (node_id == "all" || node_id == "any") {
    // Both are admin targets (`<prefix>.admin.all|any...`), not node ids.
    spdlog::critical("cannot start: node id '{}' is reserved; choose another "
                     "--node-id",
                     node_id);
    return 2;
  }
  spdlog::info("node {}: starting ({} pipeline(s))", node_id,
               cfg.pipelines.size());

  // 1. Dependencies first: fail fast with one clear line if they are not
  // reachable within a bounded time.
  nats_connect_options nco;
  nco.urls = cfg.nats.url;
  nco.auth = auth_from(cfg.nats);
  nco.name = "troupe-node-" + node_id;
  nco.send_asap = cfg.nats.send_asap;
  nco.inbox_prefix = cfg.nats.inbox_prefix;
  auto secrets = cfg.nats.url + "," + cfg.postgres.url;
  auto nats = with_startup_retries("NATS", cfg.node.startup_timeout, secrets,
                                   [&] { return nats_client::connect(nco); });
  if (!nats) {
    spdlog::critical("cannot start: NATS at {}: {} (is nats-server running "
                     "with -js, and nats.url right?)",
                     redact_url(cfg.nats.url),
                     redact_text(describe(nats.error()), secrets));
    return 2;
  }
  auto schema =
      with_startup_retries("PostgreSQL", cfg.node.startup_timeout, secrets,
                           [&] { return apply_migrations(cfg.postgres.url); });
  if (!schema) {
    spdlog::critical("cannot start: PostgreSQL at {}: {}",
                     redact_url(cfg.postgres.url),
                     redact_text(describe(schema.error()), secrets));
    return 2;
  }
  spdlog::info("postgres: schema at version {}", *schema);
  if (auto err =
          check_unique_node_id(**nats, subjects{cfg.nats.prefix}, node_id,
                               cfg.cluster.heartbeat_interval * 3 / 2)) {
    spdlog::critical("cannot start: {}", describe(err));
    return 2;
  }
  // A JetStream cluster that is still electing its leader answers with
  // errors for a few seconds: retry like any other dependency.
  auto stream_ok = with_startup_retries(
      "JetStream", std::max(cfg.node.startup_timeout, duration_ms{30000}),
      secrets,
      [&]() -> caf::expected<bool> {
        if (auto err = (*nats)->ensure_stream(cfg.nats))
          return err;
        return true;
      },
      true);
  if (!stream_ok) {
    spdlog::critical("cannot start: {}", describe(stream_ok.error()));
    return 2;
  }

  // 2. Stage kinds and pipelines: a bad stage definition stops start-up.
  auto pool = std::make_shared<blocking_pool>(
      static_cast<std::size_t>(std::max(1, cfg.node.blocking_threads)));
  auto registry = builtin_stage_registry();
  exec_options xo;
  xo.inherit_env = cfg.node.exec_inherit_env;
  xo.stats = std::make_shared<exec_stats>();
  auto exec_counts = xo.stats;
  registry.add("exec", make_exec_stage_factory(pool, std::move(xo)));
  std::map<std::string, std::shared_ptr<const pipeline_def>> defs;
  for (const auto& [name, pc] : cfg.pipelines) {
    auto def = make_pipeline_def(pc, registry);
    if (!def) {
      spdlog::critical("cannot start: {}", describe(def.error()));
      return 2;
    }
    defs.emplace(name, *def);
    auto max_ack_pending = std::max<std::int64_t>(20000, pc.max_in_flight * 4);
    auto consumer_ok = with_startup_retries(
        "JetStream consumer",
        std::max(cfg.node.startup_timeout, duration_ms{30000}), secrets,
        [&]() -> caf::expected<bool> {
          if (auto err =
                  (*nats)->ensure_consumer(cfg.nats, name, max_ack_pending))
            return err;
          return true;
        },
        true);
    if (!consumer_ok) {
      spdlog::critical("cannot start: {}", describe(consumer_ok.error()));
      return 2;
    }
  }

  // 3. The actor system and its actors.
  caf::actor_system_config acfg;
  caf::actor_system sys{actor_config(acfg, cfg.node)};
  pg_store_options so;
  so.pg = cfg.postgres;
  so.node_id = node_id;
  so.lease = std::max<duration_ms>(cfg.nats.ack_wait * 2, duration_ms{60000});
  so.stats = std::make_shared<pg_store_stats>();
  auto store_stats = so.stats;
  auto store = spawn_pg_store(sys, so);
  // Job metrics come from the events this node publishes (see metrics.hpp).
  std::shared_ptr<job_metrics> jmetrics;
  if (cfg.node.metrics) {
    std::map<std::string, std::vector<std::string>> stage_names;
    for (auto& [name, pc] : cfg.pipelines)
      for (auto& sc : pc.stages)
        stage_names[name].push_back(sc.name);
    jmetrics = std::make_shared<job_metrics>(std::move(stage_names));
  }
  auto events =
      spawn_event_publisher(sys, *nats, subjects{cfg.nats.prefix}, jmetrics);
  auto jdeps = std::make_shared<job_deps>();
  jdeps->store = store;
  jdeps->events = events;
  jdeps->node_id = node_id;
  jdeps->now_ms = wall_ms;
  jdeps->speculate = cfg.node.speculate;
  jdeps->seed = static_cast<std::uint64_t>(wall_ms()) ^
                (static_cast<std::uint64_t>(getpid()) << 32);
  input_limits limits;
  limits.max_payload_bytes = cfg.nats.max_payload;
  limits.max_depth = cfg.nats.max_depth;
  limits.max_key_length = static_cast<std::size_t>(cfg.nats.max_key_length);
  // Per-tenant concurrency, shared by every pipeline of this node.
  std::shared_ptr<tenant_gate> gate;
  for (auto& [name, lim] : cfg.tenants.named)
    if (lim.max_in_flight > 0)
      gate = std::make_shared<tenant_gate>(cfg.tenants);
  if (cfg.tenants.defaults.max_in_flight > 0)
    gate = std::make_shared<tenant_gate>(cfg.tenants);
  std::vector<std::unique_ptr<jetstream_intake>> intakes;
  std::vector<caf::actor> supervisors;
  std::vector<std::string> supervisors_names;
  std::set<std::string> names;
  // Shared by the intakes: which fetched jobs exist already (those may not
  // speculate, see job_presence.hpp).
  auto presence = std::make_shared<job_presence>(cfg.postgres.url);
  // node.max_in_flight: one budget shared by every pipeline's intake.
  auto node_held = std::make_shared<std::atomic<std::int64_t>>(0);
  for (const auto& [name, def] : defs) {
    names.insert(name);
    auto intake = std::make_unique<jetstream_intake>(
        sys, *nats, cfg.nats, name, def->config.max_in_flight, limits);
    intake->share_node_budget(node_held, cfg.node.max_in_flight);
    intake->set_presence(presence);
    supervisor_deps sd;
    sd.job = jdeps;
    sd.intake = intake->actor();
    sd.gate = gate;
    auto sup = spawn_pipeline_supervisor(sys, def, sd);
    if (gate)
      gate->add_listener(sup);
    if (auto err = intake->start(sup)) {
      spdlog::critical("cannot start: {}", describe(err));
      return 2;
    }
    supervisors.push_back(sup);
    supervisors_names.push_back(name);
    intakes.push_back(std::move(intake));
  }
  // Membership: announce ourselves, watch the others.
  heartbeat_bus hb_bus{sys, *nats, subjects{cfg.nats.prefix}};
  auto membership_log = sys.spawn([](caf::event_based_actor*) -> caf::behavior {
    return {
        [](member_atom, const member& m) {
          spdlog::info("cluster: node {} ({} pid {}) is {}", m.last.node_id,
                       m.last.host, m.last.pid, m.state);
        },
        [](conflict_atom, const heartbeat& hb) {
          spdlog::error("cluster: another process ({} pid {}) announces our "
                        "node id",
                        hb.host, hb.pid);
        },
    };
  });
  cluster_deps cd;
  cd.bus = hb_bus.publisher();
  cd.listener = membership_log;
  cd.self.node_id = node_id;
  cd.self.host = host_name();
  cd.self.pid = getpid();
  cd.self.version = troupe::version();
  cd.self.capacity = cfg.node.max_in_flight;
  cd.self.started_at_ms = wall_ms();
  for (auto& n : names)
    cd.self.pipelines.push_back(n);
  cd.interval = cfg.cluster.heartbeat_interval;
  cd.failure_timeout = cfg.cluster.failure_timeout;
  cd.now_ms = wall_ms;
  // Shared, not borrowed: the member's goodbye heartbeat (leave_atom) may
  // read them after intakes.clear() at shutdown.
  std::vector<std::shared_ptr<const intake_counters>> loads;
  for (auto& in : intakes)
    loads.push_back(in->shared_counters());
  // Degraded: a dependency is unreachable. Set by the main loop below.
  auto degraded = std::make_shared<std::atomic<bool>>(false);
  cd.health = [degraded] {
    return degraded->load() ? std::string{"degraded"} : std::string{"healthy"};
  };
  cd.load = [loads] {
    std::int64_t n = 0;
    for (auto& l : loads)
      n += l->in_flight;
    return n;
  };
  auto member = spawn_cluster_member(sys, cd);
  if (auto err = hb_bus.start(member)) {
    spdlog::critical("cannot start: {}", describe(err));
    return 2;
  }
  unrouted_sweeper sweeper{sys, *nats, cfg.nats, jdeps, limits};
  sweeper.start();
  // Bounded queues: beyond them a request is answered `unavailable` at once.
  auto api_pool = std::make_shared<blocking_pool>(4, 4096);
  submit_api api{*nats, cfg.nats, names, limits, api_pool};
  api.set_tenants(cfg.tenants);
  if (jmetrics)
    api.on_accepted(
        [jmetrics](const std::string& p) { jmetrics->on_submitted(p); });
  if (auto err = api.start()) {
    spdlog::critical("cannot start: {}", describe(err));
    return 2;
  }

  // Admin verbs of this node (the shell builds on them).
  auto admin_pool = std::make_shared<blocking_pool>(2, 256);
  admin_bridge admin{*nats, cfg.nats.prefix, node_id, admin_pool,
                     cfg.nats.inbox_prefix};
  std::atomic<bool> drain_requested{false};
  std::atomic<bool> resume_requested{false};
  admin.add_read("nodes", [&sys, member](const nlohmann::json&) {
    caf::scoped_actor self{sys};
    nlohmann::json out = nlohmann::json::array();
    self->request(member, std::chrono::seconds{2}, get_atom::value)
        .receive(
            [&](std::vector<troupe::member>& view) {
              for (auto& m : view)
                out.push_back({{"node_id", m.last.node_id},
                               {"host", m.last.host},
                               {"pid", m.last.pid},
                               {"version", m.last.version},
                               {"state", m.state},
                               {"health", m.last.health},
                               {"pipelines", m.last.pipelines},
                               {"in_flight", m.last.in_flight},
                               {"capacity", m.last.capacity},
                               {"started_at_ms", m.last.started_at_ms},
                               {"silent_ms", m.silent_ms}});
            },
            [&](caf::error& err) { throw std::runtime_error(describe(err)); });
    return out;
  });
  // Counters of every pipeline supervisor (asked from a non-scheduler
  // thread: admin workers and the HTTP server).
  auto collect_stats = [&sys, &supervisors] {
    caf::scoped_actor self{sys};
    std::vector<pipeline_stats> out;
    for (auto& sup : supervisors)
      self->request(sup, std::chrono::seconds{2}, stats_atom::value)
          .receive([&](pipeline_stats& s) { out.push_back(std::move(s)); },
                   [&](caf::error& err) {
                     throw std::runtime_error(describe(err));
                   });
    return out;
  };
  std::function<bool(const std::string&)> is_paused =
      [&intakes, &supervisors_names](const std::string& p) {
        for (std::size_t i = 0; i < supervisors_names.size(); ++i)
          if (supervisors_names[i] == p)
            return intakes[i]->paused();
        return false;
      };
  admin.add_read("stats", [collect_stats, &is_paused](const nlohmann::json&) {
    nlohmann::json out = nlohmann::json::array();
    for (auto& s : collect_stats())
      out.push_back({{"pipeline", s.pipeline},
                     {"paused", is_paused ? is_paused(s.pipeline) : false},
                     {"running", s.running},
                     {"queued", s.queued},
                     {"max_in_flight", s.max_in_flight},
                     {"succeeded", s.succeeded},
                     {"dead_lettered", s.dead_lettered},
                     {"cancelled", s.cancelled},
                     {"skipped", s.skipped},
                     {"abandoned", s.abandoned},
                     {"restarts", s.restarts}});
    return out;
  });
  admin.add_control("drain", {}, [&drain_requested](const nlohmann::json&) {
    drain_requested = true;
    return nlohmann::json{{"state", "draining"}};
  });
  admin.add_control("resume", {}, [&resume_requested](const nlohmann::json&) {
    resume_requested = true;
    return nlohmann::json{{"state", "up"}};
  });
  // Store-backed, tree and cluster-wide steering verbs.
  auto admin_db = std::make_shared<admin_store>(cfg.postgres.url);
  auto controls = std::make_shared<pipeline_controls>(
      std::make_shared<admin_store>(cfg.postgres.url),
      std::chrono::milliseconds{2000});
  controls->refresh();
  controls->start();
  auto actx = std::make_shared<node_admin_context>();
  actx->sys = &sys;
  actx->node_id = node_id;
  actx->prefix = cfg.nats.prefix;
  actx->nats = *nats;
  for (std::size_t i = 0; i < supervisors.size(); ++i)
    actx->supervisors[supervisors_names[i]] = supervisors[i];
  actx->pipelines = defs;
  actx->store = admin_db;
  actx->controls = controls;
  auto pruner = std::make_shared<retention_pruner>(cfg);
  pruner->start();
  actx->pruner = pruner;
  actx->alive_nodes = [&sys, member] {
    caf::scoped_actor self{sys};
    std::size_t n = 0;
    self->request(member, std::chrono::seconds{2}, get_atom::value)
        .receive(
            [&](std::vector<troupe::member>& view) {
              for (auto& m : view)
                n += m.state != "down";
            },
            [](caf::error&) {});
    return n;
  };
  actx->intake_paused = is_paused;
  // An intake fetches when the node is healthy, not draining, and its
  // pipeline is not paused cluster-wide.
  std::atomic<bool> fetching{true};
  std::mutex fetching_mtx; // the main loop and admin workers both apply it
  auto apply_fetching = [&] {
    std::lock_guard<std::mutex> guard{fetching_mtx};
    auto paused = controls->paused();
    for (std::size_t i = 0; i < intakes.size(); ++i) {
      bool on = fetching && !paused.count(supervisors_names[i]);
      if (on == !intakes[i]->paused())
        continue;
      on ? intakes[i]->resume() : intakes[i]->pause();
      spdlog::info("node {}: pipeline {} {}", node_id, supervisors_names[i],
                   on ? "fetching" : "paused");
    }
  };
  actx->apply_controls = apply_fetching;
  admin.add_read("tenants", [&cfg, gate, &api](const nlohmann::json&) {
    nlohmann::json out{{"allow_unknown", cfg.tenants.allow_unknown},
                       {"tenants", nlohmann::json::object()}};
    auto in_flight = gate ? gate->in_flight() : std::map<std::string, int>{};
    auto limited = api.rate_limited();
    auto entry = [&](const std::string& name, const tenant_limits& lim) {
      out["tenants"][name] = {
          {"max_in_flight", lim.max_in_flight},
          {"rate", lim.rate},
          {"in_flight", in_flight.count(name) ? in_flight.at(name) : 0},
          {"rate_limited", limited.count(name) ? limited.at(name) : 0}};
    };
    entry("default", cfg.tenants.defaults);
    for (auto& [name, lim] : cfg.tenants.named)
      entry(name, lim);
    return out;
  });
  add_node_admin_verbs(admin, actx);
  if (auto err = admin.start()) {
    spdlog::critical("cannot start: {}", describe(err));
    return 2;
  }

  // HTTP: health, readiness, metrics.
  node_http_sources hs{
      cfg,    sys,         **nats, *schema,  supervisors_names, intakes,
      member, store_stats, pruner, jmetrics, collect_stats,     exec_counts};
  auto hh = make_node_http_handlers(hs);
  http_endpoint http;
  auto http_port = http.start(cfg.node.http, hh);
  if (!http_port) {
    spdlog::critical("cannot start: {}", describe(http_port.error()));
    return 2;
  }
  spdlog::info("node {}: http on {}:{} (/healthz /readyz /metrics)", node_id,
               cfg.node.http.substr(0, cfg.node.http.rfind(':')), *http_port);
  // Only now is everything up (intake, API, admin subjects, HTTP): scripts
  // and tests wait for this line.
  spdlog::info("node {}: ready; NATS {}, PostgreSQL {}", node_id,
               redact_url(cfg.nats.url), redact_url(cfg.postgres.url));

  // 4. Run until asked to stop (or until the demo is done).
  int rc = 0;
  std::thread demo;
  if (opts.demo_jobs > 0) {
    demo = std::thread{[&] {
      demo_options d;
      d.nats_url = cfg.nats.url;
      d.prefix = cfg.nats.prefix;
      d.pipeline =
          cfg.pipelines.count("demo") ? "demo" : cfg.pipelines.begin()->first;
      d.jobs = opts.demo_jobs;
      rc = run_demo(d);
      if (opts.exit_after_demo)
        request_shutdown();
    }};
  }
  auto in_flight_total = [&] {
    std::int64_t n = 0;
    for (auto& in : intakes)
      n += in->counters().in_flight;
    return n;
  };
  auto set_fetching = [&](bool on) {
    fetching = on;
    apply_fetching();
  };
  apply_fetching();
  bool draining = false;
  auto drain_deadline = std::chrono::steady_clock::now();
  for (;;) {
    if (wait_for_shutdown(std::chrono::milliseconds{200}))
      break;
    apply_fetching();
    // Dependencies: while one is unreachable, fetch nothing new (claims
    // would only fail) and say so in the heartbeat; in-flight jobs keep
    // their results until the store takes them.
    bool healthy = store_stats->healthy && (*nats)->health().connected;
    if (healthy == degraded->load()) {
      degraded->store(!healthy);
      if (!draining)
        set_fetching(healthy);
      if (healthy)
        spdlog::info("node {}: dependencies are back, fetching again", node_id);
      else
        spdlog::warn("node {}: degraded ({} unreachable), not fetching",
                     node_id, store_stats->healthy ? "NATS" : "PostgreSQL");
    }
    if (drain_requested.exchange(false) && !draining) {
      draining = true;
      drain_deadline = std::chrono::steady_clock::now() + cfg.node.drain_grace;
      set_fetching(false);
      caf::anon_send(member, state_atom::value, std::string{"draining"});
      spdlog::info("node {}: draining on admin request ({} job(s) in flight)",
                   node_id, in_flight_total());
    }
    if (resume_requested.exchange(false) && draining) {
      draining = false;
      if (!degraded->load())
        set_fetching(true);
      caf::anon_send(member, state_atom::value, std::string{"up"});
      spdlog::info("node {}: drain cancelled, fetching again", node_id);
    }
    if (draining && (in_flight_total() == 0 ||
                     std::chrono::steady_clock::now() >= drain_deadline))
      break;
  }

  // 5. Drain: stop intake, let in-flight jobs finish within the grace
  // period, give the rest back to the broker, then stop.
  spdlog::info("node {}: draining", node_id);
  caf::anon_send(member, state_atom::value, std::string{"draining"});
  api.stop();
  sweeper.stop();
  for (auto& in : intakes)
    in->pause();
  auto grace = draining
                   ? drain_deadline
                   : std::chrono::steady_clock::now() + cfg.node.drain_grace;
  for (;;) {
    std::int64_t in_flight = 0;
    for (auto& in : intakes)
      in_flight += in->counters().in_flight;
    if (in_flight == 0 || std::chrono::steady_clock::now() >= grace) {
      if (in_flight > 0)
        spdlog::info("node {}: {} job(s) still running, handing them back",
                     node_id, in_flight);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{50});
  }
  for (auto& in : intakes)
    in->stop();
  if (demo.joinable())
    demo.join();
  // Leave the cluster before going away, so peers do not wait for the
  // failure timeout.
  caf::anon_send(member, leave_atom::value);
  http.stop();
  admin.stop();
  // Admin requests already queued run now, while the intakes and
  // supervisors they may touch still exist.
  admin_pool->stop();
  controls->stop();
  pruner->stop();
  hb_bus.stop();
  for (auto& sup : supervisors)
    caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(membership_log, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(events, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(store, caf::exit_reason::user_shutdown);
  intakes.clear();
  (*nats)->flush();
  pool->stop();
  api_pool->stop();
  spdlog::info("node {}: stopped", node_id);
  return rc;
}

} // namespace troupe