#pragma once

// The fixture of the workflow tests (workflow_test.cpp: child jobs,
// batch_test.cpp: batches) against real servers: nodes are separate
// processes, jobs are published on JetStream or submitted over NATS as any
// client would, and every verdict is read from PostgreSQL, the system of
// record.

#include <csignal>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#define PQXX_HAVE_OPTIONAL
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "child_process.hpp"
#include "runtime/nats/nats_client.hpp"
#include "tests/support/db_probe.hpp"
#include "tests/support/eventually.hpp"
#include "tests/support/test_servers.hpp"

namespace troupe::test {

using namespace std::chrono_literals;
using json = nlohmann::json;

class workflow_test : public ::testing::Test {
public:
  static void SetUpTestSuite() {
    servers_ = new test_servers();
    write_file(servers_->dir() + "/node.toml", config_text());
  }

  static void TearDownTestSuite() {
    delete servers_;
    servers_ = nullptr;
  }

  // `fanout` spawns payload.n children of `square`; `strict` and `lenient`
  // spawn payload.n children of `maybe`, which fails for good while a file
  // broken-<i> exists in the servers' directory.
  static std::string config_text() {
    auto dir = servers_->dir();
    return R"([node]
http = "127.0.0.1:0"
drain_grace = "1s"
blocking_threads = 4

[cluster]
heartbeat_interval = "250ms"
failure_timeout = "2s"

[nats]
url = ")" + servers_->nats_url() +
           R"("
ack_wait = "5s"

[postgres]
url = ")" + servers_->pg_url() +
           R"("

[[pipelines.fanout.stages]]
name = "split"
kind = "exec"
spawn = true
command = ["jq", "-c",
  "{spawn: [range(.payload.n) | {pipeline: \"square\", payload: {i: .}}]}"]

[[pipelines.fanout.stages]]
name = "sum"
kind = "exec"
command = ["jq", "-c", "{sum: ([.previous.split.children[].result.sq] | add)}"]

[pipelines.square]
max_in_flight = 20
stages = [ { name = "sq", kind = "exec", command = ["jq", "-c",
  "{i: .payload.i, sq: (.payload.i * .payload.i)}"] } ]

[[pipelines.strict.stages]]
name = "split"
kind = "exec"
spawn = true
on_child_failure = "fail"
command = ["jq", "-c",
  "{spawn: [range(.payload.n) | {pipeline: \"maybe\", payload: {i: .}}]}"]

[[pipelines.lenient.stages]]
name = "split"
kind = "exec"
spawn = true
on_child_failure = "continue"
command = ["jq", "-c",
  "{spawn: [range(.payload.n) | {pipeline: \"maybe\", payload: {i: .}}]}"]

# A broken child exits 1, which is permanent: dead-lettered at once. A
# transient failure of the machine under load (a signal, a failed spawn)
# is retried, so that only the broken child fails.
[[pipelines.maybe.stages]]
name = "try"
kind = "exec"
retry = { max_attempts = 5, initial = "100ms", max = "1s" }
command = ["sh", "-c", '''i=$(jq -r .payload.i)
if [ -e )" +
           dir + R"(/broken-$i ]; then echo broken >&2; exit 1; fi
printf '{"i":%s}' "$i"''']

[[pipelines.waits.stages]]
name = "split"
kind = "exec"
spawn = true
command = ["jq", "-c",
  "{spawn: [range(.payload.n) | {pipeline: \"held\", payload: {}}]}"]

[[pipelines.stray.stages]]
name = "split"
kind = "exec"
spawn = true
command = ["echo",
  "{\"spawn\": [{\"pipeline\": \"square\"}, {\"pipeline\": \"nowhere\"}]}"]

[pipelines.held]
stages = [ { name = "nap", kind = "sleep", duration = "30s" } ]

[[pipelines.keeps.stages]]
name = "split"
kind = "exec"
spawn = true
command = ["echo", "{\"spawn\": [{\"pipeline\": \"brief\"}, {\"pipeline\": \"brief\"}, {\"pipeline\": \"held\"}]}"]

[pipelines.brief]
retention = "1s"
stages = [ { name = "only", kind = "noop" } ]

[pipelines.item]
max_in_flight = 100
stages = [ { name = "work", kind = "sleep", duration = "10ms" } ]

[pipelines.tally]
stages = [ { name = "note", kind = "noop" } ]
)";
  }

  std::unique_ptr<child_process> start_node(const std::string& id) {
    return start_troupe_node(servers_->dir() + "/node.toml",
                             servers_->dir() + "/node-" + id + ".log", id);
  }

  std::shared_ptr<nats_client> client() {
    return connect_client(servers_->nats_url());
  }

  static std::int64_t count(const std::string& sql) {
    return count_rows(servers_->pg_url(), sql);
  }

  static std::string text(const std::string& sql) {
    pqxx::connection c{servers_->pg_url()};
    pqxx::nontransaction n{c};
    auto r = n.exec(sql);
    return r.empty() || r[0][0].is_null() ? std::string{} : r[0][0].c_str();
  }

  static bool ended(const std::string& id, const std::string& state,
                    std::chrono::milliseconds timeout = 120s) {
    return eventually(
        [&] {
          return count("select count(*) from jobs where job_id = '" + id +
                       "' and state = '" + state + "'") == 1;
        },
        timeout, 100ms);
  }

  void publish(const std::string& pipeline, const std::string& id, int n) {
    auto nats = client();
    auto r =
        nats->js_publish("troupe.jobs." + pipeline,
                         R"({"payload":{"n":)" + std::to_string(n) + "}}", id);
    ASSERT_TRUE(r) << describe(r.error());
  }

  json admin(const std::string& verb, const json& body) {
    auto r = client()->request("troupe.admin.any.control." + verb, body.dump(),
                               10000);
    EXPECT_TRUE(r) << describe(r.error());
    return r ? json::parse(*r) : json{};
  }

  /// What `troupe shell -c CMDS` prints.
  static std::string shell_output(const std::string& cmds) {
    child_process sh{
        {TROUPE_BINARY, "shell", "--nats", servers_->nats_url(), "-c", cmds},
        servers_->dir() + "/shell.log"};
    EXPECT_EQ(sh.wait(60s), 0) << sh.output();
    return sh.output();
  }

  static inline test_servers* servers_ = nullptr;
};

} // namespace troupe::test
