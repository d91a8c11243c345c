// Child jobs (docs/workflows.md) against real servers: nodes are separate
// processes, jobs are published on JetStream as any client would, and every
// verdict is read from PostgreSQL, the system of record.

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

namespace {

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
  // spawn payload.n children of `maybe`, which fails (once, for good) while
  // a file broken-<i> exists in the servers' directory.
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

[[pipelines.maybe.stages]]
name = "try"
kind = "exec"
retry = { max_attempts = 1 }
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

TEST_F(workflow_test, AThousandChildrenAcrossThreeNodesOneKilledJoinOnce) {
  auto n1 = start_node("wf-1");
  auto n2 = start_node("wf-2");
  auto n3 = start_node("wf-3");
  publish("fanout", "thousand", 1000);
  // Kill a node once some children have ended, while the rest run.
  ASSERT_TRUE(eventually(
      [&] {
        return count("select count(*) from jobs where parent_id = "
                     "'thousand' and state = 'succeeded'") >= 200;
      },
      120s));
  n2->signal(SIGKILL);
  ASSERT_TRUE(ended("thousand", "succeeded", 180s))
      << text("select state || ' ' || coalesce(last_error, '') from jobs "
              "where job_id = 'thousand'");
  // Every child succeeded once: one successful attempt each.
  EXPECT_EQ(count("select count(*) from jobs where parent_id = 'thousand' "
                  "and state = 'succeeded'"),
            1000);
  EXPECT_EQ(count("select count(*) from (select job_id from job_attempts "
                  "where job_id like 'thousand/%' and ok group by job_id "
                  "having count(*) = 1) x"),
            1000);
  // The parent spawned once and resumed once: two successful attempts of
  // `split` (the spawn and the join), one job.spawned.
  EXPECT_EQ(count("select count(*) from job_attempts where job_id = "
                  "'thousand' and stage = 'split' and ok"),
            2);
  EXPECT_EQ(count("select count(*) from job_events where job_id = "
                  "'thousand' and type = 'job.spawned'"),
            1);
  // The join received every result, in spawn order.
  auto split = json::parse(text("select output::text from stage_checkpoints "
                                "where job_id = 'thousand' and stage_index = "
                                "0"));
  ASSERT_EQ(split["children"].size(), 1000u);
  for (int i = 0; i < 1000; ++i) {
    const auto& c = split["children"][i];
    ASSERT_EQ(c["job_id"], "thousand/split/" + std::to_string(i));
    ASSERT_EQ(c["result"]["sq"], i * i) << c.dump();
  }
  EXPECT_EQ(split["succeeded"], 1000);
  auto result = json::parse(text("select result::text from jobs where "
                                 "job_id = 'thousand'"));
  EXPECT_EQ(result["sum"], 332833500); // sum of i*i for i < 1000
  EXPECT_EQ(count("select count(*) from jobs where job_id = 'thousand' and "
                  "children is not null"),
            0);
  auto shown = shell_output("job thousand; job thousand/split/7");
  EXPECT_NE(shown.find("children: 1000  succeeded 1000"), std::string::npos)
      << shown;
  EXPECT_NE(shown.find("parent: thousand"), std::string::npos) << shown;
  EXPECT_TRUE(n1->running());
  EXPECT_TRUE(n3->running());
}

TEST_F(workflow_test, ADeadChildFailsAStrictParentAndIsListedByALenientOne) {
  auto node = start_node("wf-policy");
  write_file(servers_->dir() + "/broken-1", "");
  publish("strict", "strict-1", 3);
  publish("lenient", "lenient-1", 3);
  ASSERT_TRUE(ended("strict-1", "dead_lettered"));
  ASSERT_TRUE(ended("lenient-1", "succeeded"));
  auto err = text("select last_error from jobs where job_id = 'strict-1'");
  EXPECT_NE(err.find("child_failed: 1 of 3 children did not succeed; first: "
                     "strict-1/split/1 dead_lettered"),
            std::string::npos)
      << err;
  EXPECT_EQ(count("select count(*) from dead_letters where job_id = "
                  "'strict-1'"),
            1);
  auto out = json::parse(text("select result::text from jobs where job_id = "
                              "'lenient-1'"));
  EXPECT_EQ(out["failed"], 1);
  EXPECT_EQ(out["succeeded"], 2);
  EXPECT_EQ(out["children"][1]["state"], "dead_lettered");
  EXPECT_EQ(out["children"][2]["result"]["i"], 2);
  // The status API, as a client asks: a parent counts its children by
  // state, a child names its parent.
  auto nats = client();
  auto st =
      nats->request("troupe.api.v1.status", R"({"job_id":"lenient-1"})", 5000);
  ASSERT_TRUE(st) << describe(st.error());
  auto doc = json::parse(*st);
  EXPECT_EQ(doc["job"]["children"],
            json::parse(R"({"dead_lettered":1,"succeeded":2})"))
      << *st;
  st = nats->request("troupe.api.v1.status",
                     R"({"job_id":"lenient-1/split/0"})", 5000);
  ASSERT_TRUE(st) << describe(st.error());
  EXPECT_EQ(json::parse(*st)["job"]["parent_id"], "lenient-1") << *st;
  // Mend the child, replay it, then replay the parent: the workflow
  // completes and no child that succeeded runs again.
  std::remove((servers_->dir() + "/broken-1").c_str());
  ASSERT_TRUE(
      admin("replay", {{"job_id", "strict-1/split/1"}}).value("ok", false));
  ASSERT_TRUE(ended("strict-1/split/1", "succeeded"));
  ASSERT_TRUE(admin("replay", {{"job_id", "strict-1"}}).value("ok", false));
  ASSERT_TRUE(eventually([&] {
    return count("select count(*) from jobs where job_id = 'strict-1' and "
                 "state = 'succeeded' and life = 2") == 1;
  }));
  auto again = json::parse(text("select result::text from jobs where "
                                "job_id = 'strict-1'"));
  EXPECT_EQ(again["succeeded"], 3);
  EXPECT_EQ(count("select count(*) from job_attempts where job_id in "
                  "('strict-1/split/0', 'strict-1/split/2')"),
            2);
  EXPECT_TRUE(node->running());
}

TEST_F(workflow_test, CancellingAWaitingParentCancelsItsChildren) {
  auto node = start_node("wf-cancel");
  publish("waits", "waiter", 4);
  ASSERT_TRUE(ended("waiter", "waiting"));
  ASSERT_TRUE(eventually([&] {
    return count("select count(*) from jobs where parent_id = 'waiter' and "
                 "state = 'running'") >= 1;
  }));
  auto r = admin("cancel", {{"job_id", "waiter"}});
  ASSERT_TRUE(r.value("ok", false)) << r.dump();
  EXPECT_EQ(count("select count(*) from jobs where parent_id = 'waiter' and "
                  "state = 'cancelled'"),
            4);
  EXPECT_EQ(count("select count(*) from job_events where job_id like "
                  "'waiter/%' and type = 'job.cancelled'"),
            4);
  EXPECT_TRUE(ended("waiter", "cancelled", 5s));
  EXPECT_TRUE(node->running());
}

TEST_F(workflow_test, RetentionKeepsTheChildrenOfAParentThatWaits) {
  auto node = start_node("wf-keep");
  ASSERT_TRUE(
      client()->js_publish("troupe.jobs.keeps", R"({"payload":{}})", "keeper"));
  ASSERT_TRUE(eventually([&] {
    return count("select count(*) from jobs where parent_id = 'keeper' and "
                 "state = 'succeeded'") == 2;
  }));
  std::this_thread::sleep_for(1500ms); // older than `brief`'s retention
  ASSERT_TRUE(admin("prune", json::object()).value("ok", false));
  EXPECT_EQ(count("select count(*) from jobs where parent_id = 'keeper'"), 3);
  // Once the parent has ended, its finished children go like any job.
  ASSERT_TRUE(admin("cancel", {{"job_id", "keeper"}}).value("ok", false));
  ASSERT_TRUE(admin("prune", json::object()).value("ok", false));
  EXPECT_EQ(count("select count(*) from jobs where parent_id = 'keeper' and "
                  "pipeline = 'brief'"),
            0);
  EXPECT_TRUE(node->running());
}

TEST_F(workflow_test, ABadSpawnListDeadLettersTheStageWithWhatIsWrong) {
  auto node = start_node("wf-bad");
  auto nats = client();
  // Too many children, or one of an unknown pipeline: the list is refused
  // whole, nothing is created, and the error says what and where.
  ASSERT_TRUE(nats->js_publish("troupe.jobs.strict",
                               R"({"payload":{"n":100001}})", "too-many"));
  ASSERT_TRUE(ended("too-many", "dead_lettered"));
  auto err = text("select last_error from jobs where job_id = 'too-many'");
  EXPECT_NE(err.find("invalid_spawn: spawn asks for 100001 children; the "
                     "stage allows 10000 (max_children)"),
            std::string::npos)
      << err;
  EXPECT_EQ(count("select count(*) from jobs where parent_id = 'too-many'"), 0);
  ASSERT_TRUE(
      nats->js_publish("troupe.jobs.stray", R"({"payload":{}})", "stray-1"));
  ASSERT_TRUE(ended("stray-1", "dead_lettered"));
  err = text("select last_error from jobs where job_id = 'stray-1'");
  EXPECT_NE(err.find("invalid_spawn: spawn[1].pipeline: unknown pipeline "
                     "'nowhere'"),
            std::string::npos)
      << err;
  EXPECT_EQ(count("select count(*) from jobs where parent_id = 'stray-1'"), 0);
  EXPECT_TRUE(node->running());
}

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
