// A job talks back: its result, read by the client that submitted it
// through `troupe.api.v1.status` and `troupe.api.v1.wait`, and carried by
// its job.succeeded event. Real servers with the example's roles; every
// client is a separate NATS connection with the least rights that let it
// do its part (publisher, a tenant-bound user, a stranger tenant).
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "results_fixture.hpp"
#include "runtime/client/api_requests.hpp"
#include "runtime/nats/nats_subscription.hpp"
#include "tests/support/eventually.hpp"

using namespace troupe;
using namespace troupe::test;
using namespace std::chrono_literals;
using json = nlohmann::json;

TEST_F(results_test, APublisherSubmitsWaitsAndGetsTheExactResult) {
  auto pub = publisher();
  ASSERT_TRUE(pub);
  std::mutex mtx;
  std::vector<json> events;
  auto sub =
      nats_subscription::open(*pub, "troupe.events.echo.>", [&](nats_msg m) {
        std::lock_guard<std::mutex> g{mtx};
        events.push_back(json::parse(m.data()));
      });
  ASSERT_TRUE(sub);
  json payload{{"order", 42}, {"items", {"a", "b"}}, {"note", "ünï"}};
  auto id = submit(*pub, "troupe.api.v1.submit",
                   {{"pipeline", "echo"}, {"payload", payload}});
  auto r = ask(*pub, "troupe.api.v1.wait",
               {{"job_id", id}, {"timeout_ms", 30000}}, 40s);
  ASSERT_TRUE(r.is_object()) << r;
  ASSERT_TRUE(r.value("ok", false)) << r;
  EXPECT_TRUE(r["done"].get<bool>());
  auto& job = r["job"];
  EXPECT_EQ(job["state"], "succeeded");
  EXPECT_EQ(job["job_id"], id);
  EXPECT_EQ(job["result"]["payload"], payload);
  EXPECT_EQ(job["result"]["job_id"], id);
  EXPECT_EQ(job["error"], nullptr);
  EXPECT_EQ(job["attempts"]["total"], 1);
  EXPECT_EQ(job["stage"], "back");
  // The system of record holds the same result.
  EXPECT_EQ(
      json::parse(row("select result::text from jobs where job_id = $1", id)),
      job["result"]);
  // status says the same without waiting.
  auto st = ask(*pub, "troupe.api.v1.status", {{"job_id", id}});
  EXPECT_EQ(st["job"]["result"], job["result"]);
  EXPECT_FALSE(st.contains("done"));
  // The job.succeeded event carries the result (it is under 2 KiB).
  ASSERT_TRUE(eventually(
      [&] {
        std::lock_guard<std::mutex> g{mtx};
        for (auto& e : events)
          if (e["type"] == "job.succeeded" && e["job_id"] == id)
            return e.contains("result") && e["result"] == job["result"];
        return false;
      },
      10s));
}

TEST_F(results_test, ALargeResultIsLeftOutOfTheEventAndReadWithStatus) {
  auto pub = publisher();
  ASSERT_TRUE(pub);
  json seen;
  std::mutex mtx;
  auto sub =
      nats_subscription::open(*pub, "troupe.events.big.>", [&](nats_msg m) {
        auto e = json::parse(m.data());
        std::lock_guard<std::mutex> g{mtx};
        if (e["type"] == "job.succeeded")
          seen = e;
      });
  ASSERT_TRUE(sub);
  auto id = submit(*pub, "troupe.api.v1.submit",
                   {{"pipeline", "big"}, {"payload", nullptr}});
  auto r = ask(*pub, "troupe.api.v1.wait", {{"job_id", id}}, 40s);
  ASSERT_TRUE(r.value("ok", false)) << r;
  EXPECT_EQ(r["job"]["result"]["pad"].get<std::string>().size(), 5000u);
  ASSERT_TRUE(eventually(
      [&] {
        std::lock_guard<std::mutex> g{mtx};
        return !seen.is_null();
      },
      10s));
  std::lock_guard<std::mutex> g{mtx};
  EXPECT_FALSE(seen.contains("result")) << seen;
  EXPECT_EQ(seen["result_omitted"], true);
  EXPECT_EQ(seen["result_bytes"], 5010);
}

TEST_F(results_test, ATenantSeesItsOwnJobsAndNoOneElsesSeeTheirs) {
  auto a = acme();
  auto g = globex();
  auto pub = publisher();
  ASSERT_TRUE(a && g && pub);
  auto id = submit(*a, "troupe.api.v1.tenant.acme.submit",
                   {{"pipeline", "echo"}, {"payload", {{"secret", 7}}}});
  ASSERT_FALSE(id.empty());
  auto mine = ask(*a, "troupe.api.v1.tenant.acme.wait", {{"job_id", id}}, 40s);
  ASSERT_TRUE(mine.value("ok", false)) << mine;
  EXPECT_EQ(mine["job"]["tenant"], "acme");
  EXPECT_EQ(mine["job"]["result"]["payload"]["secret"], 7);
  EXPECT_EQ(row("select tenant from jobs where job_id = $1", id), "acme");
  // Another tenant, and a publisher naming no tenant or another one: the
  // same answer as for a job that does not exist.
  auto none = ask(*g, "troupe.api.v1.tenant.globex.status", {{"job_id", id}});
  EXPECT_EQ(none["error"]["code"], "not_found") << none;
  auto ghost = ask(*g, "troupe.api.v1.tenant.globex.status",
                   {{"job_id", "no-such-job"}});
  EXPECT_EQ(ghost["error"]["message"].get<std::string>(),
            none["error"]["message"].get<std::string>().replace(
                none["error"]["message"].get<std::string>().find(id), id.size(),
                "no-such-job"));
  EXPECT_EQ(
      ask(*pub, "troupe.api.v1.status", {{"job_id", id}})["error"]["code"],
      "not_found");
  EXPECT_EQ(ask(*pub, "troupe.api.v1.wait",
                {{"job_id", id},
                 {"tenant", "globex"},
                 {"timeout_ms", 300}})["error"]["code"],
            "not_found");
  // A trusted publisher that names the tenant sees it.
  EXPECT_TRUE(
      ask(*pub, "troupe.api.v1.status", {{"job_id", id}, {"tenant", "acme"}})
          .value("ok", false));
  // A bound user cannot speak for another tenant, in the body or by subject.
  auto lie = ask(*a, "troupe.api.v1.tenant.acme.status",
                 {{"job_id", id}, {"tenant", "globex"}});
  EXPECT_EQ(lie["error"]["code"], "invalid_payload") << lie;
  auto lie2 = ask(*a, "troupe.api.v1.tenant.acme.submit",
                  {{"pipeline", "echo"}, {"payload", 1}, {"tenant", "globex"}});
  EXPECT_EQ(lie2["error"]["code"], "invalid_payload") << lie2;
  EXPECT_TRUE(ask(*a, "troupe.api.v1.tenant.globex.status", {{"job_id", id}},
                  2s)
                  .is_null()); // NATS refuses the publish: no answer
}

TEST_F(results_test, AWaitThatTimesOutSaysNotDoneAndALaterOneEnds) {
  auto pub = publisher();
  ASSERT_TRUE(pub);
  auto id = submit(*pub, "troupe.api.v1.submit",
                   {{"pipeline", "slow"}, {"payload", 1}});
  auto early =
      ask(*pub, "troupe.api.v1.wait", {{"job_id", id}, {"timeout_ms", 100}});
  ASSERT_TRUE(early.is_object()) << early;
  if (early.value("ok", false)) {
    EXPECT_FALSE(early["done"].get<bool>()) << early;
    EXPECT_NE(early["job"]["state"], "succeeded");
  } else {
    EXPECT_EQ(early["error"]["code"], "not_found") << early; // not taken yet
  }
  auto later = ask(*pub, "troupe.api.v1.wait",
                   {{"job_id", id}, {"timeout_ms", 30000}}, 40s);
  ASSERT_TRUE(later.value("ok", false)) << later;
  EXPECT_TRUE(later["done"].get<bool>());
  EXPECT_EQ(later["job"]["state"], "succeeded");
  EXPECT_EQ(later["job"]["result"], json::object());
}

TEST_F(results_test, ADeadLetteredJobsStatusCarriesItsError) {
  auto pub = publisher();
  ASSERT_TRUE(pub);
  auto id = submit(*pub, "troupe.api.v1.submit",
                   {{"pipeline", "broken"}, {"payload", 1}});
  auto r = ask(*pub, "troupe.api.v1.wait", {{"job_id", id}}, 40s);
  ASSERT_TRUE(r.value("ok", false)) << r;
  EXPECT_TRUE(r["done"].get<bool>());
  EXPECT_EQ(r["job"]["state"], "dead_lettered");
  EXPECT_EQ(r["job"]["result"], nullptr);
  EXPECT_FALSE(r["job"]["error"]["code"].get<std::string>().empty()) << r;
  EXPECT_EQ(row("select state from jobs where job_id = $1", id),
            "dead_lettered");
}

TEST_F(results_test, BadRequestsGetClearErrorsAndTheNodeKeepsServing) {
  auto pub = publisher();
  ASSERT_TRUE(pub);
  auto code = [&](const std::string& subject, const std::string& body) {
    auto r = pub->request(subject, body, 10000);
    if (!r)
      return std::string{"no reply"};
    auto j = json::parse(*r, nullptr, false);
    return j.is_object() && j.contains("error")
               ? j["error"]["code"].get<std::string>()
               : std::string{"ok"};
  };
  const std::string st = "troupe.api.v1.status", wt = "troupe.api.v1.wait";
  EXPECT_EQ(code(st, "not json"), "invalid_payload");
  EXPECT_EQ(code(st, "[1]"), "invalid_payload");
  EXPECT_EQ(code(st, R"({"job_id":"x","bogus":1})"), "invalid_payload");
  EXPECT_EQ(code(st, R"({"job_id":"x","timeout_ms":5})"), "invalid_payload");
  EXPECT_EQ(code(st, R"({"job_id":""})"), "invalid_payload");
  EXPECT_EQ(code(st, R"({"job_id":7})"), "invalid_payload");
  EXPECT_EQ(code(st, json{{"job_id", std::string(600, 'k')}}.dump()),
            "invalid_payload");
  EXPECT_EQ(code(st, std::string{"{\"job_id\":\"a\0b\"}", 17}),
            "invalid_payload");
  EXPECT_EQ(code(st, std::string(200000, '[')), "nesting_too_deep");
  EXPECT_EQ(code(wt, R"({"job_id":"x","timeout_ms":1.5})"), "invalid_payload");
  EXPECT_EQ(code(wt, R"({"job_id":"x","timeout_ms":-1})"), "invalid_payload");
  EXPECT_EQ(code(wt, R"({"job_id":"x","timeout_ms":400000})"),
            "invalid_payload");
  EXPECT_EQ(code(wt, R"({"job_id":"never-submitted","timeout_ms":300})"),
            "not_found");
  // A request whose reply-to is a control subject is dropped unanswered:
  // the node does not drain.
  ASSERT_FALSE(pub->publish_request(st, "troupe.admin.all.control.drain",
                                    R"({"job_id":"x"})"));
  pub->flush();
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(code(st, R"({"job_id":"still-serving"})"), "not_found");
  EXPECT_EQ(node_->output().find("draining"), std::string::npos);
}

TEST_F(results_test, SubmitWaitPrintsEachJobsResult) {
  write_file(dir_ + "/client.toml",
             "[nats]\nurl = \"" + servers_->nats_url() +
                 "\"\nuser = \"publisher\"\npassword_file = \"" + dir_ +
                 "/publisher.pw\"\n");
  child_process cli{{TROUPE_BINARY, "submit", "echo", "--payload", R"({"n":5})",
                     "--key", "cli-wait-1", "--wait", "--config",
                     dir_ + "/client.toml"},
                    dir_ + "/submit-wait.log"};
  ASSERT_EQ(cli.wait(60s), 0) << cli.output();
  std::istringstream out{cli.output()};
  std::string line;
  std::getline(out, line);
  ASSERT_EQ(line.rfind("cli-wait-1 succeeded ", 0), 0u) << cli.output();
  auto result = json::parse(line.substr(line.find('{')));
  EXPECT_EQ(result["payload"]["n"], 5);
  EXPECT_EQ(result["job_id"], "cli-wait-1");
  // A job that fails makes the command fail, and says why.
  child_process bad{{TROUPE_BINARY, "submit", "broken", "--wait", "--config",
                     dir_ + "/client.toml"},
                    dir_ + "/submit-wait-bad.log"};
  EXPECT_EQ(bad.wait(60s), 1) << bad.output();
  EXPECT_NE(bad.output().find(" dead_lettered "), std::string::npos)
      << bad.output();
}

TEST_F(results_test, ManyWaitsAtOnceAllEnd) {
  auto pub = publisher();
  ASSERT_TRUE(pub);
  std::vector<std::string> bodies;
  for (int i = 0; i < 300; ++i)
    bodies.push_back(
        json{{"pipeline", "echo"}, {"payload", {{"i", i}}}}.dump());
  auto replies = request_many(*pub, "troupe.api.v1.submit", bodies, 256, 60s);
  ASSERT_TRUE(replies);
  std::vector<std::string> ids;
  for (auto& r : *replies)
    ids.push_back(json::parse(r)["job_id"]);
  auto ends = wait_for_jobs(*pub, subjects{"troupe"}, ids, "", 120s);
  ASSERT_TRUE(ends);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    ASSERT_TRUE((*ends)[i].done) << (*ends)[i].job_id;
    EXPECT_EQ((*ends)[i].job["result"]["payload"]["i"], i);
  }
}
