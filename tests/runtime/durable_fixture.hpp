#pragma once

// The durable path's test fixture: one nats-server and PostgreSQL for the
// suite, `troupe node` processes started per test, and the helpers the
// tests use to submit and to count rows.

#include <csignal>
#include <memory>
#include <set>
#include <sstream>
#include <sys/stat.h>
#include <thread>
#define PQXX_HAVE_OPTIONAL
#include "child_process.hpp"
#include "messages/errc.hpp"
#include "runtime/client/job_tracker.hpp"
#include "runtime/exec/process.hpp"
#include "runtime/nats/nats_client.hpp"
#include "runtime/pg/migrations.hpp"
#include "tests/support/db_probe.hpp"
#include "tests/support/test_servers.hpp"
#include <cstring>
#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

namespace troupe::test {

using namespace std::chrono_literals;

// One exec stage that sleeps, then records its idempotency key: in a table
// with a unique constraint (the side effect, de-duplicated as a real
// service would), and in a plain table (every completed run).
inline const char* side_effect_script = R"SH(#!/bin/sh
input=$(cat)
key=$(printf '%s' "$input" | sed -n 's/.*"idempotency_key":"\([^"]*\)".*/\1/p')
sleep "${SLEEP:-0.2}"
psql "$PGURL" -qAt -v ON_ERROR_STOP=1 \
  -c "insert into side_effects(key) values ('$key') on conflict do nothing" \
  -c "insert into stage_runs(key) values ('$key')" >/dev/null || exit 75
echo '{"recorded":"'"$key"'"}'
)SH";

class durable_path_test : public ::testing::Test {
public:
  static void SetUpTestSuite() {
    servers_ = new test_servers();
    dir_ = servers_->dir();
    pqxx::connection c{servers_->pg_url()};
    pqxx::work w{c};
    w.exec("create table if not exists side_effects(key text primary key)");
    w.exec("create table if not exists stage_runs(key text not null)");
    w.commit();
    write_file(dir_ + "/side_effect.sh", side_effect_script);
    chmod((dir_ + "/side_effect.sh").c_str(), 0755);
    write_file(dir_ + "/node.toml", config_text());
  }

  static void TearDownTestSuite() {
    delete servers_;
    servers_ = nullptr;
  }

  static std::string config_text() {
    auto script = dir_ + "/side_effect.sh";
    return R"([node]
id = "itest-node"
http = "127.0.0.1:0"
max_in_flight = 1000
drain_grace = "3s"

[nats]
url = ")" + servers_->nats_url() +
           R"("
ack_wait = "5s"
max_payload = 65536
unrouted_sweep = "1s"

[postgres]
url = ")" + servers_->pg_url() +
           R"("

[pipelines.three]
max_in_flight = 500
stages = [
  { name = "a", kind = "noop" },
  { name = "b", kind = "noop" },
  { name = "c", kind = "noop" },
]

[pipelines.compact]
stages = [
  { name = "check", kind = "exec", command = ["/bin/sh", "-c", "grep -q '\"payload\":{\"path\":\"x\"}' && echo '{}'"] },
]

[pipelines.steady]
max_in_flight = 100
stages = [
  { name = "one", kind = "sleep", duration = "250ms" },
  { name = "two", kind = "sleep", duration = "250ms" },
]

# Lasts longer than any drain request takes to arrive, even under ASan.
[pipelines.lasting]
max_in_flight = 100
stages = [ { name = "long", kind = "sleep", duration = "4s" } ]

[pipelines.parked]
max_in_flight = 2000
stages = [
  { name = "flaky", kind = "fault", fail_first = 1,
    retry = { max_attempts = 3, initial = "10m", max = "10m", jitter = "none" } },
]

[pipelines.slow]
max_in_flight = 200
stages = [
  { name = "s1", kind = "exec", command = [")" +
           script + R"("], env = { PGURL = ")" + servers_->pg_url() +
           R"(" }, timeout = "20s" },
  { name = "s2", kind = "exec", command = [")" +
           script + R"("], env = { PGURL = ")" + servers_->pg_url() +
           R"(" }, timeout = "20s" },
]
)";
  }

  std::unique_ptr<child_process> start_node(const std::string& tag) {
    return start_troupe_node(dir_ + "/node.toml",
                             dir_ + "/node-" + tag + ".log");
  }

  std::shared_ptr<nats_client> client() {
    return connect_client(servers_->nats_url());
  }

  static std::int64_t count(const std::string& sql) {
    return count_rows(servers_->pg_url(), sql);
  }

  static std::string body(const std::string& pipeline, const std::string& key,
                          nlohmann::json payload = {{"n", 1}}) {
    nlohmann::json j{{"pipeline", pipeline}, {"payload", payload}};
    if (!key.empty())
      j["key"] = key;
    return j.dump();
  }

  static inline test_servers* servers_ = nullptr;
  static inline std::string dir_{};
};

} // namespace troupe::test
