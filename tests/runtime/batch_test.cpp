// Batches (docs/workflows.md): callbacks once after the last job, and
// bad batches that create nothing, against real servers
// (workflow_fixture.hpp).

#include "workflow_fixture.hpp"

namespace troupe::test {

namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

json batch_request(const std::string& id, const std::string& pipeline, int n) {
  json jobs = json::array();
  for (int i = 0; i < n; ++i)
    jobs.push_back({{"pipeline", pipeline}, {"payload", {{"i", i}}}});
  return {
      {"batch_id", id},
      {"jobs", jobs},
      {"on_complete", {{"pipeline", "tally"}, {"payload", {{"to", "ops"}}}}},
      {"on_success", {{"pipeline", "tally"}}}};
}

TEST_F(workflow_test, ABatchOf500CallsItsCallbacksOnceAfterItsLastJob) {
  auto n1 = start_node("wf-batch-1");
  auto n2 = start_node("wf-batch-2");
  auto nats = client();
  auto body = batch_request("nightly", "item", 500).dump();
  auto r = nats->request("troupe.api.v1.batch", body, 10000);
  ASSERT_TRUE(r) << describe(r.error());
  auto reply = json::parse(*r);
  ASSERT_TRUE(reply.value("ok", false)) << *r;
  EXPECT_EQ(reply["job_ids"].size(), 500u);
  EXPECT_FALSE(reply["duplicate"].get<bool>());
  ASSERT_TRUE(ended("nightly/on_complete", "succeeded"));
  ASSERT_TRUE(ended("nightly/on_success", "succeeded"));
  // Once each, after the last job of the batch ended.
  EXPECT_EQ(count("select count(*) from jobs where batch_id = 'nightly' and "
                  "state = 'succeeded'"),
            500);
  EXPECT_EQ(count("select count(*) from job_attempts where job_id like "
                  "'nightly/on_%'"),
            2);
  EXPECT_EQ(count("select count(*) from jobs c where c.job_id = "
                  "'nightly/on_complete' and c.started_at >= (select "
                  "max(finished_at) from jobs where batch_id = 'nightly')"),
            1);
  auto payload = json::parse(text("select payload::text from jobs where "
                                  "job_id = 'nightly/on_complete'"));
  EXPECT_EQ(payload, json::parse(R"({"batch_id":"nightly","total":500,
      "succeeded":500,"failed":0,"payload":{"to":"ops"}})"));
  // The same batch again is a duplicate and creates nothing.
  r = nats->request("troupe.api.v1.batch", body, 10000);
  ASSERT_TRUE(r);
  EXPECT_TRUE(json::parse(*r)["duplicate"].get<bool>()) << *r;
  // Its progress, as a client reads it.
  r = nats->request("troupe.api.v1.batch_status", R"({"batch_id":"nightly"})",
                    5000);
  ASSERT_TRUE(r);
  auto st = json::parse(*r)["batch"];
  EXPECT_EQ(st["total"], 500) << *r;
  EXPECT_EQ(st["states"], json::parse(R"({"succeeded":500})")) << *r;
  EXPECT_EQ(st["callbacks"]["on_success"]["state"], "succeeded") << *r;
  EXPECT_FALSE(st["completed_at_ms"].is_null()) << *r;
  // And as an operator reads it in the shell.
  auto out = shell_output("batch nightly");
  EXPECT_NE(out.find("batch nightly  500 jobs  succeeded 500\ncomplete "),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("on_success: nightly/on_success  succeeded"),
            std::string::npos)
      << out;
  EXPECT_TRUE(n1->running());
  EXPECT_TRUE(n2->running());
}

TEST_F(workflow_test,
       ABatchWithAFailureGetsOnCompleteOnlyAndBadBatchesNothing) {
  auto node = start_node("wf-batch-bad");
  auto nats = client();
  write_file(servers_->dir() + "/broken-7", "");
  auto r = nats->request("troupe.api.v1.batch",
                         batch_request("mixed", "maybe", 10).dump(), 10000);
  ASSERT_TRUE(r && json::parse(*r).value("ok", false));
  ASSERT_TRUE(ended("mixed/on_complete", "succeeded"));
  auto payload = json::parse(text("select payload::text from jobs where "
                                  "job_id = 'mixed/on_complete'"));
  EXPECT_EQ(payload["failed"], 1);
  EXPECT_EQ(payload["succeeded"], 9);
  EXPECT_EQ(count("select count(*) from jobs where job_id = "
                  "'mixed/on_success'"),
            0);
  // A bad entry, or a key that names an existing job: nothing is created,
  // and the error says which entry.
  auto bad = batch_request("bad-1", "item", 3);
  bad["jobs"][2]["pipeline"] = "nowhere";
  r = nats->request("troupe.api.v1.batch", bad.dump(), 10000);
  ASSERT_TRUE(r);
  auto err = json::parse(*r);
  EXPECT_EQ(err["error"]["code"], "unknown_pipeline") << *r;
  EXPECT_NE(err["error"]["message"].get<std::string>().find("jobs[2]: "),
            std::string::npos)
      << *r;
  auto clash = batch_request("bad-2", "item", 3);
  clash["jobs"][1]["key"] = "mixed/on_complete";
  r = nats->request("troupe.api.v1.batch", clash.dump(), 10000);
  ASSERT_TRUE(r);
  EXPECT_EQ(json::parse(*r)["error"]["code"], "conflict") << *r;
  EXPECT_EQ(count("select count(*) from batches where batch_id like 'bad-%'"),
            0);
  EXPECT_EQ(count("select count(*) from jobs where batch_id like 'bad-%'"), 0);
  // The careless client's worst: empty, deep, NUL, binary, not JSON, a
  // batch id with '#', another tenant's batch asked for by id.
  std::string deep(200000, '[');
  std::string nul = R"({"jobs":[{"pipeline":"item","payload":"a)";
  nul += std::string(1, '\0') + R"("}]})";
  for (const auto& [body, code] :
       std::vector<std::pair<std::string, std::string>>{
           {R"({"jobs": []})", "invalid_payload"},
           {R"({"jobs": [{"pipeline": "item"}], "extra": 1})",
            "invalid_payload"},
           {R"({"batch_id": "a#1", "jobs": [{"pipeline": "item"}]})",
            "invalid_payload"},
           {deep, "nesting_too_deep"},
           {nul, "invalid_payload"},
           {std::string("\xff\xfe\x00\x01", 4), "invalid_payload"},
           {"not json", "invalid_payload"}}) {
    r = nats->request("troupe.api.v1.batch", body, 10000);
    ASSERT_TRUE(r) << describe(r.error());
    EXPECT_EQ(json::parse(*r)["error"]["code"], code) << *r;
  }
  r = nats->request("troupe.api.v1.tenant.acme.batch_status",
                    R"({"batch_id":"mixed"})", 5000);
  ASSERT_TRUE(r);
  EXPECT_EQ(json::parse(*r)["error"]["code"], "not_found") << *r;
  EXPECT_EQ(count("select count(*) from batches"),
            count("select count(*) from batches where batch_id in "
                  "('mixed', 'nightly')"));
  EXPECT_TRUE(node->running());
}

} // namespace

} // namespace troupe::test
