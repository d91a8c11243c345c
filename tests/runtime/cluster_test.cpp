// Three nodes on a three-server NATS cluster (JetStream replicas 3) share a
// backlog; one node is killed mid-run; every job still ends exactly once.
#include <csignal>
#include <memory>
#include <thread>

#define PQXX_HAVE_OPTIONAL
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "child_process.hpp"
#include "messages/errc.hpp"
#include "runtime/cli/local_servers.hpp"
#include "runtime/client/job_tracker.hpp"
#include "runtime/exec/process.hpp"
#include "runtime/nats/nats_client.hpp"
#include "tests/support/eventually.hpp"
#include "tests/support/test_servers.hpp"

using namespace troupe;
using namespace troupe::test;
using namespace std::chrono_literals;

namespace {

std::int64_t count(const std::string& url, const std::string& sql) {
  pqxx::connection c{url};
  pqxx::nontransaction n{c};
  return n.exec1(sql)[0].as<std::int64_t>();
}

} // namespace

TEST(Cluster, ThreeNodesShareWorkAndSurviveAKilledNode) {
  char tmpl[] = "/tmp/troupe-cluster-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  int ports[3], cports[3];
  for (int i = 0; i < 3; ++i) {
    ports[i] = free_port();
    cports[i] = free_port();
  }
  std::string routes, urls;
  for (int i = 0; i < 3; ++i) {
    routes += (i ? "," : "") + std::string{"nats://127.0.0.1:"} +
              std::to_string(cports[i]);
    urls += (i ? "," : "") + std::string{"nats://127.0.0.1:"} +
            std::to_string(ports[i]);
  }
  local_nats nats[3];
  for (int i = 0; i < 3; ++i) {
    auto err = nats[i].start_clustered(
        dir, ports[i], "s" + std::to_string(i + 1), cports[i], routes);
    ASSERT_FALSE(err) << describe(err);
  }
  local_postgres pg;
  auto pg_err = pg.start(dir, free_port());
  ASSERT_FALSE(pg_err) << describe(pg_err);
  write_file(dir + "/node.toml", R"([node]
max_in_flight = 1000
http = "127.0.0.1:0"
[nats]
url = ")" + urls + R"("
replicas = 3
ack_wait = "2s"
[postgres]
url = ")" + pg.url() + R"("
[cluster]
heartbeat_interval = "250ms"
failure_timeout = "1500ms"
[pipelines.work]
max_in_flight = 100
stages = [
  { name = "one", kind = "sleep", duration = "60ms" },
  { name = "two", kind = "sleep", duration = "60ms" },
]
)");
  std::unique_ptr<child_process> nodes[3];
  for (int i = 0; i < 3; ++i) {
    auto id = "n" + std::to_string(i + 1);
    nodes[i] = std::make_unique<child_process>(
        std::vector<std::string>{TROUPE_BINARY, "node", "--config",
                                 dir + "/node.toml", "--node-id", id},
        dir + "/" + id + ".log");
  }
  for (auto& n : nodes)
    ASSERT_TRUE(n->wait_for_output("ready", 120s)) << n->output();

  nats_connect_options co;
  co.urls = urls;
  auto client = nats_client::connect(co);
  ASSERT_TRUE(client) << describe(client.error());
  subjects subj{"troupe"};
  job_tracker tracker{*client, subj, "work"};
  ASSERT_FALSE(tracker.start());
  std::vector<std::string> bodies;
  for (int i = 0; i < 3000; ++i) {
    auto id = "c-" + std::to_string(i);
    tracker.submitted(id);
    bodies.push_back(nlohmann::json{
        {"pipeline", "work"},
        {"key", id},
        {"payload", i}}.dump());
  }
  auto replies = submit_requests(**client, subj, bodies, 256, 120s);
  ASSERT_TRUE(replies) << describe(replies.error());
  for (auto& r : *replies)
    ASSERT_TRUE(r.ok) << r.error_code << ": " << r.error_message;

  // Kill n2 mid-run, once every node has done some work.
  auto url = pg.url();
  test::eventually(
      [&] {
        return count(url, "select count(*) from jobs where state = "
                          "'succeeded'") >= 600;
      },
      120s, 20ms);
  auto killed_at = std::chrono::system_clock::now();
  nodes[1]->signal(SIGKILL);
  ASSERT_EQ(nodes[1]->wait(10s), 128 + SIGKILL);
  EXPECT_LT(count(url, "select count(*) from jobs where state = 'succeeded'"),
            3000)
      << "the kill came too late to test anything";
  // The survivors' membership view marks n2 down (asked the way the shell
  // asks: an admin request over NATS).
  auto down_after = std::chrono::steady_clock::now();
  bool seen_down = false;
  std::string last_view;
  while (!seen_down && std::chrono::steady_clock::now() - down_after < 15s) {
    auto r = (*client)->request("troupe.admin.n1.read.nodes", "", 2000);
    if (r) {
      last_view = *r;
      auto view = nlohmann::json::parse(*r); // outlives the loop
      for (auto& m : view["result"])
        seen_down = seen_down || (m["node_id"] == "n2" && m["state"] == "down");
    }
    if (!seen_down)
      std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(seen_down) << "n1 never saw n2 down: " << last_view;
  std::cout << "[ info ] n1 saw n2 down "
            << std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now() - down_after)
                   .count()
            << " ms after the kill (failure timeout 1500 ms)\n";
  // One of the three NATS servers restarts while the work goes on.
  nats[0].stop();
  std::this_thread::sleep_for(2s);
  auto restart_err =
      nats[0].start_clustered(dir, ports[0], "s1", cports[0], routes);
  ASSERT_FALSE(restart_err) << describe(restart_err);
  std::cout << "[ info ] NATS server s1 restarted with "
            << count(url, "select count(*) from jobs where job_id like 'c-%' "
                          "and state = 'succeeded'")
            << " of 3000 jobs done\n";

  // The database decides: events are best effort (a node killed between a
  // commit and its publish loses that event), terminal rows are not.
  test::eventually(
      [&] {
        return count(url,
                     "select count(*) from jobs where job_id like 'c-%' and "
                     "state in ('succeeded', 'dead_lettered', 'cancelled')") >=
               3000;
      },
      300s, 100ms);
  // Every job reached exactly one terminal state, and it is success.
  EXPECT_EQ(count(url, "select count(*) from jobs where job_id like 'c-%'"),
            3000);
  EXPECT_EQ(count(url, "select count(*) from jobs where job_id like 'c-%' "
                       "and state = 'succeeded'"),
            3000);
  // No stage whose success was recorded ran again.
  EXPECT_EQ(count(url, "select count(*) from (select job_id, stage_index "
                       "from job_attempts where ok group by job_id, "
                       "stage_index having count(*) > 1) d"),
            0);
  // Each node did a real share of the work it was there for: n2 only of
  // what started before its kill (how much that is depends on the
  // machine's speed; its share of the whole run once failed this test).
  std::int64_t total = count(url, "select count(*) from job_attempts");
  auto killed_s =
      std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                         killed_at.time_since_epoch())
                         .count() /
                     1000.0);
  auto before_kill =
      count(url, "select count(*) from job_attempts where started_at < "
                 "to_timestamp(" +
                     killed_s + ")");
  for (auto id : {"n1", "n2", "n3"}) {
    auto mine = count(url, std::string{"select count(*) from job_attempts "
                                       "where node = '"} +
                               id + "'");
    auto base = std::string{id} == "n2" ? before_kill : total;
    EXPECT_GT(mine, base / 20) << id << " did " << mine << " of " << base;
    std::cout << "[ info ] " << id << " ran " << mine << " of " << total
              << " stage attempts\n";
  }
  // The survivors saw n2 go down.
  for (int i : {0, 2})
    EXPECT_NE(nodes[i]->output().find("node n2"), std::string::npos);
  EXPECT_TRUE(nodes[0]->wait_for_output("is down", 10s)) << nodes[0]->output();
  // How long did n2's unfinished jobs wait before another node resumed them?
  auto killed_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                       killed_at.time_since_epoch())
                       .count();
  auto resumed = count(
      url, "select coalesce(max(first_other), 0) from (select a.job_id, "
           "min((extract(epoch from b.started_at) * 1000)::bigint) as "
           "first_other from job_attempts a join job_attempts b using "
           "(job_id) where a.node = 'n2' and b.node <> 'n2' and "
           "(extract(epoch from b.started_at) * 1000)::bigint >= " +
               std::to_string(killed_ms) +
               " and not exists (select 1 from stage_checkpoints c where "
               "c.job_id = a.job_id and c.stage_index = 1 and c.finished_at < "
               "to_timestamp(" +
               std::to_string(killed_ms) + " / 1000.0)) group by a.job_id) r");
  if (resumed > 0)
    std::cout << "[ info ] the last of n2's jobs resumed "
              << (resumed - killed_ms) << " ms after the kill\n";
  // Drain n3 while it has jobs in flight: it exits 0, n1 finishes the rest.
  std::vector<std::string> more;
  for (int i = 0; i < 1000; ++i)
    more.push_back(nlohmann::json{
        {"pipeline", "work"},
        {"key", "d-" + std::to_string(i)},
        {"payload", i}}.dump());
  ASSERT_TRUE(submit_requests(**client, subj, more, 256, 120s));
  test::eventually(
      [&] {
        return count(url,
                     "select count(*) from job_attempts where node = 'n3' and "
                     "job_id like 'd-%'") >= 50;
      },
      60s, 10ms);
  auto drain = (*client)->request("troupe.admin.n3.control.drain", "", 5000);
  ASSERT_TRUE(drain) << describe(drain.error());
  EXPECT_EQ(nodes[2]->wait(60s), 0) << nodes[2]->output();
  test::eventually(
      [&] {
        return count(url,
                     "select count(*) from jobs where job_id like 'd-%' and "
                     "state = 'succeeded'") >= 1000;
      },
      120s, 100ms);
  EXPECT_EQ(count(url, "select count(*) from jobs where job_id like 'd-%' "
                       "and state = 'succeeded'"),
            1000);
  EXPECT_EQ(count(url, "select count(*) from (select job_id, stage_index "
                       "from job_attempts where ok group by job_id, "
                       "stage_index having count(*) > 1) d"),
            0);
  nodes[0]->signal(SIGTERM);
  EXPECT_EQ(nodes[0]->wait(60s), 0) << nodes[0]->output();
  pg.stop();
  for (auto& n : nats)
    n.stop();
  if (!std::getenv("TROUPE_KEEP_TEST_DIRS"))
    run_command({"rm", "-rf", dir}, 60s);
}
