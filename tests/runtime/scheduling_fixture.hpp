#pragma once

// The fixture of the tests of time in the store (scheduling_test.cpp,
// cron_schedules_test.cpp): one nats-server and PostgreSQL for the suite,
// nodes started per test with node.toml or cron.toml (the same cluster with
// three every-second schedules).

#include <cstdlib>
#include <memory>
#include <string>

#define PQXX_HAVE_OPTIONAL
#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "child_process.hpp"
#include "runtime/nats/nats_client.hpp"
#include "tests/support/db_probe.hpp"
#include "tests/support/test_servers.hpp"

namespace troupe::test {

using namespace std::chrono_literals;

class scheduling_test : public ::testing::Test {
public:
  static void SetUpTestSuite() {
    servers_ = new test_servers();
    write_file(servers_->dir() + "/node.toml", config_text());
    // fast-ack.toml: the same with ack_wait 3 s; cron.toml: that and three
    // every-second schedules, one per catch_up. A job delivered to a node
    // killed before it claimed the job has no lease yet: its message comes back
    // after ack_wait, short here.
    std::string fast = config_text();
    const std::string slow = "ack_wait = \"60s\"";
    fast.replace(fast.find(slow), slow.size(), "ack_wait = \"3s\"");
    write_file(servers_->dir() + "/fast-ack.toml", fast);
    auto cron = fast;
    for (auto mode : {"none", "last", "all"})
      cron += std::string{"\n[schedules.tick-"} + mode +
              "]\ncron = \"* * * * * *\"\npipeline = \"quick\"\n"
              "payload = { tick = true }\ncatch_up = \"" +
              mode + "\"\n";
    write_file(servers_->dir() + "/cron.toml", cron);
  }

  static void TearDownTestSuite() {
    delete servers_;
    servers_ = nullptr;
  }

  // ack_wait is long on purpose: a test that passes cannot have been saved
  // by a redelivery.
  static std::string config_text() {
    return R"([node]
http = "127.0.0.1:0"
drain_grace = "1s"
store_retry_after = "1s"

[cluster]
heartbeat_interval = "250ms"
failure_timeout = "2s"

[nats]
url = ")" + servers_->nats_url() +
           R"("
ack_wait = "60s"
duplicate_window = "1s"

[postgres]
url = ")" + servers_->pg_url() +
           R"("

[pipelines.once]
retention = "2s"
stages = [ { name = "only", kind = "noop" } ]

[pipelines.quick]
stages = [ { name = "only", kind = "noop" } ]

[pipelines.backoff]
stages = [
  { name = "flaky", kind = "fault", fail_first = 1,
    retry = { max_attempts = 3, initial = "6s", max = "6s", jitter = "none" } },
]

[pipelines.backoff-long]
stages = [
  { name = "flaky", kind = "fault", fail_first = 1,
    retry = { max_attempts = 3, initial = "60s", max = "60s", jitter = "none" } },
]

[pipelines.doomed]
stages = [
  { name = "never", kind = "fault", fail_first = 1000,
    retry = { max_attempts = 1 } },
]

[pipelines.slow]
max_in_flight = 500
stages = [
  { name = "s1", kind = "sleep", duration = "8s" },
  { name = "s2", kind = "sleep", duration = "500ms" },
]

[pipelines.long]
stages = [ { name = "l1", kind = "sleep", duration = "15s" } ]

[pipelines.solo]
max_in_flight = 1
stages = [ { name = "one", kind = "sleep", duration = "5s" } ]

[pipelines.ranked]
priorities = true
max_in_flight = 50
stages = [ { name = "work", kind = "sleep", duration = "10ms" } ]
)";
  }

  std::unique_ptr<child_process>
  start_node(const std::string& id, const std::string& config = "node.toml",
             std::vector<std::string> env = {},
             const std::string& binary = TROUPE_BINARY) {
    return start_troupe_node(servers_->dir() + "/" + config,
                             servers_->dir() + "/node-" + id + ".log", id,
                             std::move(env), binary);
  }

  std::shared_ptr<nats_client> client() {
    return connect_client(servers_->nats_url());
  }

  static std::int64_t count(const std::string& sql) {
    return count_rows(servers_->pg_url(), sql);
  }

  /// Whether the job's successful attempt began at least `ms` after its
  /// failed one ended (both clocks are this machine's).
  static bool waited(const std::string& id, int ms) {
    return count("select count(*) from job_attempts a, job_attempts b "
                 "where a.job_id = '" +
                 id +
                 "' and b.job_id = a.job_id "
                 "and not a.ok and b.ok and b.started_at >= a.started_at + "
                 "a.duration_ms * interval '1 millisecond' + " +
                 std::to_string(ms) + " * interval '1 millisecond'") == 1;
  }

  static void exec(const std::string& sql) {
    pqxx::connection c{servers_->pg_url()};
    pqxx::work w{c};
    w.exec(sql);
    w.commit();
  }

  /// Messages of a pipeline's consumer delivered and not yet acked.
  std::int64_t unacked(nats_client& nats, const std::string& pipeline) {
    return consumer_number(nats, pipeline, [](const jsConsumerInfo& ci) {
      return static_cast<std::int64_t>(ci.NumAckPending);
    });
  }

  /// Deliveries made by a pipeline's consumer, redeliveries included.
  std::int64_t deliveries(nats_client& nats, const std::string& pipeline) {
    return consumer_number(nats, pipeline, [](const jsConsumerInfo& ci) {
      return static_cast<std::int64_t>(ci.Delivered.Consumer);
    });
  }

  /// One figure of a pipeline's consumer (-1 if it cannot be read).
  template <class F>
  std::int64_t consumer_number(nats_client& nats, const std::string& pipeline,
                               F figure) {
    jsConsumerInfo* ci = nullptr;
    auto s =
        js_GetConsumerInfo(&ci, nats.js(), "TROUPE_JOBS",
                           ("troupe_" + pipeline).c_str(), nullptr, nullptr);
    if (s != NATS_OK)
      return -1;
    auto n = figure(*ci);
    jsConsumerInfo_Destroy(ci);
    return n;
  }

  /// TROUPE_FULL=1 (scripts/scheduling-full.sh): the sizes issue 16 names
  /// (20,000 jobs, a 60 s backoff, 30 s of cron) instead of CI's.
  static bool full() { return std::getenv("TROUPE_FULL") != nullptr; }

  static inline test_servers* servers_ = nullptr;
};

} // namespace troupe::test
