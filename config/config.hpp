#pragma once

// Typed configuration of a troupe node. Parsing and validation live in
// config/config_loader.hpp; this header is plain data so that it stays cheap
// to include everywhere.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace troupe {

/// All durations in the configuration have millisecond resolution.
using duration_ms = std::chrono::milliseconds;

/// How the computed backoff delay is randomised.
enum class jitter_kind : std::uint8_t {
  none,  ///< use the computed delay d as is
  full,  ///< uniform in [0, d]
  equal, ///< uniform in [d/2, d]
};

/// Per-stage supervision policy: when and how often a failed attempt is
/// retried. Delay before attempt n+1 = min(max, initial * multiplier^(n-1)),
/// then jitter.
struct retry_policy {
  /// Total attempts including the first one; 1 means "never retry".
  int max_attempts = 3;
  duration_ms initial{3000};
  double multiplier = 2.0;
  duration_ms max{300000};
  jitter_kind jitter = jitter_kind::full;
  /// Error codes that are never retried (e.g. "bad_input").
  std::vector<std::string> non_retryable;
};

/// One stage of a pipeline.
struct stage_config {
  std::string name;
  /// Stage kind: built-in `noop`, `sleep`, `fault`, `exec`, or a registered
  /// C++ kind.
  std::string kind;
  /// Per-attempt timeout; zero means no timeout.
  duration_ms timeout{0};
  /// An attempt that reports no progress or heartbeat for this long fails
  /// with `heartbeat_timeout` (retryable); zero means no such limit. The
  /// clock starts with the attempt (docs/stages.md).
  duration_ms heartbeat_timeout{0};
  retry_policy retry;
  /// Kind-specific parameters (every key of the stage table that is not one
  /// of the generic keys above), converted from TOML to JSON.
  nlohmann::json params = nlohmann::json::object();
  /// The stage may spawn child jobs (its output's `spawn` array); the job
  /// then waits in the store until every child is terminal and the stage's
  /// output becomes their results (docs/workflows.md). Off, an output's
  /// `spawn` key is plain data.
  bool spawn = false;
  /// What a child that did not succeed does to the parent: "fail"
  /// dead-letters the parent (once every child is terminal), "continue"
  /// gives the stage the results with the failures listed.
  std::string on_child_failure = "fail";
  /// Most children one attempt may spawn.
  std::int32_t max_children = 10000;
  /// The stages this one needs (their names; config/stage_graph.hpp). Unset:
  /// the stage listed before it (none for the first); empty: none.
  std::optional<std::vector<std::string>> after;
  /// Line of the stage's definition in the config file (0 if unknown).
  int line = 0;
};

/// A named pipeline: ordered stages plus admission limits.
struct pipeline_config {
  std::string name;
  /// Jobs of this pipeline running at once on one node.
  int max_in_flight = 100;
  std::vector<stage_config> stages;
  /// How long finished jobs of this pipeline are kept; unset: the
  /// [retention] default.
  std::optional<duration_ms> retention;
  /// Overrides node.speculate for this pipeline (0 turns it off, e.g. for
  /// stages that must never run twice after a crash); unset: the node's.
  std::optional<duration_ms> speculate;
  /// A high-priority band: submissions with priority > 0 (and messages on
  /// `<prefix>.jobs.<name>.high`) have a consumer of their own that the
  /// intake drains first (docs/wire-format.md, "Priorities").
  bool priorities = false;
};

struct node_config {
  /// Unique id of the node in the cluster; defaults to the host name.
  std::string id;
  /// Address of the HTTP endpoint (/metrics, /healthz, /readyz, /api/v1).
  std::string http = "127.0.0.1:9464";
  /// Bearer tokens of the HTTP API, one `<role> <name> <token>` per line
  /// (runtime/node/http_api.hpp). Empty: the API is open on a loopback
  /// address and off on any other.
  std::string api_tokens_file;
  /// Jobs running at once on this node, all pipelines together.
  int max_in_flight = 1000;
  /// trace, debug, info, warn, error, critical, off
  std::string log_level = "info";
  /// `text` (human readable) or `json` (one object per line).
  std::string log_format = "text";
  /// CAF scheduler threads; 0 = number of cores.
  int scheduler_threads = 0;
  /// CAF scheduling policy: "auto" (scheduler_policy() below), "stealing"
  /// (work stealing; polls briefly after each burst, see scheduler_polls)
  /// or "sharing" (one shared queue; workers sleep when it is empty).
  std::string scheduler = "auto";
  /// With "stealing": how many more times a worker whose queue ran dry
  /// polls it, 50 us apart, before it sleeps until work arrives (after 100
  /// polls without a pause). CAF's own default is 500; 0 here, because a
  /// node woken a few times a second (heartbeats, API calls, a dashboard)
  /// otherwise spends most of its CPU in those 50 us sleeps
  /// (docs/benchmarks.md, "Idle and polling").
  int scheduler_polls = 0;
  /// Threads for blocking stage work (exec); bounds concurrent processes.
  int blocking_threads = 16;
  /// Variables of the node's environment that every exec stage program gets
  /// besides the defaults (PATH, HOME, LANG, ...): names, or prefixes ending
  /// in '*'. Never TROUPE_* (see env_pattern_problem).
  std::vector<std::string> exec_inherit_env;
  /// How long a draining node lets in-flight jobs finish before handing the
  /// rest back to the broker.
  duration_ms drain_grace{30000};
  /// Job and stage metrics on /metrics (derived from events); false leaves
  /// only the node's own gauges, for measuring their cost.
  bool metrics = true;
  /// How long start-up keeps retrying NATS and PostgreSQL before giving up
  /// with one line saying what to fix.
  duration_ms startup_timeout{20000};
  /// A freshly published job runs at once and is written to PostgreSQL in
  /// one commit if it finishes within this window; otherwise it is written
  /// when the window ends (or a stage fails) and checkpoints each later
  /// stage as usual. A crash inside the window re-runs the stages completed in
  /// it. 0 claims every job before its first stage.
  duration_ms speculate{20};
  /// A retry wait at least this long is kept in PostgreSQL, not on a node:
  /// the message is acked, the job costs the node nothing and survives the
  /// loss of every node, and a scheduler publishes it when it is due
  /// (docs/scheduling.md). Shorter waits stay in memory. 0: always memory.
  duration_ms store_retry_after{10000};
  /// A job's result at most this long (bytes of JSON) rides in its
  /// job.succeeded event; a longer one is left out (`result_omitted`) and
  /// is read with the status API (docs/wire-format.md). 0: never.
  std::int64_t event_result_max_bytes = 64 * 1024;
  /// Progress and heartbeats a stage reports are published and stored at
  /// most once per this interval per job (the latest wins; a final 100 %
  /// always goes out).
  duration_ms progress_interval{1000};
  /// A directory on local disk where the submit API keeps what it accepted
  /// while PostgreSQL was unreachable, each on disk before the reply, until
  /// it can be logged in PostgreSQL (also after the node is killed and
  /// started again; one file per node id). Empty: in memory only, lost if
  /// the node dies before PostgreSQL is back (docs/reliability.md).
  std::string spool_dir;
  /// Where spans of traced jobs go as OTLP/HTTP JSON (`http://host:port`;
  /// /v1/traces is added); empty: not exported.
  std::string otlp_endpoint;
};

struct nats_config {
  /// One URL or a comma-separated list of cluster URLs.
  std::string url = "nats://127.0.0.1:4222";
  /// Prefix of every subject troupe uses.
  std::string prefix = "troupe";
  std::string stream = "TROUPE_JOBS";
  /// Redelivery delay of an unacked job message.
  duration_ms ack_wait{30000};
  /// Window in which a repeated Nats-Msg-Id is stored once.
  duration_ms duplicate_window{120000};
  /// Largest accepted job payload in bytes.
  std::int64_t max_payload = 1 << 20;
  /// Deepest accepted JSON nesting of a submission.
  int max_depth = 64;
  /// Longest accepted key, tenant, pipeline name or correlation id (bytes).
  int max_key_length = 256;
  /// Replies (admin, submit API) go only to subjects under this token, the
  /// clients' inbox prefix (`_INBOX` unless clients set a custom one).
  std::string inbox_prefix = "_INBOX";
  /// JetStream stream replicas (3 in production clusters).
  int replicas = 1;
  /// Write every publish to the socket at once instead of leaving it to
  /// nats.c's flusher thread: about 0.5 ms less latency per hop at low
  /// load, about 10 % more node CPU per job at high load
  /// (docs/benchmarks.md).
  bool send_asap = false;
  /// How often a node dead-letters messages published for pipelines that no
  /// node runs (0 disables).
  duration_ms unrouted_sweep{10000};
  /// How often messages the broker stopped tracking are looked for
  /// (runtime/node/stranded_sweeper.hpp); 0 disables.
  duration_ms stranded_sweep{60000};
  /// Authentication (see docs/security.md). The password and token are read
  /// from files (or TROUPE_NATS_PASSWORD / TROUPE_NATS_TOKEN), never from
  /// this file or a command line.
  std::string user;
  std::string password_file;
  std::string token_file;
  /// NATS credentials file (`.creds`: JWT and nkey seed).
  std::string creds;
  /// TLS: CA that signs the servers' certificates; client certificate and
  /// key when servers verify clients.
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
  /// Secrets loaded from the files or the environment (never printed).
  std::string password;
  std::string token;
};

struct postgres_config {
  std::string url = "postgresql://postgres@127.0.0.1:5432/troupe";
  /// Connections used by the store's writer threads.
  int pool_size = 2;
  /// Largest number of writes grouped into one transaction.
  int batch_max = 500;
  /// Longest time a write waits for companions before it is committed.
  duration_ms batch_delay{1};
};

struct cluster_config {
  duration_ms heartbeat_interval{1000};
  duration_ms failure_timeout{5000};
};

/// The whole configuration of one node.
/// Pruning of finished jobs (succeeded, cancelled) and their events. Dead
/// letters are kept until replayed or purged.
struct retention_config {
  /// Age after which a finished job is pruned; 0 keeps everything.
  duration_ms finished{7LL * 24 * 3600 * 1000};
  /// How often a node looks (one node prunes at a time).
  duration_ms interval{60000};
  /// Jobs deleted per transaction (small, so that pruning never holds
  /// locks long).
  int batch = 500;
};

/// Limits of one tenant (0 = unlimited).
struct tenant_limits {
  /// Jobs of the tenant running at once in the whole cluster (others
  /// wait): slots leased from the store (runtime/pg/tenant_slots.hpp).
  int max_in_flight = 0;
  /// New jobs per second across the cluster, every way in (a token bucket
  /// in PostgreSQL: runtime/pg/tenant_rates.hpp). API submissions over it
  /// are refused with a retry delay; direct publishes over it wait in the
  /// store until their turn.
  double rate_per_s = 0;
  /// The bucket's size: one second's worth (at least 1) for "/s", "/m"
  /// and "/h"; the whole quota for a daily one ("1000/d").
  double rate_burst = 0;
  /// As written ("20/s"), for display.
  std::string rate;
};

struct tenants_config {
  /// Unlisted tenants are accepted (with the `default` limits) unless false.
  bool allow_unknown = true;
  /// `[tenants.default]`: limits of tenants not listed.
  tenant_limits defaults;
  std::map<std::string, tenant_limits> named;

  const tenant_limits& of(const std::string& tenant) const {
    auto i = named.find(tenant);
    return i == named.end() ? defaults : i->second;
  }
  bool known(const std::string& tenant) const {
    return allow_unknown || named.count(tenant) > 0;
  }
};

/// `[schedules.<name>]`: a job on a cron schedule (docs/scheduling.md).
struct schedule_config {
  std::string name;
  /// Cron expression (config/cron.hpp), checked when read.
  std::string cron;
  /// IANA time zone the expression is read in.
  std::string timezone = "UTC";
  std::string pipeline;
  /// The jobs' payload, JSON text.
  std::string payload = "null";
  /// "allow" a slot's job while the previous one still runs, or "skip" it.
  std::string overlap = "allow";
  /// Slots missed while no node ran the schedule: "none", "last" (one job
  /// for the newest) or "all" (one per slot, the newest 100 at most).
  std::string catch_up = "last";
};

struct troupe_config {
  node_config node;
  nats_config nats;
  postgres_config postgres;
  cluster_config cluster;
  retention_config retention;
  tenants_config tenants;
  /// Pipelines by name.
  std::map<std::string, pipeline_config> pipelines;
  /// Cron schedules by name.
  std::map<std::string, schedule_config> schedules;
  /// Where the configuration was read from ("" for built-in defaults).
  std::string source;
};

/// Returns the name of a jitter kind as written in the configuration.
const char* to_string(jitter_kind x) noexcept;

/// What is wrong with one entry of an `inherit_env` list (a variable name,
/// or a prefix ending in '*'), or "" if nothing. An entry that could match
/// one of troupe's own variables (TROUPE_*, which hold its secrets) is
/// wrong, so that no configuration can hand them to stage programs.
std::string env_pattern_problem(const std::string& pattern);

/// The CAF scheduling policy a node runs, "sharing" or "stealing", given
/// the cores of its machine. "auto" takes sharing up to 4 scheduler
/// threads: on 2 cores it ran the durable path 8-15 % faster than work
/// stealing, whose idle workers poll for work the servers beside them
/// need, with the same latency and memory per parked job
/// (docs/benchmarks.md, session 25). Above 4 threads, where one shared
/// queue may become the contended lock and nothing was measured, it keeps
/// work stealing.
std::string scheduler_policy(const node_config& node, unsigned cores);

} // namespace troupe
