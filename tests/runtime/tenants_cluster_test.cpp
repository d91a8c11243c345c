// A tenant's max_in_flight holds across the cluster: three nodes, jobs of
// one tenant through the API and straight onto the stream, and the attempt
// history in PostgreSQL says how many ran at once. Also the node's own
// budget (node.max_in_flight) across its pipelines.
#include <csignal>
#include <memory>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "child_process.hpp"
#include "runtime/client/job_tracker.hpp"
#include "tests/support/db_probe.hpp"
#include "tests/support/eventually.hpp"
#include "tests/support/test_servers.hpp"

using namespace troupe;
using namespace troupe::test;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

std::string tenant_cluster_toml(const test_servers& s) {
  return R"([node]
http = "127.0.0.1:0"
drain_grace = "1s"

[cluster]
heartbeat_interval = "250ms"
failure_timeout = "2s"

[nats]
url = ")" +
         s.nats_url() +
         R"("

[postgres]
url = ")" +
         s.pg_url() +
         R"("

[tenants.acme]
max_in_flight = 3

[pipelines.work]
max_in_flight = 100
stages = [ { name = "nap", kind = "sleep", duration = "600ms" } ]
)";
}

} // namespace

TEST(TenantsCluster, ATenantsLimitHoldsAcrossNodesWhateverWayItsJobsCame) {
  test_servers servers;
  write_file(servers.dir() + "/node.toml", tenant_cluster_toml(servers));
  std::vector<std::unique_ptr<child_process>> nodes;
  for (auto id : {"t-a", "t-b", "t-c"}) {
    nodes.push_back(std::make_unique<child_process>(
        std::vector<std::string>{TROUPE_BINARY, "node", "--config",
                                 servers.dir() + "/node.toml", "--node-id", id},
        servers.dir() + "/node-" + id + ".log"));
    ASSERT_TRUE(nodes.back()->wait_for_output(": ready", 60s))
        << nodes.back()->output();
  }
  auto nats = connect_client(servers.nats_url());
  ASSERT_TRUE(nats);
  std::vector<std::string> api;
  for (int i = 0; i < 15; ++i)
    api.push_back(json{
        {"pipeline", "work"},
        {"tenant", "acme"},
        {"key", "acme-api-" + std::to_string(i)},
        {"payload",
         {{"i", i}}}}.dump());
  auto replies = submit_requests(*nats, subjects{"troupe"}, api, 15, 30s);
  ASSERT_TRUE(replies);
  for (int i = 0; i < 15; ++i)
    ASSERT_TRUE(nats->js_publish(
        "troupe.jobs.work", json{{"tenant", "acme"}, {"payload", i}}.dump(),
        "acme-js-" + std::to_string(i)));
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(nats->js_publish(
        "troupe.jobs.work", json{{"tenant", "other"}, {"payload", i}}.dump(),
        "other-" + std::to_string(i)));
  // The other tenant is not held up behind acme's backlog.
  ASSERT_TRUE(eventually([&] {
    return count_rows(servers.pg_url(),
                      "select count(*) from jobs where job_id like 'other-%' "
                      "and state = 'succeeded'") == 5;
  }));
  EXPECT_LT(count_rows(servers.pg_url(),
                       "select count(*) from jobs where job_id like 'acme-%' "
                       "and state = 'succeeded'"),
            30);
  ASSERT_TRUE(eventually(
      [&] {
        return count_rows(servers.pg_url(),
                          "select count(*) from jobs where job_id like "
                          "'acme-%' and state = 'succeeded'") == 30;
      },
      120s, 100ms));
  auto most = most_attempts_at_once(servers.pg_url(), "acme-%");
  auto on_nodes = count_rows(servers.pg_url(),
                             "select count(distinct node) from job_attempts "
                             "where job_id like 'acme-%'");
  std::cout << "[ info ] acme: at most " << most << " at once, on " << on_nodes
            << " node(s)\n";
  EXPECT_LE(most, 3);
  EXPECT_GE(most, 2) << "the limit should still let acme run in parallel";
  EXPECT_GE(on_nodes, 2) << "the slots should move between nodes";
  for (auto& n : nodes)
    n->signal(SIGTERM);
  for (auto& n : nodes)
    EXPECT_EQ(n->wait(30s), 0) << n->output();
}

// node.max_in_flight is one budget for all of a node's pipelines: two
// pipelines that would each take 10 jobs share 3 slots.
TEST(NodeLimits, TheNodesMaxInFlightHoldsAcrossItsPipelines) {
  test_servers servers;
  write_file(servers.dir() + "/node.toml",
             "[node]\nhttp = \"127.0.0.1:0\"\nmax_in_flight = 3\n"
             "[nats]\nurl = \"" +
                 servers.nats_url() + "\"\n[postgres]\nurl = \"" +
                 servers.pg_url() +
                 "\"\n"
                 "[pipelines.left]\nmax_in_flight = 10\nstages = [ { name = "
                 "\"nap\", kind = \"sleep\", duration = \"300ms\" } ]\n"
                 "[pipelines.right]\nmax_in_flight = 10\nstages = [ { name = "
                 "\"nap\", kind = \"sleep\", duration = \"300ms\" } ]\n");
  child_process node{{TROUPE_BINARY, "node", "--config",
                      servers.dir() + "/node.toml", "--node-id", "budget"},
                     servers.dir() + "/node-budget.log"};
  ASSERT_TRUE(node.wait_for_output(": ready", 60s)) << node.output();
  auto nats = connect_client(servers.nats_url());
  ASSERT_TRUE(nats);
  for (int i = 0; i < 10; ++i)
    for (std::string p : {"left", "right"})
      ASSERT_TRUE(nats->js_publish("troupe.jobs." + p, R"({"payload":{}})",
                                   "budget-" + p + "-" + std::to_string(i)));
  ASSERT_TRUE(eventually(
      [&] {
        return count_rows(servers.pg_url(),
                          "select count(*) from jobs where job_id like "
                          "'budget-%' and state = 'succeeded'") == 20;
      },
      60s, 100ms));
  auto most = most_attempts_at_once(servers.pg_url(), "budget-%");
  std::cout << "[ info ] node budget 3: at most " << most << " at once\n";
  EXPECT_LE(most, 3);
  EXPECT_GE(most, 2) << "the budget should still let jobs run in parallel";
  node.signal(SIGTERM);
  EXPECT_EQ(node.wait(30s), 0) << node.output();
}

// A tenant's rate is one bucket in PostgreSQL for the whole cluster, taken
// from on every way in. A daily quota makes it exact whatever the timing:
// 3 per day across two nodes is 3, not 3 per node.
TEST(TenantsCluster, ADailyQuotaHoldsAcrossNodesAndADirectPublishWaitsItsTurn) {
  test_servers servers;
  auto toml = tenant_cluster_toml(servers) + R"(
[tenants.daily]
rate = "3/d"
[tenants.drip]
rate = "2/d"
)";
  write_file(servers.dir() + "/node.toml", toml);
  std::vector<std::unique_ptr<child_process>> nodes;
  for (auto id : {"q-a", "q-b"})
    nodes.push_back(start_troupe_node(servers.dir() + "/node.toml",
                                      servers.dir() + "/node-" + id + ".log",
                                      id));
  auto nats = connect_client(servers.nats_url());
  ASSERT_TRUE(nats);
  int ok = 0, limited = 0;
  for (int i = 0; i < 10; ++i) {
    auto r = nats->request(
        "troupe.api.v1.submit",
        json{{"pipeline", "work"}, {"tenant", "daily"}, {"payload", i}}.dump(),
        5000);
    ASSERT_TRUE(r);
    auto j = json::parse(*r);
    if (j.value("ok", false)) {
      ++ok;
      continue;
    }
    ++limited;
    EXPECT_EQ(j["error"]["code"], "rate_limited") << *r;
    // The next token of a 3/d quota is hours away, and the reply says so.
    EXPECT_GT(j["error"]["retry_after_ms"].get<std::int64_t>(), 3600000) << *r;
  }
  EXPECT_EQ(ok, 3);
  EXPECT_EQ(limited, 7);
  // A batch is counted whole: no token left, nothing created.
  auto b = nats->request("troupe.api.v1.batch",
                         json{{"tenant", "daily"},
                              {"jobs",
                               {{{"pipeline", "work"}, {"payload", 1}},
                                {{"pipeline", "work"}, {"payload", 2}}}}}
                             .dump(),
                         5000);
  ASSERT_TRUE(b);
  EXPECT_EQ(json::parse(*b)["error"]["code"], "rate_limited") << *b;
  // Straight onto the stream, nothing can be refused: the jobs over the
  // quota wait in the store for their turn, hours from now.
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(nats->js_publish(
        "troupe.jobs.work", json{{"tenant", "drip"}, {"payload", i}}.dump(),
        "drip-" + std::to_string(i)));
  ASSERT_TRUE(eventually([&] {
    return count_rows(servers.pg_url(),
                      "select count(*) from jobs where tenant = 'drip' and "
                      "state = 'succeeded'") == 2 &&
           count_rows(servers.pg_url(),
                      "select count(*) from jobs where tenant = 'drip' and "
                      "state = 'scheduled' and run_at > now() + interval "
                      "'10 hours'") == 3;
  }));
  EXPECT_EQ(count_rows(servers.pg_url(),
                       "select count(*) from jobs where tenant = 'daily'"),
            3);
  for (auto& n : nodes)
    EXPECT_TRUE(n->running());
}
