// Tenants: one tenant cannot starve the others. A real node with
// [tenants] limits, driven through the submission API as publishers would.
#include <csignal>
#include <memory>
#include <sstream>
#include <thread>

#define PQXX_HAVE_OPTIONAL
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "child_process.hpp"
#include "messages/errc.hpp"
#include "runtime/client/job_tracker.hpp"
#include "runtime/nats/nats_client.hpp"
#include "tests/support/test_servers.hpp"

using namespace troupe;
using namespace troupe::test;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

class tenants_test : public ::testing::Test {
public:
  void SetUp() override {
    if (!servers_) {
      servers_ = new test_servers();
      dir_ = servers_->dir();
      write_file(dir_ + "/node.toml", R"([node]
id = "tenant-node"
http = "127.0.0.1:0"
drain_grace = "1s"

[nats]
url = ")" + servers_->nats_url() + R"("

[postgres]
url = ")" + servers_->pg_url() + R"("

[tenants]
allow_unknown = false
[tenants.default]
max_in_flight = 50
[tenants.acme]
max_in_flight = 3
[tenants.other]
[tenants.burst]
rate = "5/s"

[pipelines.slow]
max_in_flight = 100
stages = [ { name = "nap", kind = "sleep", duration = "300ms" } ]
)");
      node_ = new child_process(
          {TROUPE_BINARY, "node", "--config", dir_ + "/node.toml"},
          dir_ + "/node.log");
      ready_ = node_->wait_for_output(": ready", 60s);
    }
    ASSERT_TRUE(ready_) << node_->output();
  }

  static void TearDownTestSuite() {
    if (node_) {
      node_->signal(SIGTERM);
      node_->wait(30s);
      delete node_;
      node_ = nullptr;
    }
    delete servers_;
    servers_ = nullptr;
  }

  static std::shared_ptr<nats_client> client() {
    nats_connect_options o;
    o.urls = servers_->nats_url();
    auto c = nats_client::connect(o);
    EXPECT_TRUE(c);
    return *c;
  }

  static std::vector<std::string> bodies(const std::string& tenant, int n,
                                         const std::string& prefix) {
    std::vector<std::string> out;
    for (int i = 0; i < n; ++i)
      out.push_back(json{
          {"pipeline", "slow"},
          {"tenant", tenant},
          {"key", prefix + std::to_string(i)},
          {"payload",
           {{"i", i}}}}.dump());
    return out;
  }

  static std::int64_t count(const std::string& sql) {
    pqxx::connection c{servers_->pg_url()};
    pqxx::nontransaction n{c};
    return n.exec1(sql)[0].as<std::int64_t>();
  }

  static bool wait_count(const std::string& sql, std::int64_t want,
                         std::chrono::seconds limit) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      if (count(sql) >= want)
        return true;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }

  static inline test_servers* servers_ = nullptr;
  static inline std::string dir_;
  static inline child_process* node_ = nullptr;
  static inline bool ready_ = false;
};

} // namespace

TEST_F(tenants_test, ATenantNeverRunsMoreThanItsLimitAndOthersAreNotStarved) {
  auto nats = client();
  subjects subj{"troupe"};
  auto acme =
      submit_requests(*nats, subj, bodies("acme", 30, "acme-"), 30, 30s);
  ASSERT_TRUE(acme);
  for (auto& r : *acme)
    ASSERT_TRUE(r.ok) << r.error_code << " " << r.error_message;
  // Another tenant's jobs submitted behind acme's 30 do not wait for them.
  auto other =
      submit_requests(*nats, subj, bodies("other", 5, "other-"), 5, 30s);
  ASSERT_TRUE(other);
  ASSERT_TRUE(wait_count("select count(*) from jobs where job_id like "
                         "'other-%' and state = 'succeeded'",
                         5, 30s));
  auto acme_done_when_other_done =
      count("select count(*) from jobs where job_id like 'acme-%' and state = "
            "'succeeded'");
  EXPECT_LT(acme_done_when_other_done, 30)
      << "the other tenant waited for all of acme's jobs";
  ASSERT_TRUE(wait_count("select count(*) from jobs where job_id like "
                         "'acme-%' and state = 'succeeded'",
                         30, 60s));
  // Highest number of acme attempts running at one instant.
  auto peak = count(R"SQL(
select coalesce(max(c), 0) from (
  select (select count(*) from job_attempts b
          where b.job_id like 'acme-%' and b.started_at <= a.started_at
            and b.started_at + b.duration_ms * interval '1 millisecond'
                > a.started_at) as c
  from job_attempts a where a.job_id like 'acme-%') x
)SQL");
  EXPECT_LE(peak, 3);
  EXPECT_GE(peak, 2) << "the limit should still let acme run in parallel";
  EXPECT_EQ(count("select count(*) from jobs where job_id like 'acme-%' and "
                  "state <> 'succeeded'"),
            0);
}

TEST_F(tenants_test, ABurstOverTheRateIsRefusedWithRetryAfterAndTheRestRuns) {
  auto nats = client();
  subjects subj{"troupe"};
  std::vector<std::string> raw;
  // Sent one by one as fast as possible, so the replies can be inspected.
  int accepted = 0, limited = 0;
  std::vector<std::string> ids;
  for (auto& b : bodies("burst", 50, "burst-")) {
    auto r = nats->request("troupe.api.v1.submit", b, 5000);
    ASSERT_TRUE(r);
    auto j = json::parse(*r);
    if (j.value("ok", false)) {
      ++accepted;
      ids.push_back(j["job_id"]);
    } else {
      ASSERT_EQ(j["error"]["code"], "rate_limited") << *r;
      EXPECT_GT(j["error"]["retry_after_ms"].get<int>(), 0) << *r;
      EXPECT_LE(j["error"]["retry_after_ms"].get<int>(), 1000) << *r;
      ++limited;
    }
  }
  EXPECT_GE(accepted, 5);
  EXPECT_LE(accepted, 15) << "50 requests in a burst at 5/s";
  EXPECT_EQ(accepted + limited, 50);
  ASSERT_TRUE(wait_count("select count(*) from jobs where job_id like "
                         "'burst-%' and state = 'succeeded'",
                         accepted, 60s));
  EXPECT_EQ(count("select count(*) from jobs where job_id like 'burst-%'"),
            accepted);
}

TEST_F(tenants_test, UnknownTenantsAreRefusedWhenNotAllowed) {
  auto nats = client();
  auto r = nats->request(
      "troupe.api.v1.submit",
      json{{"pipeline", "slow"}, {"tenant", "mallory"}, {"payload", 1}}.dump(),
      5000);
  ASSERT_TRUE(r);
  auto j = json::parse(*r);
  EXPECT_EQ(j["error"]["code"], "unknown_tenant") << *r;
  EXPECT_NE(j["error"]["message"].get<std::string>().find("mallory"),
            std::string::npos);
  // The shell shows every tenant's limits.
  child_process sh{{TROUPE_BINARY, "shell", "--nats", servers_->nats_url(),
                    "--json", "-c", "tenants"},
                   dir_ + "/tenants-shell.log"};
  ASSERT_EQ(sh.wait(30s), 0) << sh.output();
  auto doc = json::parse(sh.output());
  EXPECT_EQ(doc["allow_unknown"], false);
  EXPECT_EQ(doc["tenants"]["acme"]["max_in_flight"], 3);
  EXPECT_EQ(doc["tenants"]["burst"]["rate"], "5/s");
  EXPECT_EQ(doc["tenants"]["default"]["max_in_flight"], 50);
}
